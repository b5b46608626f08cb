// nbd::Server: exports one BlockBackend over NBD to several clients at once, on one thread.
//
// One epoll loop owns everything: the listening socket, the client sockets, the IoContext's
// eventfd and the stop descriptors. Requests from every client go to the backend through one
// IoContext (io_uring), so commands of all clients are in flight together and complete in any
// order; replies go back as they complete. Per-client and server-wide memory limits are those of
// nbd::Session and nbd::MemoryBudget.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "disk/nbd/session.hpp"

namespace vireo::disk {
class IoContext;
}

namespace vireo::disk::nbd {

struct ServerOptions {
    // Where to listen: a TCP "ADDR:PORT" ("[v6addr]:PORT" for IPv6; ADDR alone takes port 10809;
    // port 0 picks a free one), or, when socket_path is set, a Unix socket there.
    std::string bind = "127.0.0.1:10809";
    std::string socket_path;
    Limits limits;
    uint64_t memory_budget = 256ull << 20;  // payload buffers of all clients together
    uint32_t max_clients = 32;              // more connections are closed at once
    std::chrono::seconds handshake_timeout{30};
    std::chrono::seconds shutdown_grace{10};  // then clients that do not read are dropped
    int stop_fd = -1;                         // optional: readable means stop (a signalfd for SIGINT/SIGTERM)
};

class Server {
  public:
    static Result<std::unique_ptr<Server>> create(const Export& exp, const ServerOptions& options);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // "127.0.0.1:10809", "[::1]:10809" or the socket path.
    std::string address() const;
    // How clients name the export: nbd://127.0.0.1:10809/NAME or nbd+unix:///NAME?socket=PATH.
    std::string uri() const;
    uint16_t port() const { return m_port; }

    // Serves until stop() or stop_fd; then lets requests in flight finish, answers them and
    // returns. The caller flushes and closes the backend afterwards.
    Status run();
    // From any thread or a signal handler.
    void stop();

  private:
    struct Client;
    Server(const Export& exp, const ServerOptions& options);
    Status listen();
    void accept_clients();
    void read_client(Client& c);
    void write_client(Client& c);
    void service_clients();
    void update_events(Client& c);
    void begin_stop();

    Export m_export;
    ServerOptions m_options;
    std::unique_ptr<IoContext> m_ctx;
    MemoryBudget m_budget{0};
    UniqueFd m_epoll;
    UniqueFd m_listen;
    UniqueFd m_stop_event;  // eventfd written by stop()
    std::string m_address;
    bool m_unix = false;
    bool m_created_socket_file = false;
    uint16_t m_port = 0;
    std::vector<std::unique_ptr<Client>> m_clients;
    bool m_stopping = false;
    std::chrono::steady_clock::time_point m_stop_deadline;
    bool m_warned_max_clients = false;
};

}  // namespace vireo::disk::nbd
