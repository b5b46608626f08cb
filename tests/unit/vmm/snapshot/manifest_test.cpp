// Tests for the snapshot manifest: round trip, format version and CPU feature checks.
#include "vmm/snapshot/manifest.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "support/subprocess.hpp"

namespace vireo::vmm::snapshot {
namespace {

HostCpu some_cpu() {
    HostCpu cpu;
    cpu.vendor = "AuthenticAMD";
    cpu.family = 25;
    cpu.model = 1;
    cpu.stepping = 1;
    kvm_cpuid_entry2 leaf1{};
    leaf1.function = 1;
    leaf1.ecx = 1u << 26 | 1u << 0;  // xsave, sse3
    leaf1.edx = 1u << 26;            // sse2
    kvm_cpuid_entry2 leaf7{};
    leaf7.function = 7;
    leaf7.index = 0;
    leaf7.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    leaf7.ebx = 1u << 5 | 1u << 16;  // avx2, avx512f
    kvm_cpuid_entry2 leaf71 = leaf7;
    leaf71.index = 1;
    leaf71.eax = 0x10;
    leaf71.ebx = 0;
    std::vector<kvm_cpuid_entry2> entries{leaf1, leaf7, leaf71};
    cpu.features = feature_registers(entries);
    return cpu;
}

Manifest some_manifest() {
    Manifest m;
    m.vireo_version = "0.1.0";
    m.created = "2024-01-01T00:00:00Z";
    m.cpu = some_cpu();
    m.vm_config = {{"cpus", 2}, {"memory_mib", 256}};
    m.vcpus = 2;
    m.memory_size = 256ull << 20;
    m.regions = {{0, 256ull << 20, 0}};
    m.memory_data_bytes = 4096;
    m.disks = {{"/var/lib/disk.vhd", {{"format", "vhd"}, {"read_only", false}}}};
    return m;
}

TEST(HostCpu, FeatureRegistersPickTheRightSubleaf) {
    auto cpu = some_cpu();
    EXPECT_EQ(cpu.features.at("0x7.0.ebx"), (1u << 5 | 1u << 16));
    EXPECT_EQ(cpu.features.at("0x7.1.eax"), 0x10u);
    EXPECT_EQ(cpu.features.at("0x1.0.ecx"), (1u << 26 | 1u));
    EXPECT_EQ(cpu.features.at("0x80000001.0.edx"), 0u);  // not listed: nothing offered
}

TEST(HostCpu, DifferencesNameTheFeatures) {
    auto a = some_cpu();
    EXPECT_TRUE(cpu_differences(a, a).empty());
    auto b = a;
    b.features["0x7.0.ebx"] &= ~(1u << 16);
    auto diffs = cpu_differences(a, b);
    ASSERT_EQ(diffs.size(), 1u);
    EXPECT_NE(diffs[0].find("avx512f"), std::string::npos) << diffs[0];
    EXPECT_NE(diffs[0].find("missing here"), std::string::npos) << diffs[0];
    b = a;
    b.features["0x1.0.edx"] |= 1u << 4;
    diffs = cpu_differences(a, b);
    ASSERT_EQ(diffs.size(), 1u);
    EXPECT_NE(diffs[0].find("tsc"), std::string::npos);
    b = a;
    b.vendor = "GenuineIntel";
    EXPECT_EQ(cpu_differences(a, b).size(), 1u);
}

TEST(Manifest, RoundTrips) {
    auto m = some_manifest();
    auto back = manifest_from_json(to_json(m));
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->cpu, m.cpu);
    EXPECT_EQ(back->vcpus, 2u);
    EXPECT_EQ(back->memory_size, m.memory_size);
    ASSERT_EQ(back->regions.size(), 1u);
    EXPECT_EQ(back->regions[0].size, m.regions[0].size);
    ASSERT_EQ(back->disks.size(), 1u);
    EXPECT_EQ(back->disks[0].path, "/var/lib/disk.vhd");
    EXPECT_EQ(back->disks[0].details["format"], "vhd");
    EXPECT_EQ(back->vm_config["cpus"], 2);
    EXPECT_EQ(to_json(m)["format_version"], kFormatVersion);
}

TEST(Manifest, OtherFormatVersionsAreRefused) {
    auto j = to_json(some_manifest());
    j["format_version"] = kFormatVersion + 1;
    auto r = manifest_from_json(j);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("format version 2 is not supported"), std::string::npos)
        << r.error().message();
    j.erase("format_version");
    EXPECT_FALSE(manifest_from_json(j).ok());
}

TEST(Manifest, MalformedManifestsAreRefused) {
    auto base = to_json(some_manifest());
    auto broken = [&](auto edit) {
        auto j = base;
        edit(j);
        return !manifest_from_json(j).ok();
    };
    EXPECT_TRUE(broken([](auto& j) { j["vcpus"] = 0; }));
    EXPECT_TRUE(broken([](auto& j) { j["vcpus"] = "two"; }));
    EXPECT_TRUE(broken([](auto& j) { j["memory"]["regions"] = nlohmann::json::array(); }));
    EXPECT_TRUE(broken([](auto& j) { j["memory"]["regions"][0]["size"] = (512ull << 20); }));
    EXPECT_TRUE(broken([](auto& j) { j["memory"]["regions"][0]["file_offset"] = 12; }));
    EXPECT_TRUE(broken([](auto& j) { j["cpu"]["features"]["0x1.0.ecx"] = "zz"; }));
    EXPECT_TRUE(broken([](auto& j) { j["disks"][0].erase("path"); }));
    EXPECT_TRUE(broken([](auto& j) { j.erase("cpu"); }));
    EXPECT_FALSE(manifest_from_json(nlohmann::json::array()).ok());
}

TEST(Manifest, LoadChecksTheCpuAndSaysWhatDiffers) {
    testing::TempDir dir("vireo-manifest");
    auto m = some_manifest();
    ASSERT_TRUE(write_manifest(dir.path().string(), m).ok());
    EXPECT_TRUE(std::filesystem::exists(dir.file("manifest.json")));
    EXPECT_FALSE(std::filesystem::exists(dir.file("manifest.json.tmp")));

    auto same = load_manifest(dir.path().string(), m.cpu);
    ASSERT_TRUE(same.ok()) << same.error().message();

    auto other = m.cpu;
    other.features["0x7.0.ebx"] &= ~(1u << 5);
    auto refused = load_manifest(dir.path().string(), other);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("different CPU feature set"), std::string::npos);
    EXPECT_NE(refused.error().message().find("avx2"), std::string::npos) << refused.error().message();
}

TEST(Manifest, LoadRefusesWhatIsNotASnapshot) {
    testing::TempDir dir("vireo-manifest");
    auto missing = load_manifest(dir.path().string(), some_cpu());
    ASSERT_FALSE(missing.ok());
    EXPECT_NE(missing.error().message().find("no manifest.json"), std::string::npos);
    std::ofstream(dir.file("manifest.json")) << "{ not json";
    auto garbage = load_manifest(dir.path().string(), some_cpu());
    ASSERT_FALSE(garbage.ok());
    EXPECT_NE(garbage.error().message().find("not valid JSON"), std::string::npos);
}

}  // namespace
}  // namespace vireo::vmm::snapshot
