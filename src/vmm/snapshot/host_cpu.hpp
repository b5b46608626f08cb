// The host CPU as a snapshot sees it: vendor, signature and the feature set KVM offers guests.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "kvm/kvm.hpp"

namespace vireo::vmm::snapshot {

struct HostCpu {
    std::string vendor;  // CPUID leaf 0: "GenuineIntel", "AuthenticAMD", ...
    uint32_t family = 0;
    uint32_t model = 0;
    uint32_t stepping = 0;
    // Feature registers of KVM_GET_SUPPORTED_CPUID, keyed "LEAF.SUBLEAF.REG" ("0x7.0.ebx").
    // A guest may have used any of these, so a snapshot only restores where they are equal.
    std::map<std::string, uint32_t> features;

    bool operator==(const HostCpu&) const = default;
};

// This host, from the CPUID instruction and KVM_GET_SUPPORTED_CPUID.
Result<HostCpu> probe_host_cpu(const kvm::System& system);
// The feature part from a supported-CPUID list (exposed for tests).
std::map<std::string, uint32_t> feature_registers(std::span<const kvm_cpuid_entry2> supported);

// What differs between the CPU a snapshot was taken on and this one, one line per difference
// ("vendor AuthenticAMD here, GenuineIntel in the snapshot", "feature avx512f (CPUID
// 0x7.0.ebx bit 16) missing here"). Empty when the snapshot can be restored here.
std::vector<std::string> cpu_differences(const HostCpu& snapshot, const HostCpu& here);

nlohmann::json to_json(const HostCpu& cpu);
Result<HostCpu> host_cpu_from_json(const nlohmann::json& j);

}  // namespace vireo::vmm::snapshot
