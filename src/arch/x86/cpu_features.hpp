// CPU feature names (as /proc/cpuinfo and QEMU's -cpu flags spell them) for the CPUID bits of
// leaves 1, 7 and 0x80000001, and the --cpu-features list that hides or requests them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace vireo::arch::x86 {

enum class CpuidReg : uint8_t { kEax, kEbx, kEcx, kEdx };

struct CpuFeature {
    const char* name;
    uint32_t leaf;
    uint32_t subleaf;
    CpuidReg reg;
    uint8_t bit;
};

// Every named feature bit.
std::span<const CpuFeature> cpu_feature_table();

// Looks a name up, ignoring case and treating '-', '_' and '.' alike ("sse4.1" = "sse4_1",
// "lahf-lm" = "lahf_lm"); a few aliases ("sse3" = "pni", "tsc-deadline").
const CpuFeature* find_cpu_feature(std::string_view name);

// Features that cannot work without another: hiding `name` hides these too (hiding xsave hides
// avx and everything built on it, as the guest could not enable their state).
std::vector<const CpuFeature*> dependent_features(const CpuFeature& feature);

struct CpuFeatureChange {
    const CpuFeature* feature;
    bool enable;  // false: hide from the guest
};

// Parses "-xsave,-cx16,+x2apic" (a bare name means +). Unknown names are an error that lists
// how to find the known ones.
Result<std::vector<CpuFeatureChange>> parse_cpu_features(std::string_view list);

}  // namespace vireo::arch::x86
