// The complete state of a vCPU and of KVM's in-kernel devices, read from and written back to
// KVM: what a snapshot holds and a restore needs. The vCPU must be paused (VcpuRunner::pause,
// then run_paused) so no I/O instruction is half done.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "base/result.hpp"
#include "kvm/kvm.hpp"

namespace vireo::vmm {

struct VcpuSnapshot {
    std::vector<kvm_cpuid_entry2> cpuid;  // as KVM holds it (KVM_GET_CPUID2)
    kvm_mp_state mp_state{};
    kvm_regs regs{};
    kvm_sregs sregs{};
    std::vector<uint8_t> xsave;  // FPU/SSE/AVX... state, opaque
    kvm_xcrs xcrs{};
    kvm_debugregs debugregs{};
    kvm_lapic_state lapic{};
    std::vector<kvm_msr_entry> msrs;
    kvm_vcpu_events events{};
    uint32_t tsc_khz = 0;
};

// The MSRs worth saving: KVM's save/restore list, minus the ones this host cannot read.
Result<std::vector<uint32_t>> saveable_msrs(const kvm::System& system, kvm::Vcpu& probe_vcpu);

Result<VcpuSnapshot> save_vcpu_state(kvm::Vcpu& vcpu, const std::vector<uint32_t>& msr_indices,
                                     size_t xsave_size);
// Writes everything back in the order KVM needs (CPUID first, events last). KVM accepts a
// CPUID table on a vCPU that has run only if it is the one it holds, so restores go to fresh
// vCPUs (or the same vCPU with its own table).
Status restore_vcpu_state(kvm::Vcpu& vcpu, const VcpuSnapshot& state);

struct VmKvmSnapshot {
    kvm_irqchip pic_master{};
    kvm_irqchip pic_slave{};
    kvm_irqchip ioapic{};
    kvm_pit_state2 pit{};
    kvm_clock_data clock{};
};

Result<VmKvmSnapshot> save_vm_kvm_state(const kvm::Vm& vm);
Status restore_vm_kvm_state(kvm::Vm& vm, const VmKvmSnapshot& state);

}  // namespace vireo::vmm
