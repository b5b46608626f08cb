// A Vm built in this process: the vCPU lifecycle (pause at a clean point, resume), full vCPU and
// in-kernel device state read back and written again (what snapshots build on), the CPUID
// table KVM holds after --cpu-features, and application processors waiting for INIT/SIPI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "arch/x86/cpuid.hpp"
#include "kvm/kvm.hpp"
#include "vmm/boot_timer.hpp"
#include "vmm/console.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vm.hpp"

namespace vireo::vmm {
namespace {

const std::string kGuests = std::string(VIREO_BINARY_DIR) + "/guests/";

class VmStateTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not available on this host";
        if (::access((kGuests + "pvh64.elf").c_str(), R_OK) != 0)
            GTEST_SKIP() << "test guests were not built";
        auto sys = kvm::System::open();
        ASSERT_TRUE(sys.ok()) << sys.error().message();
        system.emplace(std::move(sys).value());
        supported = std::move(system->supported_cpuid()).value();
        loop = std::move(EventLoop::create()).value();
        console = std::move(Console::create(SerialConfig{SerialMode::kNone, ""}, *loop, nullptr)).value();
    }

    std::unique_ptr<Vm> make_vm(const std::string& cmdline, uint32_t cpus, const std::string& features = "") {
        VmConfig config;
        config.kernel = kGuests + "pvh64.elf";
        config.cmdline = cmdline;
        config.cpus = cpus;
        config.memory_mib = 32;
        config.cpu_features = features;
        Vm::Environment env{*system, *loop, *console, [this](const VmStop&) { loop->stop(); }, supported};
        auto vm = Vm::create(config, env);
        EXPECT_TRUE(vm.ok()) << vm.error().message();
        return vm.ok() ? std::move(vm).value() : nullptr;
    }

    std::optional<kvm::System> system;
    std::vector<kvm_cpuid_entry2> supported;
    std::unique_ptr<EventLoop> loop;
    std::unique_ptr<Console> console;
};

TEST_F(VmStateTest, PauseSaveRestoreResume) {
    auto vm = make_vm("exit=spin", 2);
    ASSERT_NE(vm, nullptr);
    EXPECT_EQ(vm->state(), VmState::kCreated);
    ASSERT_TRUE(vm->start().ok());
    EXPECT_EQ(vm->state(), VmState::kRunning);
    // Let the guest reach its busy loop.
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    ASSERT_TRUE(vm->pause().ok());
    EXPECT_EQ(vm->state(), VmState::kPaused);
    for (VcpuRunner* v : vm->vcpus())
        EXPECT_EQ(v->state(), VcpuState::kPaused);
    EXPECT_FALSE(vm->pause().ok());  // already paused

    auto states = vm->save_vcpu_states();
    ASSERT_TRUE(states.ok()) << states.error().message();
    ASSERT_EQ(states->size(), 2u);
    const VcpuSnapshot& bsp = (*states)[0];
    EXPECT_EQ(bsp.mp_state.mp_state, static_cast<uint32_t>(KVM_MP_STATE_RUNNABLE));
    EXPECT_GE(bsp.regs.rip, 0x100000u);  // inside the guest image
    EXPECT_LT(bsp.regs.rip, 0x200000u);
    EXPECT_TRUE(bsp.sregs.efer & (1 << 10));  // the guest switched itself to long mode
    EXPECT_FALSE(bsp.msrs.empty());
    EXPECT_GE(bsp.xsave.size(), 4096u);
    EXPECT_GT(bsp.tsc_khz, 0u);
    // The AP was never started: it still waits for INIT/SIPI.
    EXPECT_EQ((*states)[1].mp_state.mp_state, static_cast<uint32_t>(KVM_MP_STATE_UNINITIALIZED));

    for (auto& [name, device] : vm->stateful_devices()) {
        auto state = device->save_state();
        EXPECT_TRUE(state.is_object()) << name;
        EXPECT_TRUE(device->restore_state(state).ok()) << name;
    }

    auto kvm_state = vm->save_kvm_state();
    ASSERT_TRUE(kvm_state.ok()) << kvm_state.error().message();
    EXPECT_EQ(kvm_state->ioapic.chip_id, static_cast<uint32_t>(KVM_IRQCHIP_IOAPIC));

    // Write everything back, as a restore would, then check it reads back the same.
    auto vcpus = vm->vcpus();
    for (size_t i = 0; i < vcpus.size(); ++i) {
        Status s =
            vcpus[i]->run_paused([&](kvm::Vcpu& vcpu) { return restore_vcpu_state(vcpu, (*states)[i]); });
        ASSERT_TRUE(s.ok()) << s.error().message();
    }
    ASSERT_TRUE(restore_vm_kvm_state(vm->kvm_vm(), *kvm_state).ok());
    auto again = vm->save_vcpu_states();
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)[0].regs.rip, bsp.regs.rip);
    EXPECT_EQ((*again)[0].sregs.cr3, bsp.sregs.cr3);
    EXPECT_EQ((*again)[0].msrs.size(), bsp.msrs.size());

    ASSERT_TRUE(vm->resume().ok());
    EXPECT_EQ(vm->state(), VmState::kRunning);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(vm->pause().ok());
    auto later = vm->save_vcpu_states();
    ASSERT_TRUE(later.ok());
    EXPECT_GE((*later)[0].regs.rip, 0x100000u);  // still running the guest's loop
    vm->shutdown();
    EXPECT_EQ(vm->state(), VmState::kStopped);
}

TEST_F(VmStateTest, RunPausedRefusesARunningVcpu) {
    auto vm = make_vm("exit=spin", 1);
    ASSERT_NE(vm, nullptr);
    ASSERT_TRUE(vm->start().ok());
    Status s = vm->vcpus()[0]->run_paused([](kvm::Vcpu&) { return Status{}; });
    EXPECT_FALSE(s.ok());
    vm->shutdown();
}

TEST_F(VmStateTest, CpuFeatureMasksReachKvm) {
    // cx16 and x2apic: bits every KVM honors. (A software-emulated KVM may force some leaf-1
    // bits such as xsave on regardless of KVM_SET_CPUID2; hardware KVM does not.)
    auto vm = make_vm("exit=spin", 2, "-x2apic,-cx16");
    ASSERT_NE(vm, nullptr);
    auto vcpus = vm->vcpus();
    for (size_t i = 0; i < vcpus.size(); ++i) {
        Status s = vcpus[i]->run_paused([&](kvm::Vcpu& vcpu) -> Status {
            VIREO_ASSIGN_OR_RETURN(auto cpuid, vcpu.get_cpuid());
            const auto* l1 = arch::x86::find_cpuid(cpuid, 1);
            EXPECT_NE(l1, nullptr);
            if (l1 == nullptr) return {};
            EXPECT_FALSE(l1->ecx & (1u << 21)) << "x2apic";
            EXPECT_FALSE(l1->ecx & (1u << 13)) << "cx16";
            EXPECT_EQ(l1->ebx >> 24, i) << "APIC ID";
            EXPECT_NE(arch::x86::find_cpuid(cpuid, arch::x86::kHypervisorLeaf), nullptr);
            return {};
        });
        ASSERT_TRUE(s.ok()) << s.error().message();
    }
}

TEST_F(VmStateTest, IoEventFdCatchesGuestWritesInTheKernel) {
    auto vm = make_vm("boottimer exit=poweroff", 1);
    ASSERT_NE(vm, nullptr);
    int handled = 0;
    auto io =
        vm->add_ioeventfd({.addr = 0xd0000000, .len = 1, .pio = false, .datamatch = 123}, [&] { ++handled; });
    ASSERT_TRUE(io.ok()) << io.error().message();
    ASSERT_TRUE(vm->start().ok());
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(vm->stop_state().reason, StopReason::kPowerOff);
    EXPECT_EQ((*io)->signals(), 1u);
    EXPECT_EQ(handled, 1);
    // KVM consumed the write: the boot-timer device on the MMIO bus never saw it.
    EXPECT_EQ(vm->boot_timer().markers(), 0u);
    vm->shutdown();
}

TEST_F(VmStateTest, MsiIrqfdRoutesAreAddedUpdatedAndRemoved) {
    auto vm = make_vm("exit=spin", 1);
    ASSERT_NE(vm, nullptr);
    size_t base = vm->irq_routing().table().size();
    {
        auto msi = vm->add_msi_irqfd(0xfee00000, 0x4041);
        ASSERT_TRUE(msi.ok()) << msi.error().message();
        EXPECT_GE((*msi)->gsi(), IrqRouting::kFirstMsiGsi);
        auto table = vm->irq_routing().table();
        ASSERT_EQ(table.size(), base + 1);
        EXPECT_EQ(table.back().type, static_cast<uint32_t>(KVM_IRQ_ROUTING_MSI));
        EXPECT_EQ(table.back().u.msi.data, 0x4041u);
        ASSERT_TRUE((*msi)->update(0xfee01000, 0x4042).ok());
        EXPECT_EQ(vm->irq_routing().table().back().u.msi.address_lo, 0xfee01000u);
        (*msi)->trigger();
        auto second = vm->add_msi_irqfd(0xfee00000, 0x4043);
        ASSERT_TRUE(second.ok());
        EXPECT_NE((*second)->gsi(), (*msi)->gsi());
    }
    EXPECT_EQ(vm->irq_routing().table().size(), base);
}

TEST_F(VmStateTest, PowerOffIsReportedOnce) {
    auto vm = make_vm("exit=poweroff", 1);
    ASSERT_NE(vm, nullptr);
    ASSERT_TRUE(vm->start().ok());
    ASSERT_TRUE(loop->run().ok());  // returns when the VM asks to stop
    VmStop stop = vm->stop_state();
    EXPECT_EQ(stop.reason, StopReason::kPowerOff) << stop.message;
    vm->request_stop({StopReason::kFatal, "late", 0});
    EXPECT_EQ(vm->stop_state().reason, StopReason::kPowerOff);
    vm->shutdown();
}

}  // namespace
}  // namespace vireo::vmm
