// Debian's cloud kernel boots to the busybox /init, which prints a marker and powers off (label
// slow), and with virtio devices reads a file from ext4 on a dynamic VHD and pings the host over
// virtio-net on a tap. Needs hardware-accelerated KVM (as `vireo doctor` reports it); elsewhere it
// is skipped with the reason.
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "integration/linux_guest.hpp"

namespace vireo::linux_guest {
namespace {

// What `vireo doctor --json` says about this host's KVM.
std::string kvm_acceleration(double* ns) {
    ProcessResult r = run_process({kBin + "vireo", "doctor", "--json"});
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return "unknown";
    if (j["kvm"]["ns_per_instruction"].is_number()) *ns = j["kvm"]["ns_per_instruction"].get<double>();
    return j["kvm"]["acceleration"].get<std::string>();
}

// Empty when this host can boot Linux to init, else why not.
std::string cannot_boot_linux() {
    if (!have_kvm()) return "/dev/kvm is not available on this host";
    double ns = 0;
    std::string accel = kvm_acceleration(&ns);
    if (accel != "hardware") {
        return fmt::format(
            "vireo doctor reports {} KVM ({:.0f} ns per guest instruction): a Linux boot to init "
            "needs hardware-accelerated KVM",
            accel, ns);
    }
    return "";
}

TEST(LinuxBoot, BootsToBusyboxInitAndPowersOff) {
    if (std::string why = cannot_boot_linux(); !why.empty()) GTEST_SKIP() << why;
    make_guest();
    for (const char* kernel : {"vmlinuz", "vmlinux"}) {
        ProcessOptions opt;
        opt.timeout_seconds = 120;
        ProcessResult r =
            run_process({kBin + "vireo", "run", "--kernel", kCache + kernel, "--initrd",
                         kCache + "initramfs.cpio.gz", "--memory", "512", "--cpus", "2", "--cmdline",
                         "console=ttyS0 reboot=k panic=1 quiet", "--log-level", "info"},
                        opt);
        EXPECT_EQ(r.exit_code, 0) << kernel << "\n" << r.describe();
        EXPECT_NE(r.out.find("vireo-guest: init reached"), std::string::npos) << kernel << "\n"
                                                                              << r.describe();
        EXPECT_NE(r.out.find("2 CPUs"), std::string::npos) << kernel << "\n" << r.describe();
        EXPECT_NE(r.err.find("guest boot time marker"), std::string::npos) << kernel << "\n" << r.describe();
    }
}

// A tap with the host side at 10.0.2.1/24, created and removed by the test.
class HostTap {
  public:
    explicit HostTap(std::string name) : m_name(std::move(name)) {
        auto add = run_process({"/usr/sbin/ip", "tuntap", "add", "dev", m_name, "mode", "tap"});
        if (add.exit_code != 0) {
            m_error = "cannot create a tap (needs CAP_NET_ADMIN): " + add.err;
            return;
        }
        m_created = true;
        for (std::vector<std::string> cmd :
             {std::vector<std::string>{"/usr/sbin/ip", "addr", "add", "10.0.2.1/24", "dev", m_name},
              std::vector<std::string>{"/usr/sbin/ip", "link", "set", m_name, "up"}}) {
            auto r = run_process(cmd);
            if (r.exit_code != 0) m_error = "cannot configure the tap: " + r.err;
        }
    }
    ~HostTap() {
        if (m_created) run_process({"/usr/sbin/ip", "link", "del", m_name});
    }
    const std::string& error() const { return m_error; }
    const std::string& name() const { return m_name; }

  private:
    std::string m_name;
    std::string m_error;
    bool m_created = false;
};

TEST(LinuxBoot, ReadsExt4OnVhdAndPingsHostOverVirtio) {
    if (std::string why = cannot_boot_linux(); !why.empty()) GTEST_SKIP() << why;
    HostTap tap(fmt::format("vlx{}", ::getpid() % 100000));
    if (!tap.error().empty()) GTEST_SKIP() << tap.error();
    make_guest();

    // An ext4 file system built from a directory (no mount needed), as a dynamic VHD.
    namespace fs = std::filesystem;
    fs::path dir = fs::temp_directory_path() / fmt::format("vireo-linux-virtio-{}", ::getpid());
    fs::remove_all(dir);
    fs::create_directories(dir / "root");
    std::string content = fmt::format("hello from ext4 on a VHD {}", ::getpid());
    std::ofstream(dir / "root" / "hello.txt") << content << "\n";
    std::string ext4 = (dir / "fs.ext4").string();
    std::string vhd = (dir / "fs.vhd").string();
    ProcessResult mk =
        run_process({"/usr/sbin/mkfs.ext4", "-q", "-F", "-d", (dir / "root").string(), ext4, "32M"});
    ASSERT_EQ(mk.exit_code, 0) << mk.describe();
    ProcessResult cv = run_process({"/usr/bin/qemu-img", "convert", "-q", "-f", "raw", "-O", "vpc", "-o",
                                    "subformat=dynamic", ext4, vhd});
    ASSERT_EQ(cv.exit_code, 0) << cv.describe();

    ProcessOptions opt;
    opt.timeout_seconds = 120;
    ProcessResult r =
        run_process({kBin + "vireo", "run", "--kernel", kCache + "vmlinuz", "--initrd",
                     kCache + "initramfs.cpio.gz", "--memory", "512", "--cpus", "2", "--cmdline",
                     "console=ttyS0 reboot=k panic=1 quiet vireo.virtio", "--disk", vhd + ",ro", "--net",
                     "tap=" + tap.name() + ",mac=52:54:00:12:34:56", "--log-level", "info"},
                    opt);
    fs::remove_all(dir);
    EXPECT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("vireo-guest: file: " + content), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("vireo-guest: ping ok"), std::string::npos) << r.describe();
}

}  // namespace
}  // namespace vireo::linux_guest
