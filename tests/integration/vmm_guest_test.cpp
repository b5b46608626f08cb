// vireo-vmm end to end with the tiny guests of tests/guests: one per boot protocol, serial
// output and input, RTC, power-off and the three ways to reset, 2-vCPU bring-up, unclaimed
// accesses, emulation failures, signals, and `vireo run`.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <sstream>

#include <fmt/format.h>

#include "arch/x86/e820.hpp"
#include "integration/process.hpp"

namespace vireo {
namespace {

using testing::count_of;
using testing::ProcessOptions;
using testing::ProcessResult;
using testing::run_process;

ProcessOptions timeout(double seconds) {
    ProcessOptions o;
    o.timeout_seconds = seconds;
    return o;
}

const std::string kBin = std::string(VIREO_BINARY_DIR) + "/bin/";
const std::string kGuests = std::string(VIREO_BINARY_DIR) + "/guests/";

bool have_kvm() {
    return ::access("/dev/kvm", R_OK | W_OK) == 0;
}
bool have_guests() {
    return ::access((kGuests + "pvh32.elf").c_str(), R_OK) == 0;
}

#define REQUIRE_KVM_AND_GUESTS()                                                           \
    do {                                                                                   \
        if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";         \
        if (!have_guests()) GTEST_SKIP() << "test guests were not built (no host gcc/ld)"; \
    } while (0)

ProcessResult vmm(const std::string& guest, const std::string& cmdline, std::vector<std::string> extra = {},
                  ProcessOptions opt = {}) {
    std::vector<std::string> argv = {kBin + "vireo-vmm", "--kernel", kGuests + guest, "--cmdline", cmdline,
                                     "--memory",         "64"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    if (opt.timeout_seconds == 60) opt.timeout_seconds = 30;
    return run_process(argv, opt);
}

// The e820 lines the guest prints for the map Vireo builds.
std::string expected_e820(uint64_t ram_bytes) {
    std::string s;
    for (const auto& e : arch::x86::build_e820(ram_bytes)) {
        s += fmt::format("e820: {:016x}-{:016x} {}\n", e.addr, e.end() - 1, static_cast<uint32_t>(e.type));
    }
    return s;
}

struct Protocol {
    const char* file;
    const char* banner;
    const char* mode;
};
const Protocol kProtocols[] = {
    {"pvh32.elf", "vireo-guest: pvh32", "mode: protected32 paging=off cs=0x10"},
    {"pvh64.elf", "vireo-guest: pvh64", "mode: long paging=on cs=0x08"},  // its own GDT
    {"vmlinux64.elf", "vireo-guest: vmlinux", "mode: long paging=on cs=0x10"},
    {"bzImage", "vireo-guest: bzimage", "mode: long paging=on cs=0x10"},
};

TEST(VmmGuests, EachBootProtocolBootsWithCmdlineMemoryMapAndRsdp) {
    REQUIRE_KVM_AND_GUESTS();
    for (const Protocol& p : kProtocols) {
        ProcessResult r = vmm(p.file, "hello=world exit=poweroff");
        EXPECT_EQ(r.exit_code, 0) << p.file << "\n" << r.describe();
        EXPECT_NE(r.out.find(std::string(p.banner) + "\n"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find(p.mode), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("cmdline: hello=world exit=poweroff\n"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find(expected_e820(64 << 20)), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("rsdp: 0x000e0000"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("exit: poweroff"), std::string::npos) << r.describe();
        if (std::string(p.file).starts_with("pvh")) {
            EXPECT_NE(r.out.find("pvh: version 1"), std::string::npos) << r.describe();
        } else {
            EXPECT_NE(r.out.find("linux: boot_flag 0xaa55 loader 0xff"), std::string::npos) << r.describe();
        }
    }
}

uint32_t guest_hash(const std::string& data) {
    uint32_t sum = 0;
    for (unsigned char c : data)
        sum = sum * 31 + c;
    return sum;
}

TEST(VmmGuests, InitrdReachesTheGuestIntact) {
    REQUIRE_KVM_AND_GUESTS();
    std::string initrd;
    for (int i = 0; i < 6000; ++i)
        initrd.push_back(static_cast<char>((i * 131) ^ (i >> 3)));
    std::string path = ::testing::TempDir() + "vireo-initrd.bin";
    std::ofstream(path, std::ios::binary) << initrd;
    for (const char* guest : {"pvh32.elf", "pvh64.elf", "vmlinux64.elf", "bzImage"}) {
        ProcessResult r = vmm(guest, "exit=poweroff", {"--initrd", path});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        std::string expect = fmt::format("size=6000 hash=0x{:08x}", guest_hash(initrd));
        EXPECT_NE(r.out.find(expect), std::string::npos) << guest << " want " << expect << "\n"
                                                         << r.describe();
    }
}

TEST(VmmGuests, MemoryAboveTheHole) {
    REQUIRE_KVM_AND_GUESTS();
    // 4 GiB: 3 GiB below the hole, 1 GiB above 4 GiB (host pages are only used when touched).
    ProcessResult r = vmm("pvh32.elf", "exit=poweroff", {"--memory", "4096"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find(expected_e820(4ull << 30)), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("e820: 0000000100000000-000000013fffffff 1"), std::string::npos) << r.describe();
}

TEST(VmmGuests, RtcReadsHostDate) {
    REQUIRE_KVM_AND_GUESTS();
    auto today = [] {
        std::time_t t = std::time(nullptr);
        char buf[16];
        std::strftime(buf, sizeof buf, "%Y-%m-%d", std::gmtime(&t));
        return std::string(buf);
    };
    std::string before = today();
    ProcessResult r = vmm("vmlinux64.elf", "rtc exit=poweroff");
    std::string after = today();
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    bool match = r.out.find("rtc: " + before + " ") != std::string::npos ||
                 r.out.find("rtc: " + after + " ") != std::string::npos;
    EXPECT_TRUE(match) << "host date " << before << "\n" << r.describe();
}

TEST(VmmGuests, ResetsEndTheVmWithStatusZero) {
    REQUIRE_KVM_AND_GUESTS();
    for (const char* how : {"reset-kbd", "reset-cf9", "triple"}) {
        ProcessResult r = vmm("pvh64.elf", std::string("exit=") + how, {"--log-level", "info"});
        EXPECT_EQ(r.exit_code, 0) << how << "\n" << r.describe();
        EXPECT_NE(r.out.find(std::string("exit: ") + how), std::string::npos) << r.describe();
        EXPECT_NE(r.err.find("exiting (--on-reboot exit)"), std::string::npos) << r.describe();
    }
}

// KVM's teardown of the VM (SRCU grace periods: milliseconds) is handed to a child process at
// exit (kvm/teardown.hpp): it is there, named, holds none of the VMM's output, and exits cleanly.
TEST(VmmGuests, KvmTeardownRunsInAChildAfterTheVmmExits) {
    REQUIRE_KVM_AND_GUESTS();
    // Orphans of our children come to this process, so the teardown child can be waited for.
    ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    ProcessResult r = vmm("pvh32.elf", "quiet exit=triple", {"--serial", "none"});
    ::prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0);
    ASSERT_EQ(r.exit_code, 0) << r.describe();  // run_process read the output to end-of-file
    siginfo_t info{};
    ASSERT_EQ(::waitid(P_ALL, 0, &info, WEXITED | WNOWAIT), 0)
        << "no teardown child: " << std::strerror(errno);
    std::ifstream comm(fmt::format("/proc/{}/comm", info.si_pid));
    std::string name;
    std::getline(comm, name);
    EXPECT_EQ(name, "vireo-teardown");
    int status = 0;
    ASSERT_EQ(::waitpid(info.si_pid, &status, 0), info.si_pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST(VmmGuests, OnRebootRestartBootsAgain) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessOptions opt;
    opt.stop_when = [](const std::string& out, const std::string&) {
        return count_of(out, "vireo-guest: bzimage") >= 3;
    };
    ProcessResult r = vmm("bzImage", "exit=reset-kbd", {"--on-reboot", "restart"}, opt);
    EXPECT_TRUE(r.stopped_early) << r.describe();
    EXPECT_GE(count_of(r.out, "exit: reset-kbd"), 2) << r.describe();
}

TEST(VmmGuests, TwoVcpusComeUpThroughInitSipi) {
    REQUIRE_KVM_AND_GUESTS();
    for (const char* guest : {"pvh32.elf", "vmlinux64.elf"}) {
        ProcessResult r = vmm(guest, "smp=2 cpuid exit=poweroff", {"--cpus", "2"});
        ASSERT_EQ(r.exit_code, 0) << r.describe();
        EXPECT_NE(r.out.find("smp: bsp apic id 0\n"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("smp: cpu 1 up, apic id 1\n"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("smp: 2 cpus\n"), std::string::npos) << r.describe();
        // CPUID leaf 1 on the boot CPU: APIC ID 0, two logical processors, CLFLUSH 64 bytes.
        EXPECT_NE(r.out.find("cpuid: 1.ebx=0x00020800"), std::string::npos) << r.describe();
        EXPECT_NE(r.out.find("hv=KVMKVMKVM"), std::string::npos) << r.describe();
    }
}

uint32_t leaf1_ecx(const std::string& out) {
    size_t pos = out.find("1.ecx=0x");
    return pos == std::string::npos ? 0
                                    : static_cast<uint32_t>(std::stoul(out.substr(pos + 8, 8), nullptr, 16));
}

TEST(VmmGuests, CpuFeatureMasksReachTheGuest) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult plain = vmm("pvh64.elf", "cpuid exit=poweroff");
    ASSERT_EQ(plain.exit_code, 0) << plain.describe();
    ProcessResult masked = vmm("pvh64.elf", "cpuid exit=poweroff", {"--cpu-features", "-cx16,-x2apic"});
    ASSERT_EQ(masked.exit_code, 0) << masked.describe();
    uint32_t bits = (1u << 13) | (1u << 21);  // cx16, x2apic
    EXPECT_EQ(leaf1_ecx(plain.out) & bits, bits) << plain.describe();
    EXPECT_EQ(leaf1_ecx(masked.out) & bits, 0u) << masked.describe();
}

TEST(VmmGuests, FourVcpus) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult r = vmm("pvh64.elf", "smp=4 exit=poweroff", {"--cpus", "4"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("smp: cpu 3 up, apic id 3\n"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find("smp: 4 cpus\n"), std::string::npos) << r.describe();
}

TEST(VmmGuests, SerialInputFromStdin) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessOptions opt;
    opt.late_input = "hello vireo\r";
    opt.write_when = [](const std::string& out, const std::string&) {
        return out.find("echo: ready") != std::string::npos;
    };
    ProcessResult r = vmm("pvh32.elf", "echo exit=poweroff", {}, opt);
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("echo: got hello vireo\n"), std::string::npos) << r.describe();
}

TEST(VmmGuests, CtrlAXQuits) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessOptions opt;
    opt.late_input = "\x01x";
    opt.write_when = [](const std::string& out, const std::string&) {
        return out.find("exit: hang") != std::string::npos;
    };
    ProcessResult r = vmm("pvh64.elf", "exit=hang", {}, opt);
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_EQ(r.exit_code, 0) << r.describe();
}

// On a terminal the console switches it to raw mode (so Ctrl-C reaches the guest) and puts it
// back as it was when the VM ends.
TEST(VmmGuests, TerminalIsRawWhileRunningAndRestoredAfter) {
    REQUIRE_KVM_AND_GUESTS();
    int master = -1, slave = -1;
    ASSERT_EQ(::openpty(&master, &slave, nullptr, nullptr, nullptr), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        ::setsid();
        ::ioctl(slave, TIOCSCTTY, 0);
        ::dup2(slave, 0);
        ::dup2(slave, 1);
        ::dup2(slave, 2);
        ::close(master);
        std::string vmm = kBin + "vireo-vmm", kernel = kGuests + "pvh64.elf";
        ::execl(vmm.c_str(), vmm.c_str(), "--kernel", kernel.c_str(), "--cmdline", "exit=hang", "--memory",
                "32", static_cast<char*>(nullptr));
        ::_exit(127);
    }
    termios before{};
    ASSERT_EQ(::tcgetattr(slave, &before), 0);
    std::string out;
    double deadline = testing::monotonic_seconds() + 30;
    while (out.find("exit: hang") == std::string::npos && testing::monotonic_seconds() < deadline) {
        pollfd p{master, POLLIN, 0};
        if (::poll(&p, 1, 200) > 0) {
            char buf[512];
            ssize_t n = ::read(master, buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, static_cast<size_t>(n));
        }
    }
    ASSERT_NE(out.find("exit: hang"), std::string::npos) << out;
    termios during{};
    ASSERT_EQ(::tcgetattr(slave, &during), 0);
    EXPECT_TRUE(before.c_lflag & ICANON);
    EXPECT_FALSE(during.c_lflag & ICANON);
    EXPECT_FALSE(during.c_lflag & ECHO);
    EXPECT_FALSE(during.c_lflag & ISIG);  // Ctrl-C goes to the guest
    ASSERT_EQ(::write(master, "\x01x", 2), 2);
    int status = 0;
    ::waitpid(pid, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    termios after{};
    ASSERT_EQ(::tcgetattr(slave, &after), 0);
    EXPECT_EQ(after.c_lflag, before.c_lflag);
    EXPECT_EQ(after.c_iflag, before.c_iflag);
    EXPECT_EQ(after.c_oflag, before.c_oflag);
    ::close(slave);
    ::close(master);
}

TEST(VmmGuests, SigtermStopsTheVm) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessOptions opt;
    opt.signal_to_send = SIGTERM;
    opt.signal_when = [](const std::string& out, const std::string&) {
        return out.find("exit: spin") != std::string::npos;
    };
    ProcessResult r = vmm("pvh64.elf", "exit=spin", {"--cpus", "2"}, opt);
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_EQ(r.exit_code, 128 + SIGTERM) << r.describe();
    EXPECT_NE(r.err.find("signal 15"), std::string::npos) << r.describe();
}

TEST(VmmGuests, SerialToFileAndNone) {
    REQUIRE_KVM_AND_GUESTS();
    std::string path = ::testing::TempDir() + "vireo-serial.txt";
    ProcessResult r = vmm("pvh32.elf", "exit=poweroff", {"--serial", "file:" + path});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_EQ(r.out, "");
    std::ifstream in(path);
    std::string file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_NE(file.find("vireo-guest: pvh32"), std::string::npos) << file;

    ProcessResult none = vmm("pvh32.elf", "exit=poweroff", {"--serial", "none"});
    EXPECT_EQ(none.exit_code, 0) << none.describe();
    EXPECT_EQ(none.out, "");
}

TEST(VmmGuests, UnclaimedAccessesReadAllOnesAndAreLoggedOnce) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult r = vmm("pvh64.elf", "probe exit=poweroff", {"--log-level", "info"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("probe: port 0xffffffff mmio 0xffffffff"), std::string::npos) << r.describe();
    EXPECT_EQ(count_of(r.err, "unclaimed port 0x510"), 1) << r.describe();
    EXPECT_EQ(count_of(r.err, "unclaimed MMIO 0xc0000000"), 1) << r.describe();
}

TEST(VmmGuests, EmulationFailureReportsRipAndExitsNonZero) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult r = vmm("pvh64.elf", "exit=jump-mmio");
    EXPECT_FALSE(r.timed_out) << r.describe();
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("RIP 0xc0000000"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("instruction bytes"), std::string::npos) << r.describe();
}

TEST(VmmGuests, BootTimerMarker) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult r = vmm("vmlinux64.elf", "boottimer exit=poweroff", {"--log-level", "info"});
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.err.find("guest boot time marker:"), std::string::npos) << r.describe();
}

TEST(VmmGuests, VireoRunExecsTheVmm) {
    REQUIRE_KVM_AND_GUESTS();
    ProcessResult r = run_process({kBin + "vireo", "run", "--kernel", kGuests + "bzImage", "--cmdline",
                                   "via run exit=poweroff", "--memory", "48", "--cpus", "2"},
                                  timeout(30));
    ASSERT_EQ(r.exit_code, 0) << r.describe();
    EXPECT_NE(r.out.find("cmdline: via run exit=poweroff"), std::string::npos) << r.describe();
    EXPECT_NE(r.out.find(expected_e820(48 << 20)), std::string::npos) << r.describe();
    ProcessResult bad =
        run_process({kBin + "vireo", "run", "--kernel", kGuests + "bzImage", "--on-reboot", "never"});
    EXPECT_EQ(bad.exit_code, 1) << bad.describe();
    EXPECT_NE(bad.err.find("--on-reboot 'never'"), std::string::npos) << bad.describe();
}

TEST(VmmErrors, BadInputGetsAClearMessageAndStatusOne) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    std::string junk = ::testing::TempDir() + "vireo-junk.bin";
    std::ofstream(junk, std::ios::binary) << std::string(8192, 'x');
    std::string truncated = ::testing::TempDir() + "vireo-truncated.bzImage";
    {
        std::ifstream in(kGuests + "bzImage", std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream(truncated, std::ios::binary) << data.substr(0, 1100);
    }
    std::string truncated_elf = ::testing::TempDir() + "vireo-truncated.elf";
    {
        std::ifstream in(kGuests + "pvh64.elf", std::ios::binary);
        std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::ofstream(truncated_elf, std::ios::binary) << data.substr(0, 3000);
    }
    struct Case {
        std::vector<std::string> args;
        const char* expect;
    };
    const Case cases[] = {
        {{"--kernel", "/nonexistent/kernel"}, "--kernel /nonexistent/kernel: No such file or directory"},
        {{"--kernel", junk}, "unrecognized kernel image"},
        {{"--kernel", truncated}, "truncated"},
        {{"--kernel", truncated_elf}, "extends past the end of the file"},
        {{"--kernel", junk, "--cpu-features", "-warp-drive"}, "unknown CPU feature 'warp-drive'"},
        {{"--kernel", junk, "--memory", "0"}, "--memory 0"},
        {{"--kernel", kGuests + "pvh32.elf", "--initrd", "/nonexistent/initrd"},
         "--initrd /nonexistent/initrd"},
        {{"--kernel", kGuests + "pvh32.elf", "--serial", "file:/nonexistent/dir/out"},
         "file:/nonexistent/dir/out"},
        {{}, "--kernel is required"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv = {kBin + "vireo-vmm"};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        ProcessResult r = run_process(argv, timeout(20));
        EXPECT_EQ(r.exit_code, 1) << c.expect << "\n" << r.describe();
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.expect << "\n" << r.describe();
        EXPECT_EQ(r.err.rfind("vireo-vmm: ", 0), 0u) << r.describe();
    }
}

// `vireo run` checks option values before it starts vireo-vmm; both name the option and exit 1
// (CLI11's own parse errors, such as a non-number, exit non-zero with its message).
TEST(VmmErrors, BadOptionValuesThroughVireoRun) {
    if (!have_kvm() || !have_guests()) GTEST_SKIP() << "needs /dev/kvm and the test guests";
    const std::string kernel = kGuests + "pvh64.elf";
    struct Case {
        std::vector<std::string> args;
        const char* expect;
    };
    const Case cases[] = {
        {{"--cpus", "0"}, "--cpus 0: must be between 1 and"},
        {{"--cpus", "1000"}, "--cpus 1000: must be between 1 and"},
        {{"--cpus", "two"}, "--cpus"},
        {{"--memory", "lots"}, "--memory lots"},
        {{"--memory", "0"}, "--memory 0"},
        {{"--memory", "1.5K"}, "--memory 1.5K"},
        {{"--serial", "tty"}, "--serial 'tty': use stdio, file:PATH or none"},
        {{"--serial", "file:"}, "--serial file: needs a path"},
        {{"--on-reboot", "halt"}, "--on-reboot 'halt': use exit or restart"},
        {{"--cpu-features", "-xsave,,-cx16"}, "empty item"},
        {{"--cpu-features", "-nosuchflag"}, "unknown CPU feature 'nosuchflag'"},
        {{"--log-level", "loud"}, "unknown log level 'loud'"},
        {{"--no-such-option"}, "--no-such-option"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv = {kBin + "vireo", "run",       "--kernel",
                                         kernel,         "--cmdline", "exit=poweroff"};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        ProcessResult r = run_process(argv, timeout(20));
        EXPECT_NE(r.exit_code, 0) << c.expect << "\n" << r.describe();
        EXPECT_NE(r.err.find(c.expect), std::string::npos) << c.expect << "\n" << r.describe();
        EXPECT_EQ(r.out.find("vireo-guest"), std::string::npos) << "the VM ran\n" << r.describe();
    }
}

// Without access to /dev/kvm the VMM says so and how to fix it. Run as root, the test drops to
// the unprivileged user `nobody` to see it.
TEST(VmmErrors, NoPermissionOnDevKvm) {
    struct stat st {};
    if (::stat("/dev/kvm", &st) != 0) GTEST_SKIP() << "/dev/kvm does not exist on this host";
    if (st.st_mode & S_IROTH && st.st_mode & S_IWOTH) GTEST_SKIP() << "every user may open /dev/kvm here";
    std::vector<std::string> argv;
    if (::geteuid() == 0) {
        if (::access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "setpriv (util-linux) is missing";
        argv = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
    } else if (have_kvm()) {
        GTEST_SKIP() << "this user may open /dev/kvm and cannot drop that right";
    }
    argv.insert(argv.end(), {kBin + "vireo", "run", "--kernel", kGuests + "pvh64.elf"});
    ProcessResult r = run_process(argv, timeout(20));
    EXPECT_EQ(r.exit_code, 1) << r.describe();
    EXPECT_NE(r.err.find("vireo-vmm: /dev/kvm: permission denied"), std::string::npos) << r.describe();
    EXPECT_NE(r.err.find("kvm group"), std::string::npos) << r.describe();
}

TEST(VmmErrors, HugePagesWithoutAPoolAreExplained) {
    if (!have_kvm() || !have_guests()) GTEST_SKIP() << "needs /dev/kvm and the test guests";
    std::ifstream nr("/proc/sys/vm/nr_hugepages");
    long pages = 0;
    nr >> pages;
    ProcessResult r = vmm("pvh32.elf", "exit=poweroff", {"--hugepages", "--memory", "64"});
    if (pages >= 32) {
        EXPECT_EQ(r.exit_code, 0) << r.describe();
    } else {
        EXPECT_EQ(r.exit_code, 1) << r.describe();
        EXPECT_NE(r.err.find("huge pages"), std::string::npos) << r.describe();
    }
}

}  // namespace
}  // namespace vireo
