// CPUID filtering: topology, hypervisor leaves, feature changes (Intel SDM Vol. 2A "CPUID";
// AMD APM Vol. 3 Appendix E; Linux Documentation/virt/kvm/x86/cpuid.rst).
#include "arch/x86/cpuid.hpp"

#include <algorithm>
#include <cstring>

namespace vireo::arch::x86 {
namespace {

uint32_t& reg_of(kvm_cpuid_entry2& e, CpuidReg reg) {
    switch (reg) {
        case CpuidReg::kEax:
            return e.eax;
        case CpuidReg::kEbx:
            return e.ebx;
        case CpuidReg::kEcx:
            return e.ecx;
        case CpuidReg::kEdx:
            break;
    }
    return e.edx;
}

// Bits needed to number `count` items (0 for 1).
uint32_t id_bits(uint32_t count) {
    uint32_t bits = 0;
    while ((1u << bits) < count)
        ++bits;
    return bits;
}

// Replaces the entries of an indexed topology leaf (0xB or 0x1F) with: SMT level (1 thread per
// core), core level (cpu_count cores), and the invalid terminating level.
void set_topology_leaf(std::vector<kvm_cpuid_entry2>& entries, uint32_t leaf, uint32_t cpu_count,
                       uint32_t apic_id) {
    uint32_t flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    entries.erase(std::remove_if(entries.begin(), entries.end(),
                                 [leaf](const kvm_cpuid_entry2& e) { return e.function == leaf; }),
                  entries.end());
    auto add = [&](uint32_t index, uint32_t eax, uint32_t ebx, uint32_t level_type) {
        kvm_cpuid_entry2 e{};
        e.function = leaf;
        e.index = index;
        e.flags = flags;
        e.eax = eax;  // shift to the next level's ID
        e.ebx = ebx;  // logical processors at this level
        e.ecx = (level_type << 8) | index;
        e.edx = apic_id;  // x2APIC ID
        entries.push_back(e);
    };
    add(0, 0, 1, 1);                           // SMT
    add(1, id_bits(cpu_count), cpu_count, 2);  // core
    add(2, 0, 0, 0);                           // invalid: end of the list
}

bool same_vendor(const std::vector<kvm_cpuid_entry2>& entries, const char* vendor) {
    const kvm_cpuid_entry2* e = find_cpuid(entries, 0);
    if (e == nullptr) return false;
    char name[12];
    std::memcpy(name, &e->ebx, 4);
    std::memcpy(name + 4, &e->edx, 4);
    std::memcpy(name + 8, &e->ecx, 4);
    return std::memcmp(name, vendor, 12) == 0;
}

}  // namespace

kvm_cpuid_entry2* find_cpuid(std::vector<kvm_cpuid_entry2>& entries, uint32_t function, uint32_t index) {
    for (auto& e : entries) {
        if (e.function != function) continue;
        if ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) && e.index != index) continue;
        return &e;
    }
    return nullptr;
}

const kvm_cpuid_entry2* find_cpuid(const std::vector<kvm_cpuid_entry2>& entries, uint32_t function,
                                   uint32_t index) {
    return find_cpuid(const_cast<std::vector<kvm_cpuid_entry2>&>(entries), function, index);
}

bool cpuid_has(const std::vector<kvm_cpuid_entry2>& entries, const CpuFeature& f) {
    const kvm_cpuid_entry2* e = find_cpuid(entries, f.leaf, f.subleaf);
    if (e == nullptr) return false;
    return (reg_of(const_cast<kvm_cpuid_entry2&>(*e), f.reg) >> f.bit) & 1;
}

Result<std::vector<kvm_cpuid_entry2>> build_cpuid(const std::vector<kvm_cpuid_entry2>& supported,
                                                  const CpuidConfig& config, uint32_t vcpu_index) {
    if (config.cpu_count == 0 || config.cpu_count > kMaxVcpus)
        return make_error("cpuid: {} vCPUs (1 to {} supported)", config.cpu_count, kMaxVcpus);
    std::vector<kvm_cpuid_entry2> entries = supported;
    const uint32_t n = config.cpu_count;
    const uint32_t apic_id = vcpu_index;
    const uint32_t max_basic = find_cpuid(entries, 0) ? find_cpuid(entries, 0)->eax : 0;

    if (auto* e = find_cpuid(entries, 1)) {
        // EBX: APIC ID (31-24), logical processors per package (23-16), CLFLUSH size in qwords (15-8).
        e->ebx = (apic_id << 24) | (std::min(n, 255u) << 16) | (8 << 8) | (e->ebx & 0xff);
        e->ecx |= 1u << 31;  // running under a hypervisor
        if (n > 1) {
            e->edx |= 1u << 28;  // HTT: the package has several logical processors
        } else {
            e->edx &= ~(1u << 28);
        }
    }
    // Leaf 4 (Intel deterministic cache parameters): EAX 31-26 cores per package - 1, 25-14
    // logical processors sharing the cache - 1 (one per core, except the shared last level).
    for (auto& e : entries) {
        if (e.function != 4) continue;
        uint32_t level = (e.eax >> 5) & 7;
        uint32_t sharing = level >= 3 ? n - 1 : 0;
        e.eax = (e.eax & 0x3fff) | (std::min(sharing, 0xfffu) << 14) | (std::min(n - 1, 63u) << 26);
    }
    if (max_basic >= 0xb) set_topology_leaf(entries, 0xb, n, apic_id);
    if (max_basic >= 0x1f) set_topology_leaf(entries, 0x1f, n, apic_id);

    // AMD: 0x80000008 ECX NC (cores - 1) and ApicIdCoreIdSize; 0x8000001E extended APIC ID.
    if (same_vendor(entries, "AuthenticAMD") || same_vendor(entries, "HygonGenuine")) {
        if (auto* e = find_cpuid(entries, 0x8000'0008)) {
            e->ecx = (e->ecx & ~0xf0ffu) | ((n - 1) & 0xff) | (id_bits(n) << 12);
        }
        if (auto* e = find_cpuid(entries, 0x8000'001e)) {
            e->eax = apic_id;
            e->ebx = apic_id & 0xff;  // compute unit ID; one thread per unit
            e->ecx = 0;               // node 0, one node per package
        }
        if (auto* e = find_cpuid(entries, 0x8000'0001)) {
            // CmpLegacy: cores are reported through NC, not HTT.
            if (n > 1) {
                e->ecx |= 1u << 1;
            } else {
                e->ecx &= ~(1u << 1);
            }
        }
    }

    // KVM's own leaves: the signature guests look for, and the paravirtual features KVM offers.
    kvm_cpuid_entry2* hv = find_cpuid(entries, kHypervisorLeaf);
    if (hv == nullptr) {
        entries.push_back(kvm_cpuid_entry2{});
        hv = &entries.back();
        hv->function = kHypervisorLeaf;
    }
    hv->eax = kKvmFeatureLeaf;
    std::memcpy(&hv->ebx, "KVMK", 4);
    std::memcpy(&hv->ecx, "VMKV", 4);
    std::memcpy(&hv->edx, "M\0\0\0", 4);
    if (find_cpuid(entries, kKvmFeatureLeaf) == nullptr) {
        kvm_cpuid_entry2 e{};
        e.function = kKvmFeatureLeaf;
        entries.push_back(e);
    }

    for (const CpuFeatureChange& change : config.changes) {
        const CpuFeature& f = *change.feature;
        kvm_cpuid_entry2* e = find_cpuid(entries, f.leaf, f.subleaf);
        if (change.enable) {
            if (!cpuid_has(supported, f))
                return make_error("--cpu-features: +{}: this host's KVM does not support it", f.name);
            reg_of(*e, f.reg) |= 1u << f.bit;
            continue;
        }
        if (e != nullptr) reg_of(*e, f.reg) &= ~(1u << f.bit);
        for (const CpuFeature* dep : dependent_features(f)) {
            if (auto* d = find_cpuid(entries, dep->leaf, dep->subleaf))
                reg_of(*d, dep->reg) &= ~(1u << dep->bit);
        }
        if (std::string_view(f.name) == "xsave") {
            // No XSAVE: the state-component leaf must not advertise any.
            for (auto& x : entries) {
                if (x.function == 0xd) x.eax = x.ebx = x.ecx = x.edx = 0;
            }
        }
    }
    return entries;
}

}  // namespace vireo::arch::x86
