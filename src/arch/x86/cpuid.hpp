// The CPUID table each vCPU sees: what KVM supports, with the topology of an N-vCPU machine
// (APIC IDs, leaves 1, 4, 0xB, 0x1F, 0x80000008, 0x8000001E), the KVM hypervisor leaves and the
// --cpu-features changes. A plain function of its inputs, so tests check it without KVM.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "arch/x86/cpu_features.hpp"
#include "base/result.hpp"

namespace vireo::arch::x86 {

struct CpuidConfig {
    uint32_t cpu_count = 1;  // one package, cpu_count cores, one thread each; APIC ID = vCPU index
    std::vector<CpuFeatureChange> changes;
};

// `supported` is KVM_GET_SUPPORTED_CPUID. Errors: a "+feature" KVM does not support, or a
// cpu_count outside 1..255.
Result<std::vector<kvm_cpuid_entry2>> build_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                                  const CpuidConfig& config, uint32_t vcpu_index);

// The entry for (function, index), or nullptr.
kvm_cpuid_entry2* find_cpuid(std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index = 0);
const kvm_cpuid_entry2* find_cpuid(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                                   uint32_t index = 0);

bool cpuid_has(const std::vector<kvm_cpuid_entry2>& entries, const CpuFeature& feature);

inline constexpr uint32_t kMaxVcpus = 255;  // xAPIC IDs; 255 is the broadcast ID, 0..254 usable
inline constexpr uint32_t kHypervisorLeaf = 0x4000'0000;
inline constexpr uint32_t kKvmFeatureLeaf = 0x4000'0001;

}  // namespace vireo::arch::x86
