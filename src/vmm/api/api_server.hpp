// The control API's HTTP/1.1 server on a Unix socket, running on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "vmm/api/http_message.hpp"
#include "vmm/api/http_request_parser.hpp"
#include "vmm/api/unix_listener.hpp"

namespace vireo::vmm::api {

struct ApiServerOptions {
    std::string socket_path;
    // A request whose first byte has arrived must be complete within this time (slow clients
    // are answered 408 and dropped); idle keep-alive connections are closed after idle_timeout.
    std::chrono::milliseconds request_timeout{10'000};
    std::chrono::milliseconds idle_timeout{60'000};
    // At the limit, a new client evicts the connection that has been quiet the longest, so
    // clients that open connections and never finish cannot lock others out.
    size_t max_connections = 64;
};

// Why a thread of its own and not the VMM's I/O thread: a handler may take long (a snapshot
// writes all touched guest memory and waits for disk flushes that complete on the I/O thread),
// and the I/O thread must keep serving devices meanwhile. Handlers run one at a time on this
// thread; all socket I/O is non-blocking with per-connection buffers, so a slow or malicious
// client delays nobody, and vCPU threads never wait for this thread.
class ApiServer {
  public:
    using Handler = std::function<HttpResponse(const HttpRequest&)>;

    // Creates the socket (see UnixListener) and starts the server thread.
    static Result<std::unique_ptr<ApiServer>> start(ApiServerOptions options, Handler handler);
    // stop()s.
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    // Stops accepting, gives pending responses a moment to reach their clients, closes every
    // connection, removes the socket file and joins the thread. Idempotent. Must not be called
    // from a handler.
    void stop();

    const std::string& socket_path() const { return m_options.socket_path; }

  private:
    using Clock = std::chrono::steady_clock;
    struct Connection;

    ApiServer(ApiServerOptions options, Handler handler, std::unique_ptr<UnixListener> listener,
              UniqueFd epoll, UniqueFd wake);

    void run();
    void accept_clients();
    void evict_one();
    void on_event(Connection& c, uint32_t events);
    void on_readable(Connection& c);
    void process(Connection& c);
    void flush(Connection& c);
    void update_interest(Connection& c);
    void close_connection(int fd);
    // Closes connections past their deadline; returns the epoll timeout until the next one.
    int sweep(Clock::time_point now);

    ApiServerOptions m_options;
    Handler m_handler;
    std::unique_ptr<UnixListener> m_listener;
    UniqueFd m_epoll;
    UniqueFd m_wake;  // eventfd: stop() wakes the thread
    std::atomic<bool> m_stopping{false};
    std::unordered_map<int, std::unique_ptr<Connection>> m_connections;  // by fd; thread-owned
    std::thread m_thread;
};

}  // namespace vireo::vmm::api
