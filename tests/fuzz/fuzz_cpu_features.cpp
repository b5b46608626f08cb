// Fuzz target: --cpu-features lists and the CPUID table built from them.
#include <linux/kvm.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "arch/x86/cpu_features.hpp"
#include "arch/x86/cpuid.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto changes = vireo::arch::x86::parse_cpu_features(text);
    if (!changes.ok()) return 0;
    std::vector<kvm_cpuid_entry2> host(3);
    host[0].function = 0;
    host[0].eax = 0xd;
    host[1].function = 1;
    host[1].ecx = 0xffffffff;
    host[1].edx = 0xffffffff;
    host[2].function = 7;
    host[2].flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    host[2].ebx = 0xffffffff;
    auto table = vireo::arch::x86::build_cpuid(host, {4, *changes}, 3);
    if (table.ok()) {
        for (const auto& c : *changes) {
            // A hidden feature is hidden.
            if (!c.enable && vireo::arch::x86::cpuid_has(*table, *c.feature)) {
                bool later_enabled = false;
                for (const auto& d : *changes)
                    later_enabled |= d.enable && d.feature == c.feature;
                if (!later_enabled) std::abort();
            }
        }
    }
    return 0;
}
