// Tests for the VMM control helpers that need no KVM: VM config JSON, exit reason names, the
// JSON form of vCPU and KVM device state, snapshot destinations, the counting bus wrapper.
#include <gtest/gtest.h>

#include <fstream>

#include "support/subprocess.hpp"
#include "vmm/control/config_json.hpp"
#include "vmm/control/counting_device.hpp"
#include "vmm/control/exit_reasons.hpp"
#include "vmm/control/snapshot_writer.hpp"
#include "vmm/control/state_json.hpp"

namespace vireo::vmm {
namespace {

TEST(ConfigJson, RoundTripsTheMachine) {
    VmConfig c;
    c.kernel = "/k";
    c.initrd = "/i";
    c.cmdline = "console=ttyS0";
    c.cpus = 3;
    c.memory_mib = 512;
    c.hugepages = true;
    c.cpu_features = "-xsave";
    c.serial = {SerialMode::kFile, "/tmp/x"};
    auto j = to_json(c);
    EXPECT_EQ(j["serial"], "file:/tmp/x");
    VmConfig host;
    host.serial = {SerialMode::kNone, ""};
    host.api_socket = "/run/a.sock";
    auto back = vm_config_from_json(j, host);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->kernel, "/k");
    EXPECT_EQ(back->initrd, "/i");
    EXPECT_EQ(back->cmdline, "console=ttyS0");
    EXPECT_EQ(back->cpus, 3u);
    EXPECT_EQ(back->memory_mib, 512u);
    EXPECT_TRUE(back->hugepages);
    EXPECT_EQ(back->cpu_features, "-xsave");
    // Host-side settings stay the restoring command line's.
    EXPECT_EQ(back->serial.mode, SerialMode::kNone);
    EXPECT_EQ(back->api_socket, "/run/a.sock");
}

TEST(ConfigJson, RoundTripsTheVirtioDevices) {
    VmConfig c;
    c.kernel = "/k";
    c.disks = {{"/images/a,b.vhd", false, "vhd", "SER1"}, {"/images/r.img", true, "auto", ""}};
    c.nets = {{"tap0", "52:54:00:12:34:56"}, {"tap1", ""}};
    c.console = {VirtioConsoleMode::kFile, "/tmp/hvc0"};
    c.rng = true;
    auto j = nlohmann::json::parse(to_json(c).dump());
    auto back = vm_config_from_json(j);
    ASSERT_TRUE(back.ok()) << back.error().message();
    ASSERT_EQ(back->disks.size(), 2u);
    EXPECT_EQ(back->disks[0].path, "/images/a,b.vhd");  // a comma in a path survives
    EXPECT_FALSE(back->disks[0].read_only);
    EXPECT_EQ(back->disks[0].format, "vhd");
    EXPECT_EQ(back->disks[0].serial, "SER1");
    EXPECT_EQ(back->disks[1].path, "/images/r.img");
    EXPECT_TRUE(back->disks[1].read_only);
    EXPECT_EQ(back->disks[1].format, "auto");
    ASSERT_EQ(back->nets.size(), 2u);
    EXPECT_EQ(back->nets[0].tap, "tap0");
    EXPECT_EQ(back->nets[0].mac, "52:54:00:12:34:56");
    EXPECT_EQ(back->nets[1].tap, "tap1");
    EXPECT_TRUE(back->nets[1].mac.empty());
    EXPECT_EQ(back->console.mode, VirtioConsoleMode::kFile);
    EXPECT_EQ(back->console.path, "/tmp/hvc0");
    EXPECT_TRUE(back->rng);

    // Where the console's output goes is the restoring host's choice.
    VmConfig host;
    host.console = {VirtioConsoleMode::kStdio, ""};
    back = vm_config_from_json(j, host);
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->console.mode, VirtioConsoleMode::kStdio);
    EXPECT_EQ(back->disks.size(), 2u);
}

TEST(ConfigJson, DevicesComeFromTheSnapshotOnly) {
    VmConfig c;
    c.kernel = "/k";
    auto j = to_json(c);  // no virtio devices
    for (auto edit :
         std::vector<std::function<void(VmConfig&)>>{[](auto& h) {
                                                         h.disks.push_back({"/d.img", false, "auto", ""});
                                                     },
                                                     [](auto& h) {
                                                         h.nets.push_back({"tap0", ""});
                                                     },
                                                     [](auto& h) { h.rng = true; },
                                                     [](auto& h) {
                                                         h.console = {VirtioConsoleMode::kStdio, ""};
                                                     }}) {
        VmConfig host;
        edit(host);
        auto r = vm_config_from_json(j, host);
        ASSERT_FALSE(r.ok());
        EXPECT_NE(r.error().message().find("snapshot"), std::string::npos) << r.error().message();
    }
    // A manifest written before devices were recorded describes a VM without them.
    j.erase("disks");
    j.erase("nets");
    j.erase("console");
    j.erase("rng");
    auto old = vm_config_from_json(j);
    ASSERT_TRUE(old.ok()) << old.error().message();
    EXPECT_TRUE(old->disks.empty());
    EXPECT_EQ(old->console.mode, VirtioConsoleMode::kNone);
}

TEST(ConfigJson, RefusesBrokenDevices) {
    VmConfig c;
    c.kernel = "/k";
    c.disks = {{"/d.img", false, "raw", ""}};
    c.nets = {{"tap0", ""}};
    auto j = to_json(c);
    for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
             [](auto& x) { x["disks"] = "a"; }, [](auto& x) { x["disks"][0] = "/d.img"; },
             [](auto& x) { x["disks"][0]["path"] = ""; }, [](auto& x) { x["disks"][0].erase("path"); },
             [](auto& x) { x["disks"][0]["format"] = "qcow2"; },
             [](auto& x) { x["disks"][0]["read_only"] = "no"; },
             [](auto& x) { x["disks"][0]["serial"] = std::string(21, 'x'); },
             [](auto& x) { x["disks"][0]["serial"] = "a\nb"; }, [](auto& x) { x["nets"] = {1}; },
             [](auto& x) { x["nets"][0]["tap"] = ""; }, [](auto& x) { x["nets"][0]["mac"] = "zz"; },
             [](auto& x) { x["rng"] = 1; }, [](auto& x) { x["console"] = "tty"; }}) {
        auto broken = j;
        edit(broken);
        EXPECT_FALSE(vm_config_from_json(broken).ok()) << broken.dump();
    }
}

TEST(ConfigJson, RefusesBrokenConfigs) {
    VmConfig c;
    c.kernel = "/k";
    auto j = to_json(c);
    for (auto edit : std::vector<std::function<void(nlohmann::json&)>>{
             [](auto& x) { x.erase("kernel"); }, [](auto& x) { x["kernel"] = 1; },
             [](auto& x) { x["cpus"] = "2"; }, [](auto& x) { x["cpus"] = 100000; },
             [](auto& x) { x.erase("memory_mib"); }, [](auto& x) { x["hugepages"] = "yes"; }}) {
        auto broken = j;
        edit(broken);
        EXPECT_FALSE(vm_config_from_json(broken).ok()) << broken.dump();
    }
    EXPECT_FALSE(vm_config_from_json(nlohmann::json::array()).ok());
}

TEST(ExitReasons, Names) {
    EXPECT_EQ(exit_reason_name(KVM_EXIT_IO), "io");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_MMIO), "mmio");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_HLT), "hlt");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_SHUTDOWN), "shutdown");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_INTR), "intr");
    EXPECT_EQ(exit_reason_name(63), "other");
}

TEST(ExitReasons, RssIsPlausible) {
    uint64_t rss = process_rss_bytes();
    EXPECT_GT(rss, 100u * 1024);
    EXPECT_LT(rss, 64ull << 30);
}

TEST(StateJson, VcpuRoundTrip) {
    VcpuSnapshot s;
    s.mp_state.mp_state = KVM_MP_STATE_HALTED;
    s.regs.rip = 0x1234;
    s.regs.rflags = 0x202;
    s.regs.r15 = ~uint64_t{0};
    s.sregs.cr0 = 0x80000011;
    s.xsave.assign(8192, 0xAB);  // an XSAVE2 area larger than struct kvm_xsave
    s.xcrs.nr_xcrs = 1;
    s.lapic.regs[0x20] = 7;
    s.msrs = {{0x10, 0, 12345}, {0xc0000080, 0, 0x500}};
    s.events.exception.injected = 1;
    kvm_cpuid_entry2 e{};
    e.function = 1;
    e.ecx = 0x80000000;
    s.cpuid = {e, e};
    s.tsc_khz = 2'500'000;
    auto back = vcpu_snapshot_from_json(nlohmann::json::parse(to_json(s).dump()));
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->mp_state.mp_state, s.mp_state.mp_state);
    EXPECT_EQ(back->regs.rip, 0x1234u);
    EXPECT_EQ(back->regs.r15, ~uint64_t{0});
    EXPECT_EQ(back->sregs.cr0, s.sregs.cr0);
    EXPECT_EQ(back->xsave, s.xsave);
    EXPECT_EQ(back->xcrs.nr_xcrs, 1u);
    EXPECT_EQ(back->lapic.regs[0x20], 7);
    ASSERT_EQ(back->msrs.size(), 2u);
    EXPECT_EQ(back->msrs[1].index, 0xc0000080u);
    EXPECT_EQ(back->msrs[0].data, 12345u);
    EXPECT_EQ(back->events.exception.injected, 1);
    ASSERT_EQ(back->cpuid.size(), 2u);
    EXPECT_EQ(back->cpuid[1].ecx, 0x80000000u);
    EXPECT_EQ(back->tsc_khz, 2'500'000u);
    EXPECT_EQ(to_json(s)["regs"]["rip"], 0x1234) << "registers are stored by name";
}

TEST(StateJson, KvmDevicesRoundTrip) {
    VmKvmSnapshot s;
    s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s.pic_master.chip.pic.irq_base = 0x20;
    s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    s.ioapic.chip.ioapic.id = 3;
    s.pit.channels[0].count = 0x4321;
    s.clock.clock = 987654321;
    auto back = vm_kvm_snapshot_from_json(nlohmann::json::parse(to_json(s).dump()));
    ASSERT_TRUE(back.ok()) << back.error().message();
    EXPECT_EQ(back->pic_master.chip.pic.irq_base, 0x20);
    EXPECT_EQ(back->ioapic.chip.ioapic.id, 3u);
    EXPECT_EQ(back->pit.channels[0].count, 0x4321u);
    EXPECT_EQ(back->clock.clock, 987654321u);
}

TEST(SnapshotDestination, NewEmptyOrRefused) {
    testing::TempDir dir("vireo-snapdest");
    auto created = prepare_snapshot_dir(dir.file("new"));
    ASSERT_TRUE(created.ok()) << created.error().message();
    EXPECT_TRUE(*created);
    auto existing = prepare_snapshot_dir(dir.file("new"));  // exists and is empty
    ASSERT_TRUE(existing.ok());
    EXPECT_FALSE(*existing);
    std::ofstream(dir.file("new/x")) << "x";
    auto full = prepare_snapshot_dir(dir.file("new"));
    ASSERT_FALSE(full.ok());
    EXPECT_NE(full.error().message().find("not empty"), std::string::npos);
    auto file = prepare_snapshot_dir(dir.file("new/x"));
    ASSERT_FALSE(file.ok());
    EXPECT_NE(file.error().message().find("not a directory"), std::string::npos);
    auto orphan = prepare_snapshot_dir(dir.file("missing/child"));
    ASSERT_FALSE(orphan.ok());
    EXPECT_NE(orphan.error().message().find("parent"), std::string::npos);
    EXPECT_FALSE(prepare_snapshot_dir("").ok());

    remove_partial_snapshot(dir.file("new"), false);
    EXPECT_TRUE(std::filesystem::exists(dir.file("new/x"))) << "only snapshot files are removed";
    ASSERT_TRUE(prepare_snapshot_dir(dir.file("other")).ok());
    std::ofstream(dir.file("other/memory.bin")) << "m";
    remove_partial_snapshot(dir.file("other"), true);
    EXPECT_FALSE(std::filesystem::exists(dir.file("other")));
}

class Recorder final : public devices::BusDevice {
  public:
    void read(uint64_t, std::span<uint8_t> data) override {
        ++reads;
        std::fill(data.begin(), data.end(), 0x5A);
    }
    void write(uint64_t, std::span<const uint8_t>) override { ++writes; }
    int reads = 0, writes = 0;
};

TEST(CountingDevice, ForwardsAndCounts) {
    auto inner = std::make_shared<Recorder>();
    CountingDevice counted(inner);
    uint8_t buf[4] = {};
    counted.read(0, buf);
    counted.write(1, std::span<const uint8_t>(buf, 2));
    EXPECT_EQ(buf[0], 0x5A);
    EXPECT_EQ(inner->reads, 1);
    EXPECT_EQ(inner->writes, 1);
    EXPECT_EQ(counted.requests(), 2u);
    EXPECT_EQ(counted.bytes(), 6u);
}

}  // namespace
}  // namespace vireo::vmm
