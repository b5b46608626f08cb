// Tests for nbd::Server over real sockets (Unix and loopback TCP) with the test NBD client:
// pipelining, several clients at once, refusal of extra clients, clean stop, bind errors.
#include "disk/nbd/server.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>

#include "disk/raw_backend.hpp"
#include "support/nbd_client.hpp"

namespace vireo::disk::nbd {
namespace {

using test::NbdClient;

constexpr uint64_t kDiskSize = 16 << 20;

class NbdServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char dir[] = "/tmp/vireo-nbd-server-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_image = m_dir + "/disk.raw";
        m_socket = m_dir + "/nbd.sock";
        ASSERT_TRUE(RawBackend::create(m_image, kDiskSize).ok());
        auto disk = RawBackend::open(m_image);
        ASSERT_TRUE(disk.ok());
        m_disk = std::move(*disk);
        m_export.name = "disk0";
        m_export.backend = m_disk.get();
    }
    void TearDown() override {
        stop();
        m_disk.reset();
        std::filesystem::remove_all(m_dir);
    }
    void start(ServerOptions options = {}) {
        if (options.socket_path.empty() && options.bind == ServerOptions{}.bind)
            options.socket_path = m_socket;
        auto server = Server::create(m_export, options);
        ASSERT_TRUE(server.ok()) << server.error().message();
        m_server = std::move(*server);
        m_thread = std::thread([this] { m_status = m_server->run(); });
    }
    void stop() {
        if (!m_server) return;
        m_server->stop();
        m_thread.join();
        EXPECT_TRUE(m_status.ok()) << m_status.error().message();
        m_server.reset();
    }
    NbdClient connect() {
        auto c = NbdClient::connect_unix(m_socket);
        EXPECT_TRUE(c.ok());
        return std::move(*c);
    }

    std::string m_dir, m_image, m_socket;
    std::unique_ptr<RawBackend> m_disk;
    Export m_export;
    std::unique_ptr<Server> m_server;
    std::thread m_thread;
    Status m_status;
};

TEST_F(NbdServerTest, UnixSocketReadWriteAndUri) {
    start();
    EXPECT_EQ(m_server->address(), m_socket);
    EXPECT_EQ(m_server->uri(), "nbd+unix:///disk0?socket=" + m_socket);
    NbdClient c = connect();
    auto info = c.go("disk0");
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_EQ(info->size, kDiskSize);
    EXPECT_EQ(info->min_block, 512u);
    EXPECT_NE(info->flags & kFlagCanMultiConn, 0);
    std::vector<uint8_t> data(65536, 0x5c);
    auto w = c.write(1 << 20, data);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(*w, 0u);
    auto r = c.read(1 << 20, 65536);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->error, 0u);
    EXPECT_EQ(r->data, data);
    ASSERT_TRUE(c.disconnect().ok());
    EXPECT_TRUE(c.closed_by_server());
}

TEST_F(NbdServerTest, PipelinedRequestsAllAnswered) {
    start();
    NbdClient c = connect();
    ASSERT_TRUE(c.go().ok());
    // 200 writes of distinct 4 KiB blocks sent before reading any reply, then reads back.
    std::set<uint64_t> handles;
    for (uint64_t i = 0; i < 200; ++i) {
        std::vector<uint8_t> block(4096, static_cast<uint8_t>(i));
        auto h = c.send_request(Command::kWrite, 0, i * 4096, 4096, block);
        ASSERT_TRUE(h.ok());
        handles.insert(*h);
    }
    for (int i = 0; i < 200; ++i) {
        auto r = c.read_reply();
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->error, 0u);
        EXPECT_EQ(handles.erase(r->handle), 1u);
    }
    for (uint64_t i = 0; i < 200; ++i) {
        ASSERT_TRUE(c.send_request(Command::kRead, 0, i * 4096, 4096).ok());
    }
    std::set<uint8_t> seen;
    for (int i = 0; i < 200; ++i) {
        auto r = c.read_reply();
        ASSERT_TRUE(r.ok());
        ASSERT_EQ(r->data.size(), 4096u);
        EXPECT_EQ(r->data, std::vector<uint8_t>(4096, r->data[0]));
        seen.insert(r->data[0]);
    }
    EXPECT_EQ(seen.size(), 200u);
}

TEST_F(NbdServerTest, SeveralClientsAtOnceOverTcp) {
    ServerOptions options;
    options.bind = "127.0.0.1:0";
    start(options);
    ASSERT_NE(m_server->port(), 0);
    EXPECT_EQ(m_server->uri(), fmt::format("nbd://127.0.0.1:{}/disk0", m_server->port()));
    std::vector<NbdClient> clients;
    for (int i = 0; i < 4; ++i) {
        auto c = NbdClient::connect_tcp("127.0.0.1", m_server->port());
        ASSERT_TRUE(c.ok());
        ASSERT_TRUE(c->go("disk0").ok());
        clients.push_back(std::move(*c));
    }
    // Each client writes its own region with requests interleaved across connections.
    for (int round = 0; round < 16; ++round) {
        for (size_t i = 0; i < clients.size(); ++i) {
            std::vector<uint8_t> block(4096, static_cast<uint8_t>(i * 16 + static_cast<size_t>(round)));
            ASSERT_TRUE(clients[i]
                            .send_request(Command::kWrite, 0, (i * 16 + static_cast<size_t>(round)) * 4096,
                                          4096, block)
                            .ok());
        }
    }
    for (auto& c : clients) {
        for (int round = 0; round < 16; ++round) {
            auto r = c.read_reply();
            ASSERT_TRUE(r.ok());
            EXPECT_EQ(r->error, 0u);
        }
        auto f = c.flush();
        ASSERT_TRUE(f.ok());
        EXPECT_EQ(*f, 0u);
    }
    // Every client sees every other client's writes (one backend: multi-conn is consistent).
    auto r = clients[0].read(0, 64 * 4096);
    ASSERT_TRUE(r.ok());
    for (size_t b = 0; b < 64; ++b)
        EXPECT_EQ(r->data[b * 4096], static_cast<uint8_t>(b)) << b;
}

TEST_F(NbdServerTest, ExtraClientsAreRefused) {
    ServerOptions options;
    options.socket_path = m_socket;
    options.max_clients = 2;
    start(options);
    NbdClient a = connect();
    NbdClient b = connect();
    ASSERT_TRUE(a.go().ok());
    ASSERT_TRUE(b.go().ok());
    NbdClient c = connect();
    EXPECT_TRUE(c.closed_by_server());
    // The first two still work.
    auto r = a.read(0, 512);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->error, 0u);
}

TEST_F(NbdServerTest, StopAnswersInFlightAndCloses) {
    start();
    NbdClient c = connect();
    ASSERT_TRUE(c.go().ok());
    ASSERT_TRUE(c.send_request(Command::kRead, 0, 0, 1 << 20).ok());
    auto r = c.read_reply();
    ASSERT_TRUE(r.ok());
    NbdClient idle = connect();  // still in the handshake when the server stops
    ASSERT_TRUE(idle.read_greeting().ok());
    stop();
    EXPECT_TRUE(c.closed_by_server());
    EXPECT_TRUE(idle.closed_by_server());
    struct stat st {};
    EXPECT_NE(::stat(m_socket.c_str(), &st), 0) << "socket file left behind";
}

TEST_F(NbdServerTest, HandshakeTimeoutDropsSilentClients) {
    ServerOptions options;
    options.socket_path = m_socket;
    options.handshake_timeout = std::chrono::seconds(1);
    start(options);
    NbdClient c = connect();
    ASSERT_TRUE(c.read_greeting().ok());
    EXPECT_TRUE(c.closed_by_server(5000));
}

TEST_F(NbdServerTest, BindErrorsNameTheProblem) {
    for (const char* bad : {"127.0.0.1:99999", "[::1", "::1:80", ":80", "127.0.0.1:abc"}) {
        ServerOptions options;
        options.bind = bad;
        auto s = Server::create(m_export, options);
        ASSERT_FALSE(s.ok()) << bad;
        EXPECT_NE(s.error().message().find("bad address"), std::string::npos) << s.error().message();
    }
    // A regular file where the socket should go is not replaced.
    ServerOptions options;
    options.socket_path = m_image;
    auto s = Server::create(m_export, options);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("not a socket"), std::string::npos);
    // A port in use.
    ServerOptions first;
    first.bind = "127.0.0.1:0";
    auto a = Server::create(m_export, first);
    ASSERT_TRUE(a.ok());
    ServerOptions second;
    second.bind = fmt::format("127.0.0.1:{}", (*a)->port());
    auto b = Server::create(m_export, second);
    ASSERT_FALSE(b.ok());
    EXPECT_EQ(b.error().os_error(), EADDRINUSE);
}

TEST_F(NbdServerTest, StaleSocketFileIsReplaced) {
    start();
    stop();
    // Leave a socket file behind as a killed server would.
    {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, m_socket.c_str(), sizeof addr.sun_path - 1);
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    start();
    NbdClient c = connect();
    EXPECT_TRUE(c.go().ok());
}

}  // namespace
}  // namespace vireo::disk::nbd
