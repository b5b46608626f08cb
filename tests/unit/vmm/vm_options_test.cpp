// The VM command line: defaults, every option, errors that name the option, and the argument
// list `vireo run` hands to vireo-vmm.
#include "vmm/vm_options.hpp"

#include <gtest/gtest.h>

namespace vireo::vmm {
namespace {

Result<VmConfig> parse(std::vector<std::string> args) {
    CLI::App app;
    VmOptions options;
    add_vm_options(app, options);
    std::vector<const char*> argv = {"vireo-vmm"};
    for (auto& a : args)
        argv.push_back(a.c_str());
    app.parse(static_cast<int>(argv.size()), argv.data());
    return finish_options(options);
}

TEST(VmOptions, Defaults) {
    auto c = parse({"--kernel", "/k"});
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->kernel, "/k");
    EXPECT_EQ(c->cpus, 1u);
    EXPECT_EQ(c->memory_mib, 256u);
    EXPECT_EQ(c->serial.mode, SerialMode::kStdio);
    EXPECT_EQ(c->on_reboot, RebootAction::kExit);
    EXPECT_TRUE(c->cpu_features.empty());
    EXPECT_FALSE(c->hugepages);
}

TEST(VmOptions, EveryOption) {
    auto c = parse({"--kernel", "/k", "--initrd", "/i", "--cmdline", "console=ttyS0 quiet", "--cpus", "4",
                    "--memory", "1024", "--serial", "file:/tmp/out", "--on-reboot", "restart",
                    "--cpu-features", "-xsave,-cx16", "--log-level", "debug", "--hugepages"});
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->initrd, "/i");
    EXPECT_EQ(c->cmdline, "console=ttyS0 quiet");
    EXPECT_EQ(c->cpus, 4u);
    EXPECT_EQ(c->memory_mib, 1024u);
    EXPECT_EQ(c->serial.mode, SerialMode::kFile);
    EXPECT_EQ(c->serial.path, "/tmp/out");
    EXPECT_EQ(c->on_reboot, RebootAction::kRestart);
    EXPECT_EQ(c->cpu_features, "-xsave,-cx16");
    EXPECT_EQ(c->log_level, "debug");
    EXPECT_TRUE(c->hugepages);
}

TEST(VmOptions, RepeatedOptionsTakeTheLastValue) {
    auto c = parse({"--kernel", "/a", "--memory", "64", "--memory", "128", "--kernel", "/b"});
    ASSERT_TRUE(c.ok()) << c.error().message();
    EXPECT_EQ(c->memory_mib, 128u);
    EXPECT_EQ(c->kernel, "/b");
}

TEST(VmOptions, MemoryAcceptsSuffixes) {
    EXPECT_EQ(*parse_memory_mib("512"), 512u);
    EXPECT_EQ(*parse_memory_mib("2G"), 2048u);
    EXPECT_EQ(*parse_memory_mib("512M"), 512u);
    EXPECT_FALSE(parse_memory_mib("1.5K").ok());
    EXPECT_FALSE(parse_memory_mib("lots").ok());
}

TEST(VmOptions, ErrorsNameTheOption) {
    struct Case {
        std::vector<std::string> args;
        const char* expect;
    };
    const Case cases[] = {
        {{}, "--kernel is required"},
        {{"--kernel", "/k", "--cpus", "0"}, "--cpus 0"},
        {{"--kernel", "/k", "--cpus", "300"}, "--cpus 300"},
        {{"--kernel", "/k", "--memory", "1"}, "--memory 1"},
        {{"--kernel", "/k", "--serial", "tcp:1234"}, "--serial 'tcp:1234'"},
        {{"--kernel", "/k", "--serial", "file:"}, "--serial file:"},
        {{"--kernel", "/k", "--on-reboot", "poweroff"}, "--on-reboot 'poweroff'"},
        {{"--kernel", "/k", "--cpu-features", "-nosuch"}, "unknown CPU feature 'nosuch'"},
        {{"--kernel", "/k", "--memory", "257", "--hugepages"}, "multiple of 2 MiB"},
    };
    for (const auto& c : cases) {
        auto r = parse(c.args);
        ASSERT_FALSE(r.ok()) << c.expect;
        EXPECT_NE(r.error().message().find(c.expect), std::string::npos) << r.error().message();
    }
}

TEST(VmOptions, ArgsRoundTrip) {
    auto c = parse({"--kernel", "/k", "--initrd", "/i", "--cmdline", "a b  c", "--cpus", "2", "--memory",
                    "2G", "--serial", "none", "--on-reboot", "restart", "--cpu-features", "-cx16"});
    ASSERT_TRUE(c.ok());
    auto args = to_args(*c);
    auto again = parse(args);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(again->kernel, "/k");
    EXPECT_EQ(again->initrd, "/i");
    EXPECT_EQ(again->cmdline, "a b  c");
    EXPECT_EQ(again->cpus, 2u);
    EXPECT_EQ(again->memory_mib, 2048u);
    EXPECT_EQ(again->serial.mode, SerialMode::kNone);
    EXPECT_EQ(again->on_reboot, RebootAction::kRestart);
    EXPECT_EQ(again->cpu_features, "-cx16");
}

TEST(VmOptions, FeatureListNamesFeatures) {
    std::string list = cpu_feature_list();
    EXPECT_NE(list.find("xsave"), std::string::npos);
    EXPECT_NE(list.find("cx16"), std::string::npos);
    EXPECT_NE(list.find("pdpe1gb"), std::string::npos);
}

}  // namespace
}  // namespace vireo::vmm
