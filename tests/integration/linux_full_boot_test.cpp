// Debian's cloud kernel boots to the busybox /init, which prints a marker and powers off (label
// slow). Needs hardware-accelerated KVM (as `vireo doctor` reports it); elsewhere it is skipped
// with the reason.
#include <nlohmann/json.hpp>

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

TEST(LinuxBoot, BootsToBusyboxInitAndPowersOff) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    double ns = 0;
    std::string accel = kvm_acceleration(&ns);
    if (accel != "hardware") {
        GTEST_SKIP() << fmt::format(
            "vireo doctor reports {} KVM ({:.0f} ns per guest instruction): a Linux boot to init needs "
            "hardware-accelerated KVM",
            accel, ns);
    }
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

}  // namespace
}  // namespace vireo::linux_guest
