// KVM state round trip through the snapshot's JSON form: a real-mode guest counting in memory
// and reporting each count on an I/O port is saved mid-run, restored into a fresh VM, and
// continues with the next count.
#include "vmm/control/state_json.hpp"

#include <sys/mman.h>

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/snapshot/host_cpu.hpp"
#include "vmm/vcpu_state.hpp"

namespace vireo::vmm {
using snapshot::host_cpu_from_json;
using snapshot::probe_host_cpu;
namespace {

constexpr uint64_t kMemSize = 0x10000;
constexpr uint64_t kCodeAddr = 0x1000;
constexpr uint64_t kCounterAddr = 0x800;
constexpr uint16_t kPort = 0x10;

// xor ax,ax; mov ds,ax; loop: inc word [0x800]; mov ax,[0x800]; out 0x10,ax; jmp loop
constexpr uint8_t kGuest[] = {0x31, 0xc0, 0x8e, 0xd8, 0xff, 0x06, 0x00, 0x08,
                              0xa1, 0x00, 0x08, 0xe7, 0x10, 0xeb, 0xf5};

struct TestVm {
    std::vector<kvm_cpuid_entry2> cpuid;
    std::unique_ptr<kvm::Vm> vm;
    std::unique_ptr<kvm::Vcpu> vcpu;
    uint8_t* mem = nullptr;
    ~TestVm() {
        if (mem) ::munmap(mem, kMemSize);
    }
};

Result<std::unique_ptr<TestVm>> make_vm(const kvm::System& sys) {
    auto t = std::make_unique<TestVm>();
    VIREO_ASSIGN_OR_RETURN(t->vm, sys.create_vm());
    VIREO_TRY(t->vm->set_tss_addr(0xfffbd000));
    VIREO_TRY(t->vm->create_irqchip());
    VIREO_TRY(t->vm->create_pit2());
    t->mem = static_cast<uint8_t*>(
        ::mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (t->mem == MAP_FAILED) return os_error("mmap");
    VIREO_TRY(t->vm->set_user_memory_region(0, 0, kMemSize, t->mem));
    VIREO_ASSIGN_OR_RETURN(t->vcpu, t->vm->create_vcpu(0));
    VIREO_ASSIGN_OR_RETURN(t->cpuid, sys.supported_cpuid());
    VIREO_TRY(t->vcpu->set_cpuid(t->cpuid));
    return t;
}

Status boot(TestVm& t) {
    std::memcpy(t.mem + kCodeAddr, kGuest, sizeof kGuest);
    VIREO_ASSIGN_OR_RETURN(auto sregs, t.vcpu->get_sregs());
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    VIREO_TRY(t.vcpu->set_sregs(sregs));
    kvm_regs regs{};
    regs.rip = kCodeAddr;
    regs.rflags = 2;
    return t.vcpu->set_regs(regs);
}

// Runs until the guest reports a count on the port; returns it.
Result<uint16_t> next_count(TestVm& t) {
    for (int i = 0; i < 1000; ++i) {
        VIREO_TRY(t.vcpu->run());
        kvm_run* run = t.vcpu->run_state();
        if (run->exit_reason == KVM_EXIT_IO && run->io.direction == KVM_EXIT_IO_OUT &&
            run->io.port == kPort) {
            uint16_t v;
            std::memcpy(&v, reinterpret_cast<uint8_t*>(run) + run->io.data_offset, sizeof v);
            return v;
        }
        if (run->exit_reason != KVM_EXIT_INTR) return make_error("unexpected exit {}", run->exit_reason);
    }
    return make_error("the guest never reported");
}

TEST(KvmState, GuestContinuesAfterRestoreWithoutGapOrRepeat) {
    auto sys = kvm::System::open();
    if (!sys.ok()) GTEST_SKIP() << sys.error().message();
    auto a = make_vm(*sys);
    ASSERT_TRUE(a.ok()) << a.error().message();
    ASSERT_TRUE(boot(**a).ok());
    for (uint16_t expect = 1; expect <= 5; ++expect) {
        auto c = next_count(**a);
        ASSERT_TRUE(c.ok()) << c.error().message();
        ASSERT_EQ(*c, expect);
    }
    // Paused right after an OUT exit: the OUT completes only on the next entry.
    (*a)->vcpu->set_immediate_exit(true);
    ASSERT_TRUE((*a)->vcpu->run().ok());
    (*a)->vcpu->set_immediate_exit(false);
    auto msrs = saveable_msrs(*sys, *(*a)->vcpu);
    ASSERT_TRUE(msrs.ok()) << msrs.error().message();
    EXPECT_FALSE(msrs->empty());
    auto vcpu_state = save_vcpu_state(*(*a)->vcpu, *msrs, sys->xsave_size());
    ASSERT_TRUE(vcpu_state.ok()) << vcpu_state.error().message();
    auto vm_state = save_vm_kvm_state(*(*a)->vm);
    ASSERT_TRUE(vm_state.ok()) << vm_state.error().message();
    EXPECT_EQ(vcpu_state->msrs.size(), msrs->size());

    // Through JSON, as a snapshot stores it.
    auto vcpu_back = vcpu_snapshot_from_json(nlohmann::json::parse(to_json(*vcpu_state).dump()));
    ASSERT_TRUE(vcpu_back.ok()) << vcpu_back.error().message();
    auto vm_back = vm_kvm_snapshot_from_json(nlohmann::json::parse(to_json(*vm_state).dump()));
    ASSERT_TRUE(vm_back.ok()) << vm_back.error().message();
    EXPECT_EQ(vcpu_back->regs.rip, vcpu_state->regs.rip);
    EXPECT_EQ(std::memcmp(&vcpu_back->sregs, &vcpu_state->sregs, sizeof(kvm_sregs)), 0);
    EXPECT_EQ(vcpu_back->xsave, vcpu_state->xsave);

    auto b = make_vm(*sys);
    ASSERT_TRUE(b.ok()) << b.error().message();
    std::memcpy((*b)->mem, (*a)->mem, kMemSize);
    ASSERT_TRUE(restore_vm_kvm_state(*(*b)->vm, *vm_back).ok());
    auto restored = restore_vcpu_state(*(*b)->vcpu, *vcpu_back);
    ASSERT_TRUE(restored.ok()) << restored.error().message();
    for (uint16_t expect = 6; expect <= 8; ++expect) {
        auto c = next_count(**b);
        ASSERT_TRUE(c.ok()) << c.error().message();
        EXPECT_EQ(*c, expect) << "the restored guest must continue the count";
    }
    uint16_t in_memory;
    std::memcpy(&in_memory, (*b)->mem + kCounterAddr, sizeof in_memory);
    EXPECT_EQ(in_memory, 8);

    // The original keeps going on its own.
    auto c = next_count(**a);
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(*c, 6);
}

TEST(KvmState, BadJsonIsRefused) {
    EXPECT_FALSE(vcpu_snapshot_from_json(nlohmann::json::object()).ok());
    EXPECT_FALSE(vm_kvm_snapshot_from_json(nlohmann::json{{"pic_master", "AAAA"}}).ok());
    VcpuSnapshot s;
    s.xsave.resize(4096);
    s.cpuid.resize(1);
    auto j = to_json(s);
    EXPECT_TRUE(vcpu_snapshot_from_json(j).ok());
    auto short_lapic = j;
    short_lapic["lapic"] = "AAAA";
    EXPECT_FALSE(vcpu_snapshot_from_json(short_lapic).ok());
    auto short_xsave = j;
    short_xsave["xsave"] = "AAAA";
    EXPECT_FALSE(vcpu_snapshot_from_json(short_xsave).ok());
    auto no_cpuid = j;
    no_cpuid["cpuid"] = "";
    EXPECT_FALSE(vcpu_snapshot_from_json(no_cpuid).ok());
    auto bad_msr = j;
    bad_msr["msrs"] = nlohmann::json::array({{{"index", -1}, {"value", 0}}});
    EXPECT_FALSE(vcpu_snapshot_from_json(bad_msr).ok());
    auto bad_reg = j;
    bad_reg["regs"]["rip"] = "x";
    EXPECT_FALSE(vcpu_snapshot_from_json(bad_reg).ok());
    VmKvmSnapshot vm;
    vm.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    vm.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    vm.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    EXPECT_TRUE(vm_kvm_snapshot_from_json(to_json(vm)).ok());
    vm.ioapic.chip_id = KVM_IRQCHIP_PIC_MASTER;
    EXPECT_FALSE(vm_kvm_snapshot_from_json(to_json(vm)).ok());
}

TEST(HostCpuProbe, ReadsThisHost) {
    auto sys = kvm::System::open();
    if (!sys.ok()) GTEST_SKIP() << sys.error().message();
    auto cpu = probe_host_cpu(*sys);
    ASSERT_TRUE(cpu.ok()) << cpu.error().message();
    EXPECT_FALSE(cpu->vendor.empty());
    EXPECT_NE(cpu->features.at("0x1.0.edx"), 0u);
    auto again = host_cpu_from_json(to_json(*cpu));
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(*again, *cpu);
}

}  // namespace
}  // namespace vireo::vmm
