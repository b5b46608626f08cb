// KVM integration: the host probe on this machine's /dev/kvm, and `vireo doctor` end to end.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "kvm/kvm.hpp"
#include "kvm/probe.hpp"

namespace {

bool have_kvm() {
    return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

std::string run_command(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) return out;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        out.append(buf.data(), n);
    int st = ::pclose(p);
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return out;
}

TEST(KvmProbe, MissingDeviceIsExplained) {
    auto sys = vireo::kvm::System::open("/nonexistent/kvm");
    ASSERT_FALSE(sys.ok());
    EXPECT_NE(sys.error().message().find("modprobe kvm_intel"), std::string::npos);
}

TEST(KvmProbe, MeasuresGuestSpeed) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    auto sys = vireo::kvm::System::open();
    ASSERT_TRUE(sys.ok()) << sys.error().message();
    auto ns = vireo::kvm::measure_guest_speed(*sys);
    ASSERT_TRUE(ns.ok()) << ns.error().message();
    EXPECT_GT(*ns, 0.0);
    std::printf("guest speed: %.1f ns per instruction (%s)\n", *ns, vireo::kvm::classify_speed(*ns).c_str());
}

TEST(KvmProbe, DoctorJsonEndToEnd) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    int status = -1;
    std::string out = run_command(std::string(VIREO_BINARY_DIR) + "/bin/vireo doctor --json", &status);
    auto j = nlohmann::json::parse(out);
    EXPECT_EQ(j["kvm"]["present"], true);
    EXPECT_EQ(j["kvm"]["openable"], true);
    EXPECT_EQ(j["kvm"]["api_version"], 12);
    for (const char* cap : {"irqchip", "irqfd", "ioeventfd", "pit2", "msi", "dirty_log", "immediate_exit"}) {
        EXPECT_TRUE(j["kvm"]["capabilities"].contains(cap)) << cap;
    }
    std::string accel = j["kvm"]["acceleration"];
    EXPECT_TRUE(accel == "hardware" || accel == "emulated") << accel;
    double ns = j["kvm"]["ns_per_instruction"];
    EXPECT_EQ(accel, vireo::kvm::classify_speed(ns));
    for (const char* host : {"tun", "io_uring", "fuse"})
        EXPECT_TRUE(j.contains(host)) << host;
    EXPECT_EQ(status, j["vmm_ready"].get<bool>() ? 0 : 1);
}

TEST(KvmProbe, DoctorTextEndToEnd) {
    int status = -1;
    std::string out = run_command(std::string(VIREO_BINARY_DIR) + "/bin/vireo doctor --no-speed", &status);
    EXPECT_NE(out.find("Vireo host report"), std::string::npos);
    EXPECT_NE(out.find("io_uring"), std::string::npos);
    EXPECT_NE(out.find("Verdict:"), std::string::npos);
}

}  // namespace
