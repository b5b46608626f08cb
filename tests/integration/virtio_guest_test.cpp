// vireo-vmm with the virtio test guest (tests/guests/virtio_guest.c): PCI enumeration through
// both configuration mechanisms, virtio-blk on raw, fixed, dynamic and differencing VHD images
// (checked afterwards with qemu-img and vireo img), read-only disks, MSI-X through irqfd, a
// reset with I/O in flight, and an Ethernet frame each way over a tap the test creates.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include <fmt/format.h>

#include "integration/process.hpp"

namespace vireo {
namespace {

using testing::ProcessOptions;
using testing::ProcessResult;
using testing::run_process;

const std::string kBin = std::string(VIREO_BINARY_DIR) + "/bin/";
const std::string kGuest = std::string(VIREO_BINARY_DIR) + "/guests/virtio_guest.elf";
// 241 cylinders x 4 heads x 17 sectors: a size VHD's CHS geometry represents exactly, so the
// VHDs qemu-img makes from the raw image have the same size.
constexpr uint64_t kDiskSize = 241 * 4 * 17 * 512;
const std::string kSignature = "VIREO-DISK-SIGNATURE:sector-zero";

#define REQUIRE_KVM_AND_GUEST()                                                                          \
    do {                                                                                                 \
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not available";         \
        if (::access(kGuest.c_str(), R_OK) != 0) GTEST_SKIP() << "virtio test guest not built (gcc/ld)"; \
    } while (0)

ProcessResult vmm(const std::string& cmdline, std::vector<std::string> extra, double timeout = 60) {
    std::vector<std::string> argv = {kBin + "vireo-vmm", "--kernel", kGuest, "--cmdline", cmdline,
                                     "--memory",         "64"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ProcessOptions o;
    o.timeout_seconds = timeout;
    return run_process(argv, o);
}

ProcessResult tool(std::vector<std::string> argv) {
    return run_process(argv, ProcessOptions{});
}

bool has(const ProcessResult& r, const std::string& line) {
    return r.out.find(line) != std::string::npos;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The raw bytes a fresh test disk holds: the signature in sector 0, the rest zero.
std::string fresh_disk() {
    std::string d(kDiskSize, '\0');
    std::memcpy(d.data(), kSignature.data(), kSignature.size());
    return d;
}

// What the guest's blk run leaves on the disk: sectors 8-15 with its pattern.
std::string after_guest_write(std::string disk) {
    for (uint32_t i = 0; i < 4096; ++i)
        disk[8 * 512 + i] = static_cast<char>(static_cast<uint8_t>(i * 7 + (i >> 9)));
    return disk;
}

uint32_t guest_hash(const std::string& bytes) {
    uint32_t h = 0;
    for (unsigned char c : bytes)
        h = h * 31 + c;
    return h;
}

class VirtioGuest : public ::testing::Test {
  protected:
    void SetUp() override {
        m_dir = ::testing::TempDir() + "vireo-virtio-" + std::to_string(::getpid()) + "/";
        ::mkdir(m_dir.c_str(), 0755);
        std::ofstream(m_dir + "base.raw", std::ios::binary) << fresh_disk();
    }
    void TearDown() override { tool({"/bin/rm", "-rf", m_dir}); }
    std::string path(const std::string& name) { return m_dir + name; }
    // Converts base.raw into a VHD of the given subformat with qemu-img.
    std::string make_vhd(const std::string& subformat) {
        std::string out = path(subformat + ".vhd");
        auto r = tool({"/usr/bin/qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o",
                       "subformat=" + subformat, path("base.raw"), out});
        EXPECT_EQ(r.exit_code, 0) << r.describe();
        return out;
    }
    void expect_blk_run(const ProcessResult& r, const std::string& serial) {
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_TRUE(has(r, fmt::format("blk: capacity {}\n", kDiskSize / 512))) << r.describe();
        EXPECT_TRUE(has(r, "blk: serial " + serial + "\n")) << r.describe();
        EXPECT_TRUE(has(r, "blk: sector0 " + kSignature.substr(0, 16) +
                               fmt::format(" hash 0x{:08x}", guest_hash(fresh_disk().substr(0, 512)))))
            << r.describe();
        EXPECT_TRUE(has(r, "blk: write+flush+read ok\n")) << r.describe();
        EXPECT_TRUE(has(r, "blk: read past end status 1\n")) << r.describe();  // VIRTIO_BLK_S_IOERR
        EXPECT_TRUE(has(r, "virtio-guest: done")) << r.describe();
    }
    std::string m_dir;
};

TEST_F(VirtioGuest, EnumeratesPciThroughPortsAndEcam) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("pci", {"--disk", path("base.raw"), "--rng", "--console", "file:" + path("hvc0"),
                                  "--serial", "stdio"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(has(r, "pci: 00:00.0 1b36:0008 class 060000")) << r.describe();
    EXPECT_TRUE(has(r, "pci: 00:01.0 1af4:1042 class 018000 irq 10")) << r.describe();  // _PRT: slot 1 INTA
    EXPECT_TRUE(has(r, "pci: 00:02.0 1af4:1043 class 078000 irq 11")) << r.describe();
    EXPECT_TRUE(has(r, "pci: 00:03.0 1af4:1044 class ff0000 irq 7")) << r.describe();
    EXPECT_TRUE(has(r, "ecam: agrees")) << r.describe();
}

TEST_F(VirtioGuest, BlockOnRawImage) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("blk", {"--disk", path("base.raw") + ",serial=raw-disk-0001"});
    expect_blk_run(r, "raw-disk-0001");
    EXPECT_TRUE(has(r, "blk: isr 1\n")) << "INTx path: the ISR says queue interrupt\n" << r.describe();
    EXPECT_TRUE(read_file(path("base.raw")) == after_guest_write(fresh_disk()));
    // qemu-img agrees.
    std::ofstream(path("expect.raw"), std::ios::binary) << after_guest_write(fresh_disk());
    auto cmp = tool({"/usr/bin/qemu-img", "compare", "-q", "-f", "raw", "-F", "raw", path("base.raw"),
                     path("expect.raw")});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.describe();
}

TEST_F(VirtioGuest, BlockOnDynamicAndFixedVhdDetectedFromTheFile) {
    REQUIRE_KVM_AND_GUEST();
    std::ofstream(path("expect.raw"), std::ios::binary) << after_guest_write(fresh_disk());
    for (const char* sub : {"dynamic", "fixed"}) {
        std::string vhd = make_vhd(sub);
        ProcessResult r = vmm("blk", {"--disk", vhd + ",serial=vhd-" + std::string(sub)});  // no format=
        expect_blk_run(r, std::string("vhd-") + sub);
        auto cmp =
            tool({"/usr/bin/qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", vhd, path("expect.raw")});
        EXPECT_EQ(cmp.exit_code, 0) << sub << "\n" << cmp.describe();
        auto check = tool({kBin + "vireo", "img", "check", vhd});
        EXPECT_EQ(check.exit_code, 0) << sub << "\n" << check.describe();
    }
}

TEST_F(VirtioGuest, BlockOnDifferencingVhd) {
    REQUIRE_KVM_AND_GUEST();
    std::string parent = make_vhd("dynamic");
    std::string child = path("child.vhd");
    auto created = tool({kBin + "vireo", "img", "create", "-b", parent, child});
    ASSERT_EQ(created.exit_code, 0) << created.describe();
    ProcessResult r = vmm("blk", {"--disk", child + ",format=vhd,serial=child"});
    expect_blk_run(r, "child");  // reads the parent's sector 0 through the child
    // The child holds the write; the parent is untouched.
    auto converted = tool({kBin + "vireo", "img", "convert", "-O", "raw", child, path("child.raw")});
    ASSERT_EQ(converted.exit_code, 0) << converted.describe();
    EXPECT_TRUE(read_file(path("child.raw")) == after_guest_write(fresh_disk()));
    auto parent_cmp =
        tool({"/usr/bin/qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", parent, path("base.raw")});
    EXPECT_EQ(parent_cmp.exit_code, 0) << parent_cmp.describe();
}

TEST_F(VirtioGuest, ReadOnlyDiskRefusesWrites) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("blk", {"--disk", path("base.raw") + ",ro"});
    EXPECT_TRUE(has(r, "blk: sector0 VIREO-DISK-SIGNA")) << r.describe();
    EXPECT_TRUE(has(r, "FAIL: blk: write\n")) << "the write must come back with an I/O error\n"
                                              << r.describe();
    EXPECT_TRUE(read_file(path("base.raw")) == fresh_disk());
}

TEST_F(VirtioGuest, MsixInterruptsThroughIrqfd) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("msix blk", {"--disk", path("base.raw")});
    expect_blk_run(r, "");
    EXPECT_TRUE(has(r, "blk: msix interrupts 1\n")) << r.describe();
}

TEST_F(VirtioGuest, ResetWithRequestsInFlight) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("reset-io", {"--disk", path("base.raw")});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(has(r, "reset: status 0\n")) << r.describe();
    EXPECT_TRUE(has(r, "reset: device works again\n")) << r.describe();
}

TEST_F(VirtioGuest, MissingTapIsAClearError) {
    REQUIRE_KVM_AND_GUEST();
    ProcessResult r = vmm("net", {"--net", "tap=vireo-none0"}, 20);
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("tap vireo-none0: no such network interface"), std::string::npos) << r.describe();
}

// A tap the test creates (and removes) for one VM.
class TestTap {
  public:
    explicit TestTap(std::string name) : m_name(std::move(name)) {
        auto add = run_process({"/usr/sbin/ip", "tuntap", "add", "dev", m_name, "mode", "tap"});
        if (add.exit_code != 0) {
            m_error = "cannot create a tap (needs CAP_NET_ADMIN): " + add.err;
            return;
        }
        m_created = true;
        auto up = run_process({"/usr/sbin/ip", "link", "set", m_name, "up"});
        if (up.exit_code != 0) m_error = "cannot bring the tap up: " + up.err;
    }
    ~TestTap() {
        if (m_created) run_process({"/usr/sbin/ip", "link", "del", m_name});
    }
    const std::string& error() const { return m_error; }
    const std::string& name() const { return m_name; }

  private:
    std::string m_name;
    std::string m_error;
    bool m_created = false;
};

TEST_F(VirtioGuest, EthernetFramesBothWaysOverATap) {
    REQUIRE_KVM_AND_GUEST();
    TestTap tap(fmt::format("vrt{}", ::getpid() % 100000));
    if (!tap.error().empty()) GTEST_SKIP() << tap.error();
    int sock = ::socket(AF_PACKET, SOCK_RAW, htons(0x88b5));
    if (sock < 0) GTEST_SKIP() << "no AF_PACKET socket: " << std::strerror(errno);
    sockaddr_ll addr{};
    addr.sll_family = AF_PACKET;
    addr.sll_protocol = htons(0x88b5);
    addr.sll_ifindex = static_cast<int>(::if_nametoindex(tap.name().c_str()));
    ASSERT_EQ(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
    timeval tv{30, 0};
    ::setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

    // The host side: wait for the guest's frame, answer it.
    std::string received;
    std::thread peer([&] {
        uint8_t buf[2048];
        ssize_t n = ::recv(sock, buf, sizeof buf, 0);
        if (n < 14) return;
        received.assign(reinterpret_cast<char*>(buf), static_cast<size_t>(n));
        std::string reply(buf + 6, buf + 12);  // to the guest's MAC
        reply += std::string("\x02\x00\x00\x00\x00\x01", 6);
        reply += std::string("\x88\xb5", 2);
        reply += "hello-from-host";
        reply.resize(60, '\0');
        [[maybe_unused]] ssize_t sent = ::send(sock, reply.data(), reply.size(), 0);
    });
    ProcessResult r = vmm("net", {"--net", "tap=" + tap.name() + ",mac=52:54:00:12:34:56"}, 60);
    peer.join();
    ::close(sock);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_TRUE(has(r, "net: mac 52:54:00:12:34:56\n")) << r.describe();
    ASSERT_GE(received.size(), 14u + 17u);
    EXPECT_EQ(received.substr(0, 6), std::string(6, '\xff'));
    EXPECT_EQ(received.substr(6, 6), std::string("\x52\x54\x00\x12\x34\x56", 6));
    EXPECT_EQ(received.substr(14, 17), "vireo-guest-frame");
    EXPECT_TRUE(has(r, "net: received hello-from-host num_buffers 1\n")) << r.describe();
}

}  // namespace
}  // namespace vireo
