// The virtio device options: --disk, --net, --console, --rng: parsing, errors that name the
// problem, and the round trip through the argument list `vireo run` passes on.
#include "vmm/device_config.hpp"

#include <gtest/gtest.h>

#include "vmm/vm_options.hpp"

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

std::string error_of(std::string_view text, Result<DiskConfig> (*f)(std::string_view)) {
    auto r = f(text);
    return r.ok() ? "" : r.error().message();
}

TEST(DiskConfig, Parses) {
    auto d = parse_disk("/images/a.vhd");
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(d->path, "/images/a.vhd");
    EXPECT_FALSE(d->read_only);
    EXPECT_EQ(d->format, "auto");
    EXPECT_TRUE(d->serial.empty());
    d = parse_disk("/a.img,ro,format=raw,serial=SN-0001");
    ASSERT_TRUE(d.ok()) << d.error().message();
    EXPECT_TRUE(d->read_only);
    EXPECT_EQ(d->format, "raw");
    EXPECT_EQ(d->serial, "SN-0001");
    EXPECT_EQ(to_string(*d), "/a.img,ro,format=raw,serial=SN-0001");
    EXPECT_EQ(parse_disk("/a,format=vpc")->format, "vhd");
}

TEST(DiskConfig, Errors) {
    EXPECT_NE(error_of("", parse_disk).find("needs a path"), std::string::npos);
    EXPECT_NE(error_of(",ro", parse_disk).find("needs a path"), std::string::npos);
    EXPECT_NE(error_of("/a,format=qcow2", parse_disk).find("qcow2"), std::string::npos);
    EXPECT_NE(error_of("/a,cache=none", parse_disk).find("unknown option 'cache=none'"), std::string::npos);
    EXPECT_NE(error_of("/a,serial=123456789012345678901", parse_disk).find("longer than 20"),
              std::string::npos);
    EXPECT_NE(error_of("/a,ro,ro", parse_disk).find("twice"), std::string::npos);
    EXPECT_NE(error_of("/a,serial=x\ty", parse_disk).find("printable"), std::string::npos);
}

TEST(NetConfig, ParsesAndNormalizesTheMac) {
    auto n = parse_net("tap=tap0,mac=52:54:00:AA:BB:CC");
    ASSERT_TRUE(n.ok()) << n.error().message();
    EXPECT_EQ(n->tap, "tap0");
    EXPECT_EQ(n->mac, "52:54:00:aa:bb:cc");
    EXPECT_EQ(to_string(*n), "tap=tap0,mac=52:54:00:aa:bb:cc");
    EXPECT_TRUE(parse_net("tap=tap1")->mac.empty());
    EXPECT_FALSE(parse_net("").ok());
    EXPECT_FALSE(parse_net("mac=52:54:00:aa:bb:cc").ok());
    EXPECT_FALSE(parse_net("tap=").ok());
    EXPECT_FALSE(parse_net("tap=a,tap=b").ok());
    auto bad_mac = parse_net("tap=t,mac=01:00:00:00:00:01");
    ASSERT_FALSE(bad_mac.ok());
    EXPECT_NE(bad_mac.error().message().find("multicast"), std::string::npos);
    EXPECT_FALSE(parse_net("tap=t,vhost=on").ok());
}

TEST(VirtioConsoleConfig, Parses) {
    EXPECT_EQ(parse_console("none")->mode, VirtioConsoleMode::kNone);
    EXPECT_EQ(parse_console("stdio")->mode, VirtioConsoleMode::kStdio);
    auto f = parse_console("file:/tmp/hvc0.log");
    ASSERT_TRUE(f.ok());
    EXPECT_EQ(f->path, "/tmp/hvc0.log");
    EXPECT_EQ(to_string(*f), "file:/tmp/hvc0.log");
    EXPECT_FALSE(parse_console("file:").ok());
    EXPECT_FALSE(parse_console("tty").ok());
}

TEST(VmOptionsDevices, RepeatableAndRoundTrip) {
    auto c = parse({"--kernel", "/k", "--disk", "/a.img", "--disk", "/b.vhd,ro,serial=B", "--net", "tap=t0",
                    "--console", "file:/tmp/c", "--rng", "--serial", "none"});
    ASSERT_TRUE(c.ok()) << c.error().message();
    ASSERT_EQ(c->disks.size(), 2u);
    EXPECT_EQ(c->disks[1].serial, "B");
    ASSERT_EQ(c->nets.size(), 1u);
    EXPECT_EQ(c->console.mode, VirtioConsoleMode::kFile);
    EXPECT_TRUE(c->rng);
    std::vector<std::string> args = to_args(*c);
    auto again = parse(args);
    ASSERT_TRUE(again.ok()) << again.error().message();
    EXPECT_EQ(to_args(*again), args);
}

TEST(VmOptionsDevices, ConflictsAreNamed) {
    auto stdio = parse({"--kernel", "/k", "--console", "stdio"});
    ASSERT_FALSE(stdio.ok());
    EXPECT_NE(stdio.error().message().find("--serial stdio"), std::string::npos);
    EXPECT_TRUE(parse({"--kernel", "/k", "--console", "stdio", "--serial", "none"}).ok());
    auto bad = parse({"--kernel", "/k", "--disk", "/a,bogus"});
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("--disk"), std::string::npos);
    std::vector<std::string> many = {"--kernel", "/k"};
    for (int i = 0; i < 32; ++i) {
        many.push_back("--disk");
        many.push_back("/d" + std::to_string(i));
    }
    auto too_many = parse(many);
    ASSERT_FALSE(too_many.ok());
    EXPECT_NE(too_many.error().message().find("31"), std::string::npos);
}

}  // namespace
}  // namespace vireo::vmm
