// Interop tests for `vireo img serve --nbd` against real peers: qemu-io writes through it land
// exactly as they land in a local image, qemu-img reads it over TCP and Unix sockets, qemu-nbd
// and nbdinfo list it, a read-only export refuses writes, and the kernel's nbd-client (when the
// nbd module is there) reads and writes it. VHD cases need `vireo img create/convert/check`.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/nbd_client.hpp"
#include "support/process.hpp"

namespace vireo::test {
namespace {

// A qemu-io script with unaligned writes (the client does read-modify-write), zeroes, pipelined
// asynchronous writes and a flush.
const std::vector<std::string> kScript = {
    "write -P 0x11 0 64k",       "write -P 0x22 1000 3000",
    "write -P 0x33 1m 1m",       "write -z 1536k 64k",
    "aio_write -P 0x44 4m 64k",  "aio_write -P 0x55 5m 4k",
    "aio_write -P 0x66 6m 128k", "aio_flush",
    "write -P 0x77 12m 8m",      "flush",
};

std::vector<std::string> qemu_io_args(const std::string& format, const std::string& target,
                                      bool read_only = false) {
    std::vector<std::string> args = {"qemu-io", "-f", format};
    if (read_only) args.push_back("-r");
    for (const auto& c : kScript) {
        args.push_back("-c");
        args.push_back(c);
    }
    args.push_back(target);
    return args;
}

class NbdInteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* tool : {"qemu-img", "qemu-io"}) {
            if (!have_program(tool))
                GTEST_SKIP() << tool << " not installed (scripts/setup installs qemu-utils)";
        }
        char dir[] = "/tmp/vireo-nbd-interop-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_socket = m_dir + "/nbd.sock";
    }
    void TearDown() override {
        m_server = ServerProcess();
        if (!m_dir.empty()) std::filesystem::remove_all(m_dir);
    }
    std::string path(const std::string& name) const { return m_dir + "/" + name; }

    // Starts `vireo img serve --nbd` with `extra` options on `image`; returns the URI it prints.
    std::string serve(const std::string& image, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv = {vireo_binary(), "img", "serve", "--nbd"};
        bool tcp = false;
        for (const auto& e : extra)
            tcp = tcp || e == "--bind";
        if (!tcp) {
            argv.push_back("--socket");
            argv.push_back(m_socket);
        }
        argv.insert(argv.end(), extra.begin(), extra.end());
        argv.push_back(image);
        EXPECT_TRUE(m_server.start(argv)) << "server did not start: " << m_server.first_line();
        std::smatch m;
        static const std::regex kLine(R"(^Listening on (\S+) \((\S+)\)$)");
        std::string line = m_server.first_line();
        EXPECT_TRUE(std::regex_match(line, m, kLine)) << line;
        return m.size() == 3 ? m[2].str() : "";
    }
    // SIGTERM: the server flushes, closes and exits 0.
    void stop_server() { EXPECT_EQ(m_server.kill(SIGTERM), 0); }

    static void expect_ok(const ProcessResult& r, const std::string& what) {
        EXPECT_EQ(r.exit_code, 0) << what << ":\n" << r.output;
    }
    static bool vhd_tools_available() {
        std::string help = run_process({vireo_binary(), "img", "--help"}).output;
        for (const char* sub : {"create", "check", "convert"}) {
            if (!std::regex_search(help, std::regex(std::string("\\n  ") + sub + " "))) return false;
        }
        return true;
    }

    std::string m_dir;
    std::string m_socket;
    ServerProcess m_server;
};

TEST_F(NbdInteropTest, QemuIoWritesToRawLandExactly) {
    std::string image = path("disk.raw"), expected = path("expected.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "32M"}), "create");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", expected, "32M"}), "create");
    std::string uri = serve(image);
    EXPECT_EQ(uri, "nbd+unix:///?socket=" + m_socket);
    expect_ok(run_process(qemu_io_args("raw", uri)), "qemu-io through NBD");
    expect_ok(run_process(qemu_io_args("raw", expected)), "qemu-io on the local copy");
    stop_server();
    expect_ok(run_process({"qemu-img", "compare", "-f", "raw", "-F", "raw", image, expected}), "compare");
}

TEST_F(NbdInteropTest, QemuImgReadsOverTcpAndConvertsBitExact) {
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "16M"}), "create");
    expect_ok(run_process(
                  {"qemu-io", "-f", "raw", "-c", "write -P 0xa5 0 1m", "-c", "write -P 0x5a 15m 1m", image}),
              "fill");
    std::string uri = serve(image, {"--bind", "127.0.0.1:0", "--export-name", "disk0"});
    std::smatch m;
    ASSERT_TRUE(std::regex_match(uri, m, std::regex(R"(nbd://127\.0\.0\.1:(\d+)/disk0)"))) << uri;
    auto info = run_process({"qemu-img", "info", "--output=json", uri});
    expect_ok(info, "qemu-img info");
    EXPECT_NE(info.output.find("\"virtual-size\": 16777216"), std::string::npos) << info.output;
    expect_ok(run_process({"qemu-img", "convert", "-f", "raw", "-O", "raw", uri, path("copy.raw")}),
              "convert");
    expect_ok(run_process({"qemu-img", "compare", "-f", "raw", "-F", "raw", image, path("copy.raw")}),
              "compare");
    // An unknown export name is refused with the server's message.
    std::string wrong = "nbd://127.0.0.1:" + m[1].str() + "/other";
    auto r = run_process({"qemu-img", "info", wrong});
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("no export named 'other'"), std::string::npos) << r.output;
    stop_server();
}

// The listening sockets on `port` in /proc/net/tcp and tcp6, as "ADDR" in the kernel's hex.
std::vector<std::string> listeners_on(uint16_t port) {
    std::vector<std::string> out;
    char hex_port[8];
    std::snprintf(hex_port, sizeof hex_port, "%04X", port);
    for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
        std::ifstream in(table);
        std::string line;
        std::getline(in, line);  // header
        while (std::getline(in, line)) {
            std::istringstream fields(line);
            std::string slot, local, remote, state;
            fields >> slot >> local >> remote >> state;
            size_t colon = local.rfind(':');
            if (state == "0A" && colon != std::string::npos && local.substr(colon + 1) == hex_port)
                out.push_back(local.substr(0, colon));
        }
    }
    return out;
}

TEST_F(NbdInteropTest, ServesOnLoopbackByDefault) {
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "4M"}), "create");
    if (!listeners_on(10809).empty()) GTEST_SKIP() << "TCP port 10809 is in use on this host";
    ASSERT_TRUE(m_server.start({vireo_binary(), "img", "serve", "--nbd", image}))
        << "server did not start: " << m_server.first_line();
    EXPECT_TRUE(
        std::regex_match(m_server.first_line(),
                         std::regex(R"(^Listening on 127\.0\.0\.1:10809 \(nbd://127\.0\.0\.1:10809/?\)$)")))
        << m_server.first_line();
    // Bound to 127.0.0.1 only (7F000001 in the kernel's little-endian hex), not to every address.
    auto listeners = listeners_on(10809);
    ASSERT_EQ(listeners.size(), 1u);
    EXPECT_EQ(listeners[0], "0100007F");
    auto info = run_process({"qemu-img", "info", "--output=json", "nbd://127.0.0.1:10809"});
    expect_ok(info, "qemu-img info");
    EXPECT_NE(info.output.find("\"virtual-size\": 4194304"), std::string::npos) << info.output;
    stop_server();
}

TEST_F(NbdInteropTest, ReadOnlyExportRefusesWrites) {
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "8M"}), "create");
    expect_ok(run_process({"qemu-io", "-f", "raw", "-c", "write -P 0x42 0 64k", image}), "fill");
    std::string uri = serve(image, {"--read-only"});
    // qemu refuses to open a read-only export for writing; read-only access works.
    auto w = run_process({"qemu-io", "-f", "raw", "-c", "write -P 0x99 0 4k", uri});
    EXPECT_NE(w.exit_code, 0) << w.output;
    expect_ok(run_process({"qemu-io", "-r", "-f", "raw", "-c", "read -P 0x42 0 64k", uri}), "read");
    // A client that writes anyway gets EPERM, and the image is untouched.
    auto c = NbdClient::connect_unix(m_socket);
    ASSERT_TRUE(c.ok());
    auto info = c->go();
    ASSERT_TRUE(info.ok()) << info.error().message();
    EXPECT_NE(info->flags & nbd::kFlagReadOnly, 0);
    std::vector<uint8_t> data(4096, 0x99);
    auto err = c->write(0, data);
    ASSERT_TRUE(err.ok());
    EXPECT_EQ(*err, nbd::kEPerm);
    stop_server();
    expect_ok(run_process({"qemu-io", "-r", "-f", "raw", "-c", "read -P 0x42 0 64k", image}), "unchanged");
}

TEST_F(NbdInteropTest, QemuNbdListsTheExport) {
    if (!have_program("qemu-nbd")) GTEST_SKIP() << "qemu-nbd not installed";
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "8M"}), "create");
    serve(image, {"--export-name", "disk0"});
    auto r = run_process({"qemu-nbd", "--list", "-k", m_socket});
    expect_ok(r, "qemu-nbd --list");
    EXPECT_NE(r.output.find("export: 'disk0'"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("size:  8388608"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("min block: 512"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("max block: 33554432"), std::string::npos) << r.output;
    stop_server();
}

TEST_F(NbdInteropTest, NbdinfoListsTheExport) {
    if (!have_program("nbdinfo")) GTEST_SKIP() << "nbdinfo not installed (libnbd-bin)";
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "8M"}), "create");
    std::string uri = serve(image, {"--export-name", "disk0"});
    auto r = run_process({"nbdinfo", "--json", uri});
    expect_ok(r, "nbdinfo");
    EXPECT_NE(r.output.find("\"export-size\": 8388608"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"can_flush\": true"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"can_multi_conn\": true"), std::string::npos) << r.output;
    auto list = run_process({"nbdinfo", "--list", "nbd+unix:///?socket=" + m_socket});
    expect_ok(list, "nbdinfo --list");
    EXPECT_NE(list.output.find("disk0"), std::string::npos) << list.output;
    stop_server();
}

TEST_F(NbdInteropTest, QemuIoWritesToDynamicVhdLandExactly) {
    if (!vhd_tools_available())
        GTEST_SKIP() << "vireo img create/convert/check (VHD support) not in this build";
    for (const char* creator : {"vireo", "qemu"}) {
        SCOPED_TRACE(creator);
        std::string image = path(std::string(creator) + ".vhd"),
                    expected = path(std::string(creator) + "-expected.raw");
        if (std::string(creator) == "vireo") {
            expect_ok(run_process({vireo_binary(), "img", "create", "-f", "vhd", "--subformat", "dynamic",
                                   image, "32M"}),
                      "vireo img create");
        } else {
            expect_ok(
                run_process({"qemu-img", "create", "-f", "vpc", "-o", "subformat=dynamic", image, "32M"}),
                "qemu-img create");
        }
        expect_ok(run_process({"qemu-img", "convert", "-f", "vpc", "-O", "raw", image, expected}),
                  "expected base");
        std::string uri = serve(image);
        expect_ok(run_process(qemu_io_args("raw", uri)), "qemu-io through NBD");
        stop_server();
        expect_ok(run_process(qemu_io_args("raw", expected)), "qemu-io on the raw copy");
        // qemu's vpc driver and vireo both read the result identically to the raw copy.
        expect_ok(run_process({"qemu-img", "compare", "-f", "vpc", "-F", "raw", image, expected}),
                  "qemu compare");
        expect_ok(run_process({vireo_binary(), "img", "convert", "-O", "raw", image, path("out.raw")}),
                  "vireo convert");
        expect_ok(run_process({"qemu-img", "compare", "-f", "raw", "-F", "raw", path("out.raw"), expected}),
                  "vireo's reading");
        expect_ok(run_process({vireo_binary(), "img", "check", image}), "vireo img check");
    }
}

TEST_F(NbdInteropTest, QemuIoWritesToDifferencingVhdLandExactly) {
    if (!vhd_tools_available())
        GTEST_SKIP() << "vireo img create/convert/check (VHD support) not in this build";
    std::string parent = path("parent.vhd"), child = path("child.vhd"), expected = path("expected.raw");
    expect_ok(
        run_process({vireo_binary(), "img", "create", "-f", "vhd", "--subformat", "dynamic", parent, "32M"}),
        "create parent");
    // Parent data under and around the child's writes.
    expect_ok(run_process({"qemu-io", "-f", "vpc", "-c", "write -P 0xaa 0 32m", parent}), "fill parent");
    expect_ok(
        run_process({"qemu-img", "convert", "-f", "vpc", "-O", "raw", parent, path("parent-before.raw")}),
        "parent copy");
    expect_ok(run_process({vireo_binary(), "img", "create", "-f", "vhd", "-b", parent, child}),
              "create child");
    std::string uri = serve(child);
    expect_ok(run_process(qemu_io_args("raw", uri)), "qemu-io through NBD");
    stop_server();
    std::filesystem::copy_file(path("parent-before.raw"), expected);
    expect_ok(run_process(qemu_io_args("raw", expected)), "qemu-io on the raw copy");
    expect_ok(run_process({vireo_binary(), "img", "convert", "-O", "raw", child, path("out.raw")}),
              "vireo convert");
    expect_ok(run_process({"qemu-img", "compare", "-f", "raw", "-F", "raw", path("out.raw"), expected}),
              "child reads as parent + writes");
    // The parent did not change, and both images still open in qemu-img.
    expect_ok(
        run_process({"qemu-img", "compare", "-f", "vpc", "-F", "raw", parent, path("parent-before.raw")}),
        "parent untouched");
    expect_ok(run_process({"qemu-img", "info", child}), "qemu-img info child");
    expect_ok(run_process({vireo_binary(), "img", "check", child}), "vireo img check");
}

TEST_F(NbdInteropTest, KernelNbdClientReadsAndWrites) {
    if (!have_program("nbd-client")) GTEST_SKIP() << "nbd-client not installed";
    if (::access("/dev/nbd0", F_OK) != 0 && run_process({"modprobe", "nbd"}).exit_code != 0) {
        GTEST_SKIP()
            << "the kernel nbd module is not available on this host (no /dev/nbd0, modprobe nbd failed)";
    }
    if (::access("/dev/nbd0", F_OK) != 0)
        GTEST_SKIP() << "modprobe nbd succeeded but /dev/nbd0 did not appear";
    std::string image = path("disk.raw");
    expect_ok(run_process({"qemu-img", "create", "-f", "raw", image, "16M"}), "create");
    serve(image, {"--export-name", "disk0"});
    auto connect = run_process({"nbd-client", "-unix", m_socket, "/dev/nbd0", "-N", "disk0"});
    if (connect.exit_code != 0) GTEST_SKIP() << "nbd-client could not attach /dev/nbd0: " << connect.output;
    expect_ok(run_process({"dd", "if=/dev/urandom", "of=" + path("data"), "bs=1M", "count=2"}), "data");
    expect_ok(run_process({"dd", "if=" + path("data"), "of=/dev/nbd0", "bs=1M", "seek=3", "oflag=direct"}),
              "dd write");
    expect_ok(run_process(
                  {"dd", "if=/dev/nbd0", "of=" + path("back"), "bs=1M", "skip=3", "count=2", "iflag=direct"}),
              "dd read");
    run_process({"nbd-client", "-d", "/dev/nbd0"});
    stop_server();
    expect_ok(run_process({"cmp", path("data"), path("back")}), "read back");
    expect_ok(run_process({"cmp", "-i", "0:3145728", "-n", "2097152", path("data"), image}),
              "landed in the image");
}

}  // namespace
}  // namespace vireo::test
