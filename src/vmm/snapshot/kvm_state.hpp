// The KVM side of a snapshot: every vCPU's architectural state and the in-kernel devices
// (PIC, IOAPIC, PIT, kvmclock), read and written through the KVM ioctls, and their JSON form.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "kvm/kvm.hpp"

namespace vireo::vmm::snapshot {

struct VcpuState {
    uint32_t id = 0;
    kvm_mp_state mp_state{};
    kvm_regs regs{};
    kvm_sregs sregs{};
    std::vector<uint8_t> xsave;    // KVM_GET_XSAVE / KVM_GET_XSAVE2 area; empty without XSAVE
    std::optional<kvm_fpu> fpu;    // only on hosts without XSAVE
    std::optional<kvm_xcrs> xcrs;  // only on hosts with XCRs
    kvm_debugregs debugregs{};
    kvm_lapic_state lapic{};
    std::vector<kvm_msr_entry> msrs;
    kvm_vcpu_events events{};
    std::vector<kvm_cpuid_entry2> cpuid;  // what the guest saw, restored as is
    uint32_t tsc_khz = 0;                 // 0 when the host cannot tell
};

struct VmKvmState {
    kvm_irqchip pic_master{};
    kvm_irqchip pic_slave{};
    kvm_irqchip ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};
};

// How one VM's vCPUs are saved: the XSAVE area size and the MSRs worth saving. Built once per
// VM (it probes the host).
struct VcpuSaveSpec {
    size_t xsave_size = 0;  // 0: no XSAVE, use KVM_GET_FPU
    bool xcrs = false;
    std::vector<uint32_t> msrs;
};

// Probes the host: KVM_CAP_XSAVE2 / KVM_CAP_XSAVE / KVM_CAP_XCRS, and KVM_GET_MSR_INDEX_LIST
// filtered to the MSRs `probe` (a vCPU of the VM, already configured) reads back, since the
// list names MSRs whose CPUID feature the guest may lack.
Result<VcpuSaveSpec> make_save_spec(const kvm::System& system, kvm::Vm& vm, kvm::Vcpu& probe);

// KVM_RUN with immediate_exit set: finishes the instruction the last I/O or MMIO exit left
// half-done (KVM completes it on the next entry) and returns at once. A vCPU must go through
// this before its state is read, or a restored guest would repeat that instruction.
Status complete_pending_io(kvm::Vcpu& vcpu);

// The vCPU must not be running (paused, past complete_pending_io). Order matters (KVM API
// docs): KVM_GET_MP_STATE first, as it may fold pending LAPIC events into the state; the vCPU
// events last.
Result<VcpuState> save_vcpu(kvm::Vcpu& vcpu, const VcpuSaveSpec& spec);
// Into a vCPU that has never run: CPUID first, then registers, FPU, LAPIC before MSRs (the
// TSC deadline MSR depends on the LAPIC mode), events last.
Status restore_vcpu(kvm::Vcpu& vcpu, const VcpuState& state);

Result<VmKvmState> save_vm(kvm::Vm& vm);
// Into a VM with an in-kernel irqchip and PIT created and no vCPU run yet. The kvmclock
// continues from the saved value: the guest sees no time pass while it was snapshotted.
Status restore_vm(kvm::Vm& vm, const VmKvmState& state);

nlohmann::json to_json(const VcpuState& state);
Result<VcpuState> vcpu_state_from_json(const nlohmann::json& j);
nlohmann::json to_json(const VmKvmState& state);
Result<VmKvmState> vm_state_from_json(const nlohmann::json& j);

}  // namespace vireo::vmm::snapshot
