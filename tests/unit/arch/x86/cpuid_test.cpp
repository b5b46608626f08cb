// The CPUID table the VMM gives each vCPU: topology, hypervisor leaves, feature changes.
#include "arch/x86/cpuid.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <string>

namespace vireo::arch::x86 {
namespace {

kvm_cpuid_entry2 entry(uint32_t fn, uint32_t idx, uint32_t eax, uint32_t ebx, uint32_t ecx, uint32_t edx,
                       bool indexed = false) {
    kvm_cpuid_entry2 e{};
    e.function = fn;
    e.index = idx;
    e.flags = indexed ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
    e.eax = eax;
    e.ebx = ebx;
    e.ecx = ecx;
    e.edx = edx;
    return e;
}

// What KVM_GET_SUPPORTED_CPUID returns on an Intel host (abridged).
std::vector<kvm_cpuid_entry2> intel_host() {
    return {
        entry(0, 0, 0x1f, 0x756e6547, 0x6c65746e, 0x49656e69),  // GenuineIntel
        entry(1, 0, 0x000806f8, 0x00000800, 0xf6fa3223 | (1u << 26) | (1u << 13), 0x0f8bfbff),
        entry(4, 0, 0x00000121, 0x01c0003f, 0x3f, 0, true),
        entry(4, 1, 0x00000163, 0x03c0003f, 0x3ff, 0, true),
        entry(4, 2, 0x00000043 | (3u << 5), 0x0, 0x0, 0, true),  // an L3 (level 3)
        entry(7, 0, 1, 0x00000020 | (1u << 16), 0, 0, true),     // avx2, avx512f
        entry(0xb, 0, 1, 2, 0x100, 0, true),
        entry(0xb, 1, 7, 96, 0x201, 0, true),
        entry(0xd, 0, 0xe7, 0x980, 0x980, 0, true),
        entry(0xd, 1, 0xf, 0, 0, 0, true),
        entry(0x1f, 0, 1, 2, 0x100, 0, true),
        entry(0x80000000, 0, 0x80000008, 0, 0, 0),
        entry(0x80000001, 0, 0, 0, 0x121, 0x2c100800),
        entry(0x80000008, 0, 0x3030, 0, 0, 0),
        entry(0x40000000, 0, 0x40000001, 0x4b4d564b, 0x564b4d56, 0x4d),
        entry(0x40000001, 0, 0x01007efb, 0, 0, 0),
    };
}

std::vector<kvm_cpuid_entry2> amd_host() {
    return {
        entry(0, 0, 0x10, 0x68747541, 0x444d4163, 0x69746e65),  // AuthenticAMD
        entry(1, 0, 0x00a10f11, 0x00020800, 0x81202000, 0x078bfbff),
        entry(0xb, 0, 0, 0, 0, 0, true),
        entry(0x80000000, 0, 0x80000021, 0, 0, 0),
        entry(0x80000001, 0, 0x00a10f11, 0, 0x00400393, 0x23d3fbff),
        entry(0x80000008, 0, 0x3030, 0x50020005, 0x7001, 0),
        entry(0x8000001e, 0, 0, 0, 0, 0),
    };
}

Result<std::vector<kvm_cpuid_entry2>> build(const std::vector<kvm_cpuid_entry2>& host, uint32_t n,
                                            uint32_t index, const char* features = "") {
    auto changes = parse_cpu_features(features);
    EXPECT_TRUE(changes.ok());
    return build_cpuid(host, CpuidConfig{n, *changes}, index);
}

TEST(Cpuid, Leaf1CarriesApicIdCountAndHypervisorBit) {
    for (uint32_t i = 0; i < 4; ++i) {
        auto c = build(intel_host(), 4, i);
        ASSERT_TRUE(c.ok()) << c.error().message();
        const auto* l1 = find_cpuid(*c, 1);
        ASSERT_NE(l1, nullptr);
        EXPECT_EQ(l1->ebx >> 24, i);
        EXPECT_EQ((l1->ebx >> 16) & 0xff, 4u);
        EXPECT_EQ((l1->ebx >> 8) & 0xff, 8u);
        EXPECT_TRUE(l1->ecx & (1u << 31));
        EXPECT_TRUE(l1->edx & (1u << 28));  // HTT with more than one logical processor
    }
    auto single = build(intel_host(), 1, 0);
    EXPECT_FALSE(find_cpuid(*single, 1)->edx & (1u << 28));
}

TEST(Cpuid, ExtendedTopologyLeaves) {
    auto c = build(intel_host(), 6, 5);
    ASSERT_TRUE(c.ok());
    for (uint32_t leaf : {0xbu, 0x1fu}) {
        const auto* smt = find_cpuid(*c, leaf, 0);
        const auto* core = find_cpuid(*c, leaf, 1);
        const auto* end = find_cpuid(*c, leaf, 2);
        ASSERT_TRUE(smt && core && end) << leaf;
        EXPECT_EQ(smt->eax, 0u);
        EXPECT_EQ(smt->ebx, 1u);
        EXPECT_EQ(smt->ecx, 0x100u);
        EXPECT_EQ(smt->edx, 5u);
        EXPECT_EQ(core->eax, 3u);  // 6 cores need 3 bits of APIC ID
        EXPECT_EQ(core->ebx, 6u);
        EXPECT_EQ(core->ecx, 0x201u);
        EXPECT_EQ(core->edx, 5u);
        EXPECT_EQ((end->ecx >> 8) & 0xff, 0u);  // invalid level ends the list
        EXPECT_EQ(end->ecx & 0xff, 2u);
    }
}

TEST(Cpuid, Leaf4CoresPerPackage) {
    auto c = build(intel_host(), 8, 0);
    ASSERT_TRUE(c.ok());
    for (uint32_t idx : {0u, 1u, 2u}) {
        const auto* l4 = find_cpuid(*c, 4, idx);
        ASSERT_NE(l4, nullptr);
        EXPECT_EQ(l4->eax >> 26, 7u) << idx;
        EXPECT_EQ(l4->eax & 0x3fff, intel_host()[2 + idx].eax & 0x3fff) << idx;
    }
    EXPECT_EQ((find_cpuid(*c, 4, 0)->eax >> 14) & 0xfff, 0u);  // L1 per core
    EXPECT_EQ((find_cpuid(*c, 4, 2)->eax >> 14) & 0xfff, 7u);  // L3 shared by all
}

TEST(Cpuid, AmdCoreCountAndExtendedApicId) {
    auto c = build(amd_host(), 3, 2);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(find_cpuid(*c, 0x80000008)->ecx & 0xff, 2u);
    EXPECT_EQ((find_cpuid(*c, 0x80000008)->ecx >> 12) & 0xf, 2u);
    EXPECT_EQ(find_cpuid(*c, 0x8000001e)->eax, 2u);
    EXPECT_TRUE(find_cpuid(*c, 0x80000001)->ecx & 2u);  // CmpLegacy
}

TEST(Cpuid, HypervisorLeafSaysKvm) {
    auto host = amd_host();  // without 0x40000000 entries
    auto c = build(host, 1, 0);
    ASSERT_TRUE(c.ok());
    const auto* hv = find_cpuid(*c, kHypervisorLeaf);
    ASSERT_NE(hv, nullptr);
    char sig[13] = {};
    std::memcpy(sig, &hv->ebx, 4);
    std::memcpy(sig + 4, &hv->ecx, 4);
    std::memcpy(sig + 8, &hv->edx, 4);
    EXPECT_STREQ(sig, "KVMKVMKVM");
    EXPECT_EQ(hv->eax, kKvmFeatureLeaf);
    EXPECT_NE(find_cpuid(*c, kKvmFeatureLeaf), nullptr);
    auto intel = build(intel_host(), 1, 0);
    EXPECT_EQ(find_cpuid(*intel, kKvmFeatureLeaf)->eax, 0x01007efbu);  // KVM's features kept
}

TEST(Cpuid, MasksClearBitsAndDependents) {
    auto c = build(intel_host(), 1, 0, "-xsave,-cx16");
    ASSERT_TRUE(c.ok());
    const auto* l1 = find_cpuid(*c, 1);
    EXPECT_FALSE(l1->ecx & (1u << 26));                 // xsave
    EXPECT_FALSE(l1->ecx & (1u << 13));                 // cx16
    EXPECT_FALSE(l1->ecx & (1u << 28));                 // avx goes with xsave
    EXPECT_FALSE(find_cpuid(*c, 7)->ebx & (1u << 5));   // avx2
    EXPECT_FALSE(find_cpuid(*c, 7)->ebx & (1u << 16));  // avx512f
    EXPECT_EQ(find_cpuid(*c, 0xd, 0)->eax, 0u);
    EXPECT_EQ(find_cpuid(*c, 0xd, 1)->eax, 0u);
    // Without masks they are there.
    auto plain = build(intel_host(), 1, 0);
    EXPECT_TRUE(find_cpuid(*plain, 1)->ecx & (1u << 26));
    EXPECT_TRUE(find_cpuid(*plain, 1)->ecx & (1u << 13));
}

TEST(Cpuid, EnablingWhatKvmLacksIsAnError) {
    auto r = build(amd_host(), 1, 0, "+avx512f");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("does not support"), std::string::npos) << r.error().message();
    EXPECT_TRUE(build(amd_host(), 1, 0, "+sse2").ok());
}

TEST(Cpuid, CountOutOfRange) {
    EXPECT_FALSE(build_cpuid(intel_host(), CpuidConfig{0, {}}, 0).ok());
    EXPECT_FALSE(build_cpuid(intel_host(), CpuidConfig{256, {}}, 0).ok());
}

}  // namespace
}  // namespace vireo::arch::x86
