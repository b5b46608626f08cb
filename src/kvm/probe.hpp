// The host probe behind `vireo doctor`: what this host offers Vireo and how fast guest code runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "kvm/kvm.hpp"

namespace vireo::kvm {

// Above this many nanoseconds per guest instruction, KVM is software-emulated: hardware
// virtualization runs simple integer loops at well under 5 ns per instruction.
inline constexpr double kEmulatedThresholdNs = 50.0;

struct FeatureCheck {
    std::string name;  // "irqchip", "tun", ...
    bool usable = false;
    std::string detail;  // why not, or what was found
};

struct HostReport {
    std::string kvm_device = "/dev/kvm";
    bool kvm_present = false;
    bool kvm_openable = false;
    std::string kvm_error;  // set when not openable
    int api_version = 0;
    std::vector<FeatureCheck>
        capabilities;  // irqchip, irqfd, ioeventfd, pit2, msi, dirty_log, immediate_exit
    std::optional<double> ns_per_instruction;
    std::string acceleration = "unknown";  // "hardware", "emulated" or "unknown"
    std::string speed_error;
    std::vector<FeatureCheck> host;   // tun, io_uring, fuse
    std::vector<std::string> advice;  // what to do about what is missing

    // True when every capability Vireo needs is present (the VMM can run here).
    bool vmm_ready() const;
};

std::string classify_speed(double ns_per_instruction);

// Runs a tiny real-mode guest loop of a known instruction count twice (short and long) and
// returns the nanoseconds per guest instruction of the difference, which cancels fixed costs.
// Gives up after `timeout_seconds` with an error.
Result<double> measure_guest_speed(const System& system, double timeout_seconds = 20.0);

struct ProbeOptions {
    std::string kvm_device = "/dev/kvm";
    std::string tun_device = "/dev/net/tun";
    std::string fuse_device = "/dev/fuse";
    bool measure_speed = true;
};

HostReport probe_host(const ProbeOptions& options = {});

}  // namespace vireo::kvm
