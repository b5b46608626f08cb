// The control API server driven by real clients (curl over the Unix socket, raw sockets for
// what curl will not send) against a fake VM controller.
#include "vmm/api/api_server.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "fakes/fake_vm_controller.hpp"
#include "support/subprocess.hpp"
#include "vmm/api/api_router.hpp"

namespace vireo::vmm::api {
namespace {

using testing::FakeVmController;
using testing::run_process;
using testing::TempDir;

struct CurlResult {
    int exit_code = -1;
    int status = 0;
    std::string body;
    std::string headers;
    std::string err;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

std::string slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A raw client for bytes curl will not send.
class RawClient {
  public:
    explicit RawClient(const std::string& path) {
        m_fd = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        m_connected = ::connect(m_fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        timeval tv{20, 0};  // a hung server fails the test instead of hanging it
        ::setsockopt(m_fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    bool connected() const { return m_connected; }
    bool send(std::string_view bytes) {
        return ::send(m_fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
               static_cast<ssize_t>(bytes.size());
    }
    // Everything until the server closes the connection.
    std::string read_all() {
        std::string out;
        char buf[4096];
        for (;;) {
            ssize_t n = ::recv(m_fd.get(), buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }
    // Reads until `count` complete responses (each with Content-Length) have arrived.
    std::string read_responses(int count) {
        std::string out;
        char buf[4096];
        while (complete_responses(out) < count) {
            ssize_t n = ::recv(m_fd.get(), buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
        return out;
    }
    void close() { m_fd.reset(); }
    void shutdown_write() { ::shutdown(m_fd.get(), SHUT_WR); }

  private:
    static int complete_responses(const std::string& s) {
        int count = 0;
        size_t pos = 0;
        for (;;) {
            size_t end = s.find("\r\n\r\n", pos);
            if (end == std::string::npos) return count;
            size_t cl = s.find("Content-Length: ", pos);
            if (cl == std::string::npos || cl > end) return count;
            size_t len = std::stoul(s.substr(cl + 16));
            if (s.size() < end + 4 + len) return count;
            pos = end + 4 + len;
            ++count;
        }
    }
    UniqueFd m_fd;
    bool m_connected = false;
};

class ApiServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!testing::have_program("curl")) GTEST_SKIP() << "curl is not installed (package curl)";
        start_server(options());
    }
    virtual ApiServerOptions options() {
        ApiServerOptions o;
        o.socket_path = dir.file("api.sock");
        o.request_timeout = std::chrono::milliseconds(300);
        return o;
    }
    void start_server(ApiServerOptions o) {
        auto s = ApiServer::start(std::move(o), [this](const HttpRequest& r) { return router.handle(r); });
        ASSERT_TRUE(s.ok()) << s.error().message();
        server = std::move(s).value();
    }

    CurlResult curl(const std::string& method, const std::string& path, std::vector<std::string> extra = {},
                    const std::optional<std::string>& body = std::nullopt) {
        static std::atomic<int> seq{0};
        int n = seq++;
        std::string body_file = dir.file("body" + std::to_string(n));
        std::string head_file = dir.file("head" + std::to_string(n));
        std::vector<std::string> argv = {"curl", "-sS",          "--unix-socket", sock(), "-X",
                                         method, "-o",           body_file,       "-D",   head_file,
                                         "-w",   "%{http_code}", "--max-time",    "30"};
        if (body) {
            argv.push_back("--data-binary");
            argv.push_back(*body);
        }
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back("http://localhost" + path);
        auto p = run_process(argv);
        CurlResult r;
        r.exit_code = p.exit_code;
        r.status = p.out.empty() ? 0 : std::atoi(p.out.c_str());
        r.body = slurp(body_file);
        r.headers = slurp(head_file);
        r.err = p.err;
        return r;
    }
    std::string sock() const { return dir.file("api.sock"); }
    std::string state() { return curl("GET", "/api/v1/vm").json()["state"]; }

    TempDir dir{"vireo-api"};
    FakeVmController vm;
    ApiRouter router{vm};
    std::unique_ptr<ApiServer> server;
};

TEST_F(ApiServerTest, GetVm) {
    auto r = curl("GET", "/api/v1/vm");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(r.status, 200);
    auto j = r.json();
    EXPECT_EQ(j["id"], "fake-vm");
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["vcpus"], 2);
    EXPECT_EQ(j["memory_mib"], 256);
    EXPECT_TRUE(j["uptime_ms"].is_number());
    EXPECT_TRUE(j["config"].is_object());
    EXPECT_NE(r.headers.find("Content-Type: application/json"), std::string::npos);
}

TEST_F(ApiServerTest, GetCounters) {
    auto r = curl("GET", "/api/v1/vm.counters");
    ASSERT_EQ(r.status, 200);
    auto j = r.json();
    EXPECT_EQ(j["vcpus"].size(), 2u);
    EXPECT_EQ(j["vcpus"][0]["exits"]["io"], 10);
    EXPECT_EQ(j["devices"]["serial"]["bytes"], 120);
    EXPECT_EQ(j["rss_bytes"], 5 << 20);
}

TEST_F(ApiServerTest, StateTransitionsThroughCurl) {
    EXPECT_EQ(curl("PUT", "/api/v1/vm.pause").status, 200);
    EXPECT_EQ(state(), "paused");
    auto again = curl("PUT", "/api/v1/vm.pause");
    EXPECT_EQ(again.status, 409);
    EXPECT_TRUE(again.json()["error"].is_string());
    EXPECT_EQ(curl("PUT", "/api/v1/vm.resume").status, 200);
    EXPECT_EQ(state(), "running");
    EXPECT_EQ(curl("PUT", "/api/v1/vm.resume").status, 409);
    EXPECT_EQ(curl("PUT", "/api/v1/vm.reboot").status, 200);
    EXPECT_EQ(vm.reboots(), 1);
    EXPECT_EQ(curl("PUT", "/api/v1/vm.shutdown").status, 200);
    EXPECT_EQ(state(), "shutting-down");
    EXPECT_EQ(curl("PUT", "/api/v1/vm.shutdown").status, 409);
    vm.guest_powered_off();
    EXPECT_EQ(state(), "stopped");
    EXPECT_EQ(curl("PUT", "/api/v1/vm.power-off").status, 409);
}

TEST_F(ApiServerTest, PowerOff) {
    auto r = curl("PUT", "/api/v1/vm.power-off");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json()["state"], "stopped");
    EXPECT_EQ(vm.power_offs(), 1);
}

TEST_F(ApiServerTest, Snapshot) {
    std::string dest = dir.file("snap");
    auto r = curl("PUT", "/api/v1/vm.snapshot", {"-H", "Content-Type: application/json"},
                  nlohmann::json{{"destination", dest}, {"resume", false}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["destination"], dest);
    EXPECT_EQ(r.json()["state"], "paused");
    EXPECT_TRUE(std::filesystem::exists(dest + "/manifest.json"));
    EXPECT_EQ(curl("PUT", "/api/v1/vm.snapshot", {}, "{\"destination\": 7}").status, 400);
    EXPECT_EQ(curl("PUT", "/api/v1/vm.snapshot", {}, "{not json").status, 400);
}

TEST_F(ApiServerTest, UnknownPathIs404) {
    auto r = curl("GET", "/api/v1/nothing");
    EXPECT_EQ(r.status, 404);
    EXPECT_TRUE(r.json()["error"].is_string());
}

TEST_F(ApiServerTest, WrongMethodIs405WithAllow) {
    auto r = curl("POST", "/api/v1/vm.pause", {}, "{}");
    EXPECT_EQ(r.status, 405);
    EXPECT_NE(r.headers.find("Allow: PUT"), std::string::npos) << r.headers;
    EXPECT_EQ(curl("DELETE", "/api/v1/vm").status, 405);
    EXPECT_EQ(vm.mutations(), 0);
}

TEST_F(ApiServerTest, BadJsonIs400) {
    auto r = curl("PUT", "/api/v1/vm.pause", {}, "{\"unterminated");
    EXPECT_EQ(r.status, 400);
    EXPECT_TRUE(r.json()["error"].is_string());
    EXPECT_EQ(vm.pauses(), 0);
}

TEST_F(ApiServerTest, OversizedBodyIs413WithExpectContinue) {
    std::string big = "{\"destination\": \"" + std::string(70 * 1024, 'a') + "\"}";
    std::string file = dir.file("big.json");
    std::ofstream(file) << big;
    auto r = curl("PUT", "/api/v1/vm.snapshot", {}, "@" + file);
    EXPECT_EQ(r.status, 413) << r.err;
    EXPECT_TRUE(r.json()["error"].is_string());
    EXPECT_EQ(vm.snapshots(), 0);
    EXPECT_EQ(curl("GET", "/api/v1/vm").status, 200);
}

TEST_F(ApiServerTest, OversizedBodyIs413WithoutExpectContinue) {
    // The client sends the whole body at once; the server answers, drains and closes.
    std::string file = dir.file("big.json");
    std::ofstream(file) << std::string(300 * 1024, ' ');
    auto r = curl("PUT", "/api/v1/vm.pause", {"-H", "Expect:"}, "@" + file);
    EXPECT_EQ(r.status, 413) << r.err;
    EXPECT_EQ(vm.pauses(), 0);
}

TEST_F(ApiServerTest, ExpectContinueGetsAnInterimResponse) {
    // curl asks for 100-continue by itself only for large bodies; ask explicitly.
    std::string body = "{\"destination\": \"" + dir.file("snap") + "\"}";
    auto p = run_process({"curl", "-sS", "-v", "--unix-socket", sock(), "-X", "PUT", "--data-binary", body,
                          "-H", "Expect: 100-continue", "--expect100-timeout", "20",
                          "http://localhost/api/v1/vm.snapshot"});
    EXPECT_NE(p.err.find("Expect: 100-continue"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find("HTTP/1.1 100 Continue"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find("HTTP/1.1 200 OK"), std::string::npos) << p.err;
    EXPECT_EQ(vm.snapshots(), 1);
}

TEST_F(ApiServerTest, ChunkedUploadIsRefused) {
    auto p = run_process({"curl", "-sS", "--unix-socket", sock(), "-X", "PUT", "-T", "-", "-o", "/dev/null",
                          "-w", "%{http_code}", "http://localhost/api/v1/vm.pause"},
                         "{}");
    EXPECT_EQ(p.out, "411") << p.err;
    EXPECT_EQ(vm.pauses(), 0);
}

TEST_F(ApiServerTest, Http10Works) {
    auto r = curl("GET", "/api/v1/vm", {"--http1.0"});
    EXPECT_EQ(r.status, 200);
}

TEST_F(ApiServerTest, KeepAliveReusesTheConnection) {
    auto p = run_process({"curl", "-sS", "--unix-socket", sock(), "-o", "/dev/null", "-o", "/dev/null", "-w",
                          "%{num_connects} ", "http://localhost/api/v1/vm",
                          "http://localhost/api/v1/vm.counters"});
    EXPECT_EQ(p.out, "1 0 ") << p.err;
}

TEST_F(ApiServerTest, PipelinedRequestsAreAnsweredInOrder) {
    RawClient c(sock());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(
        c.send("PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\n\r\n"
               "GET /api/v1/vm HTTP/1.1\r\nHost: x\r\n\r\n"
               "PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\n\r\n"));
    std::string out = c.read_responses(3);
    size_t first = out.find("HTTP/1.1 200");
    size_t second = out.find("\"state\":\"paused\"");
    size_t third = out.find("HTTP/1.1 409");
    ASSERT_NE(first, std::string::npos) << out;
    ASSERT_NE(second, std::string::npos) << out;
    ASSERT_NE(third, std::string::npos) << out;
    EXPECT_LT(first, third);
    EXPECT_EQ(vm.pauses(), 1);
}

TEST_F(ApiServerTest, GarbageGets400AndTheServerLivesOn) {
    for (std::string garbage :
         {std::string("\x16\x03\x01\x02\x00\x01\x00", 7), std::string("hello world\r\n\r\n"),
          std::string("GET /api/v1/vm HTTP/1.1\nHost: x\n\n"),
          std::string("PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
          std::string("GET /api/v1/vm HTTP/9.9\r\n\r\n")}) {
        RawClient c(sock());
        ASSERT_TRUE(c.connected());
        c.send(garbage);
        std::string out = c.read_all();  // the server closes after an error
        EXPECT_TRUE(out.starts_with("HTTP/1.1 400") || out.starts_with("HTTP/1.1 505")) << out;
        EXPECT_NE(out.find("{\"error\":"), std::string::npos) << out;
    }
    EXPECT_EQ(vm.mutations(), 0);
    EXPECT_EQ(curl("GET", "/api/v1/vm").status, 200);
}

TEST_F(ApiServerTest, DisconnectMidRequestChangesNothing) {
    for (std::string partial :
         {std::string("PUT /api/v1/vm.pa"), std::string("PUT /api/v1/vm.pause HTTP/1.1\r\nHo"),
          std::string("PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Length: 2\r\n\r\n{"),
          std::string("PUT /api/v1/vm.snapshot HTTP/1.1\r\nContent-Length: 40\r\n\r\n"
                      "{\"destination\": \"/tmp/x\"}")}) {
        RawClient c(sock());
        ASSERT_TRUE(c.connected());
        c.send(partial);
        c.close();
    }
    // Requests reach the controller only once complete, so whenever the server notices the
    // closes, nothing may have changed.
    EXPECT_EQ(state(), "running");
    EXPECT_EQ(state(), "running");
    EXPECT_EQ(vm.mutations(), 0);
}

TEST_F(ApiServerTest, HalfClosedClientStillGetsItsAnswer) {
    RawClient c(sock());
    ASSERT_TRUE(c.connected());
    c.send("PUT /api/v1/vm.pause HTTP/1.1\r\nHost: x\r\n\r\n");
    c.shutdown_write();
    std::string out = c.read_responses(1);
    EXPECT_TRUE(out.starts_with("HTTP/1.1 200")) << out;
    EXPECT_EQ(vm.pauses(), 1);
}

TEST_F(ApiServerTest, SlowClientsDoNotBlockOthers) {
    std::vector<std::unique_ptr<RawClient>> slow;
    for (int i = 0; i < 10; ++i) {
        slow.push_back(std::make_unique<RawClient>(sock()));
        ASSERT_TRUE(slow.back()->connected());
        slow.back()->send("PUT /api/v1/vm.pause HTTP/1.1\r\nContent-Le");
    }
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(curl("GET", "/api/v1/vm").status, 200);
    // A request that does not complete within the request timeout is answered 408 and closed.
    std::string out = slow[0]->read_all();
    EXPECT_TRUE(out.starts_with("HTTP/1.1 408")) << out;
    EXPECT_EQ(vm.pauses(), 0);
}

TEST_F(ApiServerTest, ConcurrentClients) {
    constexpr int kThreads = 6;
    std::atomic<int> ok{0}, conflicts{0}, other{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 4; ++i) {
                auto r = curl("GET", "/api/v1/vm.counters");
                (r.status == 200 ? ok : other)++;
            }
            auto p = curl("PUT", "/api/v1/vm.pause");
            (p.status == 200 ? ok : p.status == 409 ? conflicts : other)++;
        });
    }
    for (auto& t : threads)
        t.join();
    EXPECT_EQ(other.load(), 0);
    EXPECT_EQ(ok.load(), kThreads * 4 + 1);  // exactly one pause wins
    EXPECT_EQ(conflicts.load(), kThreads - 1);
    EXPECT_EQ(vm.pauses(), 1);
}

TEST_F(ApiServerTest, SocketIsPrivate) {
    struct stat st {};
    ASSERT_EQ(::stat(sock().c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(ApiServerTest, SocketRemovedOnStop) {
    server->stop();
    EXPECT_FALSE(std::filesystem::exists(sock()));
    server.reset();
}

TEST_F(ApiServerTest, LiveSocketIsNotStolen) {
    ApiServerOptions o;
    o.socket_path = sock();
    auto second = ApiServer::start(o, [](const HttpRequest&) { return HttpResponse{}; });
    ASSERT_FALSE(second.ok());
    EXPECT_NE(second.error().message().find("in use"), std::string::npos) << second.error().message();
    EXPECT_EQ(curl("GET", "/api/v1/vm").status, 200);
}

TEST(UnixListener, StaleSocketIsReplacedAndOtherFilesAreNot) {
    TempDir dir("vireo-api");
    std::string path = dir.file("stale.sock");
    {
        // A socket file nobody listens on: what a crashed VMM leaves behind.
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM, 0));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
        ASSERT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    }
    ASSERT_TRUE(std::filesystem::exists(path));
    auto listener = UnixListener::create(path);
    ASSERT_TRUE(listener.ok()) << listener.error().message();
    auto c = connect_unix(path);
    EXPECT_TRUE(c.ok());
    (*listener)->close();
    EXPECT_FALSE(std::filesystem::exists(path));

    std::string file = dir.file("regular");
    std::ofstream(file) << "keep me";
    auto refused = UnixListener::create(file);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("not a socket"), std::string::npos);
    EXPECT_TRUE(std::filesystem::exists(file));

    auto too_long = UnixListener::create(dir.file(std::string(120, 'x')));
    ASSERT_FALSE(too_long.ok());
    EXPECT_NE(too_long.error().message().find("at most"), std::string::npos);
    auto missing_dir = UnixListener::create(dir.file("no/such/dir.sock"));
    EXPECT_FALSE(missing_dir.ok());
}

TEST(UnixListener, DoesNotRemoveASocketThatReplacedIt) {
    TempDir dir("vireo-api");
    std::string path = dir.file("api.sock");
    auto first = UnixListener::create(path);
    ASSERT_TRUE(first.ok());
    ASSERT_EQ(::unlink(path.c_str()), 0);  // someone else took the path over
    auto second = UnixListener::create(path);
    ASSERT_TRUE(second.ok());
    (*first)->close();
    EXPECT_TRUE(std::filesystem::exists(path));
}

class ApiServerLimitTest : public ApiServerTest {
  protected:
    ApiServerOptions options() override {
        auto o = ApiServerTest::options();
        o.max_connections = 4;
        o.request_timeout = std::chrono::milliseconds(60'000);
        return o;
    }
};

TEST_F(ApiServerLimitTest, IdleConnectionsAreEvictedAtTheLimit) {
    std::vector<std::unique_ptr<RawClient>> idle;
    for (int i = 0; i < 8; ++i) {
        idle.push_back(std::make_unique<RawClient>(sock()));
        idle.back()->send("G");
    }
    EXPECT_EQ(curl("GET", "/api/v1/vm").status, 200);
}

// `vireo api` against the same server.
class VireoApiCliTest : public ApiServerTest {
  protected:
    testing::ProcessResult vireo(std::vector<std::string> args) {
        args.insert(args.begin(), {std::string(VIREO_BINARY_DIR) + "/bin/vireo", "api"});
        return run_process(args);
    }
};

TEST_F(VireoApiCliTest, PrintsTheBody) {
    auto p = vireo({sock(), "GET", "/api/v1/vm"});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    auto j = nlohmann::json::parse(p.out, nullptr, false);
    EXPECT_EQ(j["state"], "running");
    auto short_path = vireo({sock(), "PUT", "vm.pause"});
    EXPECT_EQ(short_path.exit_code, 0) << short_path.err;
    EXPECT_EQ(vm.pauses(), 1);
}

TEST_F(VireoApiCliTest, SendsTheJsonBody) {
    std::string dest = dir.file("cli-snap");
    auto p = vireo({sock(), "PUT", "/api/v1/vm.snapshot", nlohmann::json{{"destination", dest}}.dump()});
    ASSERT_EQ(p.exit_code, 0) << p.err;
    EXPECT_EQ(nlohmann::json::parse(p.out)["destination"], dest);
    EXPECT_TRUE(std::filesystem::exists(dest + "/manifest.json"));
}

TEST_F(VireoApiCliTest, HttpErrorsExitNonZeroAndPrintTheError) {
    auto p = vireo({sock(), "PUT", "vm.resume"});
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("409"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find("already running"), std::string::npos) << p.err;
    auto nf = vireo({sock(), "GET", "vm.nothing"});
    EXPECT_EQ(nf.exit_code, 1);
    EXPECT_NE(nf.err.find("404"), std::string::npos) << nf.err;
    auto bad = vireo({sock(), "PUT", "vm.snapshot", "{oops"});
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_NE(bad.err.find("400"), std::string::npos) << bad.err;
}

TEST_F(VireoApiCliTest, UnreachableSocketIsAClearError) {
    auto p = vireo({dir.file("nobody.sock"), "GET", "vm"});
    EXPECT_EQ(p.exit_code, 2);
    EXPECT_NE(p.err.find("nobody.sock"), std::string::npos) << p.err;
}

}  // namespace
}  // namespace vireo::vmm::api
