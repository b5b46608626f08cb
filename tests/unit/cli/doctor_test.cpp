// Tests for the doctor report's classification and rendering.
#include "cli/doctor.hpp"

#include <gtest/gtest.h>

namespace vireo::cli {
namespace {

kvm::HostReport sample_report() {
    kvm::HostReport r;
    r.kvm_present = true;
    r.kvm_openable = true;
    r.api_version = 12;
    for (const char* name : {"irqchip", "irqfd", "ioeventfd", "pit2", "msi", "dirty_log", "immediate_exit"}) {
        r.capabilities.push_back({name, true, "present"});
    }
    r.ns_per_instruction = 1000.0;
    r.acceleration = kvm::classify_speed(1000.0);
    r.host = {{"tun", true, "ok"}, {"io_uring", true, "ok"}, {"fuse", false, "/dev/fuse: No such file"}};
    return r;
}

TEST(Doctor, ClassifiesSpeed) {
    EXPECT_EQ(kvm::classify_speed(0.4), "hardware");
    EXPECT_EQ(kvm::classify_speed(50.0), "hardware");
    EXPECT_EQ(kvm::classify_speed(50.1), "emulated");
    EXPECT_EQ(kvm::classify_speed(1100.0), "emulated");
}

TEST(Doctor, JsonHasEveryField) {
    auto j = doctor_json(sample_report());
    EXPECT_EQ(j["kvm"]["present"], true);
    EXPECT_EQ(j["kvm"]["api_version"], 12);
    EXPECT_EQ(j["kvm"]["acceleration"], "emulated");
    EXPECT_DOUBLE_EQ(j["kvm"]["ns_per_instruction"].get<double>(), 1000.0);
    for (const char* cap : {"irqchip", "irqfd", "ioeventfd", "pit2", "msi", "dirty_log", "immediate_exit"}) {
        EXPECT_EQ(j["kvm"]["capabilities"][cap], true) << cap;
    }
    EXPECT_EQ(j["tun"]["usable"], true);
    EXPECT_EQ(j["fuse"]["usable"], false);
    EXPECT_EQ(j["vmm_ready"], true);
}

TEST(Doctor, MissingCapabilityMakesHostNotReady) {
    auto r = sample_report();
    r.capabilities[1].usable = false;
    EXPECT_FALSE(r.vmm_ready());
    auto text = doctor_text(r);
    EXPECT_NE(text.find("irqfd"), std::string::npos);
    EXPECT_NE(text.find("cannot run"), std::string::npos);
}

TEST(Doctor, NoKvmReportsWhy) {
    kvm::HostReport r;
    r.kvm_present = false;
    r.kvm_error = "/dev/kvm does not exist: KVM is not available";
    r.advice.push_back(r.kvm_error);
    auto j = doctor_json(r);
    EXPECT_EQ(j["kvm"]["openable"], false);
    EXPECT_TRUE(j["kvm"]["api_version"].is_null());
    EXPECT_EQ(j["vmm_ready"], false);
    EXPECT_NE(doctor_text(r).find("missing"), std::string::npos);
}

TEST(Doctor, TextShowsEmulatedVerdict) {
    auto text = doctor_text(sample_report());
    EXPECT_NE(text.find("emulated (1000.0 ns per guest instruction"), std::string::npos);
    EXPECT_NE(text.find("KVM is emulated here"), std::string::npos);
}

}  // namespace
}  // namespace vireo::cli
