// --cpu-features parsing and the feature-name table.
#include "arch/x86/cpu_features.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace vireo::arch::x86 {
namespace {

TEST(CpuFeatures, ParsesMasksLikeQemu) {
    auto r = parse_cpu_features("-xsave,-cx16");
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_STREQ((*r)[0].feature->name, "xsave");
    EXPECT_FALSE((*r)[0].enable);
    EXPECT_EQ((*r)[0].feature->leaf, 1u);
    EXPECT_EQ((*r)[0].feature->reg, CpuidReg::kEcx);
    EXPECT_EQ((*r)[0].feature->bit, 26);
    EXPECT_STREQ((*r)[1].feature->name, "cx16");
    EXPECT_EQ((*r)[1].feature->bit, 13);
}

TEST(CpuFeatures, PlusAndBareNamesEnable) {
    auto r = parse_cpu_features("+x2apic, avx2");
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->size(), 2u);
    EXPECT_TRUE((*r)[0].enable);
    EXPECT_TRUE((*r)[1].enable);
    EXPECT_EQ((*r)[1].feature->leaf, 7u);
}

TEST(CpuFeatures, OnOffValuesLikeQemu) {
    auto r = parse_cpu_features("xsave=off,cx16=off,x2apic=on");
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_EQ(r->size(), 3u);
    EXPECT_STREQ((*r)[0].feature->name, "xsave");
    EXPECT_FALSE((*r)[0].enable);
    EXPECT_STREQ((*r)[1].feature->name, "cx16");
    EXPECT_FALSE((*r)[1].enable);
    EXPECT_TRUE((*r)[2].enable);
    auto bad = parse_cpu_features("xsave=no");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("'xsave=no'"), std::string::npos) << bad.error().message();
    EXPECT_FALSE(parse_cpu_features("=off").ok());
}

TEST(CpuFeatures, SpellingsAndAliases) {
    EXPECT_EQ(find_cpu_feature("sse4.1"), find_cpu_feature("sse4_1"));
    EXPECT_EQ(find_cpu_feature("lahf-lm"), find_cpu_feature("lahf_lm"));
    EXPECT_EQ(find_cpu_feature("SSE3"), find_cpu_feature("pni"));
    EXPECT_EQ(find_cpu_feature("tsc-deadline"), find_cpu_feature("tsc_deadline_timer"));
    EXPECT_NE(find_cpu_feature("pdpe1gb"), nullptr);
    EXPECT_EQ(find_cpu_feature("pdpe1gb")->leaf, 0x80000001u);
}

TEST(CpuFeatures, UnknownNamesAreAClearError) {
    auto r = parse_cpu_features("-xsave,-frobnicate");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("unknown CPU feature 'frobnicate'"), std::string::npos)
        << r.error().message();
    EXPECT_FALSE(parse_cpu_features("-xsave,,-cx16").ok());
    EXPECT_FALSE(parse_cpu_features("-").ok());
}

TEST(CpuFeatures, EmptyListIsNoChange) {
    auto r = parse_cpu_features("");
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->empty());
}

TEST(CpuFeatures, TableHasNoDuplicateNamesOrBits) {
    std::set<std::string> names;
    std::set<std::tuple<uint32_t, uint32_t, int, int>> bits;
    for (const auto& f : cpu_feature_table()) {
        EXPECT_TRUE(names.insert(f.name).second) << f.name;
        EXPECT_TRUE(bits.insert({f.leaf, f.subleaf, static_cast<int>(f.reg), f.bit}).second) << f.name;
        EXPECT_LT(f.bit, 32);
    }
}

TEST(CpuFeatures, HidingXsaveHidesWhatNeedsIt) {
    std::set<std::string> deps;
    for (const auto* f : dependent_features(*find_cpu_feature("xsave")))
        deps.insert(f->name);
    for (const char* n : {"avx", "avx2", "fma", "avx512f", "avx512bw"})
        EXPECT_TRUE(deps.contains(n)) << n;
    EXPECT_FALSE(deps.contains("sse2"));
    EXPECT_TRUE(dependent_features(*find_cpu_feature("cx16")).empty());
}

}  // namespace
}  // namespace vireo::arch::x86
