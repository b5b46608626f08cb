// vCPU and in-kernel device state save/restore.
#include "vmm/vcpu_state.hpp"

namespace vireo::vmm {

Result<std::vector<uint32_t>> saveable_msrs(const kvm::System& system, kvm::Vcpu& vcpu) {
    VIREO_ASSIGN_OR_RETURN(std::vector<uint32_t> all, system.msr_index_list());
    std::vector<uint32_t> ok;
    // KVM_GET_MSRS stops at the first MSR it cannot read; skip it and go on.
    size_t pos = 0;
    while (pos < all.size()) {
        std::vector<uint32_t> rest(all.begin() + static_cast<std::ptrdiff_t>(pos), all.end());
        VIREO_ASSIGN_OR_RETURN(auto read, vcpu.get_msrs(rest));
        for (const auto& e : read)
            ok.push_back(e.index);
        pos += read.size() + 1;  // the one after those read failed
    }
    return ok;
}

Result<VcpuSnapshot> save_vcpu_state(kvm::Vcpu& vcpu, const std::vector<uint32_t>& msr_indices,
                                     size_t xsave_size) {
    VcpuSnapshot s;
    VIREO_ASSIGN_OR_RETURN(s.cpuid, vcpu.get_cpuid());
    VIREO_ASSIGN_OR_RETURN(s.mp_state, vcpu.get_mp_state());
    VIREO_ASSIGN_OR_RETURN(s.regs, vcpu.get_regs());
    VIREO_ASSIGN_OR_RETURN(s.sregs, vcpu.get_sregs());
    VIREO_ASSIGN_OR_RETURN(s.xsave, vcpu.get_xsave(xsave_size));
    VIREO_ASSIGN_OR_RETURN(s.xcrs, vcpu.get_xcrs());
    VIREO_ASSIGN_OR_RETURN(s.debugregs, vcpu.get_debugregs());
    VIREO_ASSIGN_OR_RETURN(s.lapic, vcpu.get_lapic());
    VIREO_ASSIGN_OR_RETURN(s.tsc_khz, vcpu.get_tsc_khz());
    VIREO_ASSIGN_OR_RETURN(s.msrs, vcpu.get_msrs(msr_indices));
    if (s.msrs.size() != msr_indices.size()) {
        return make_error("vCPU {}: could read only {} of {} MSRs (MSR 0x{:x} failed)", vcpu.id(),
                          s.msrs.size(), msr_indices.size(), msr_indices[s.msrs.size()]);
    }
    // Events last: reading MSRs and the LAPIC does not change them, but KVM documents this order.
    VIREO_ASSIGN_OR_RETURN(s.events, vcpu.get_vcpu_events());
    return s;
}

Status restore_vcpu_state(kvm::Vcpu& vcpu, const VcpuSnapshot& s) {
    VIREO_TRY(vcpu.set_cpuid(s.cpuid));
    if (s.tsc_khz != 0) {
        // A different host TSC rate is scaled by KVM where the CPU supports it.
        if (auto r = vcpu.set_tsc_khz(s.tsc_khz); !r.ok())
            return std::move(r).error().context("restoring TSC rate");
    }
    VIREO_TRY(vcpu.set_mp_state(s.mp_state));
    VIREO_TRY(vcpu.set_regs(s.regs));
    VIREO_TRY(vcpu.set_sregs(s.sregs));
    VIREO_TRY(vcpu.set_xsave(s.xsave));
    VIREO_TRY(vcpu.set_xcrs(s.xcrs));
    VIREO_TRY(vcpu.set_debugregs(s.debugregs));
    VIREO_TRY(vcpu.set_lapic(s.lapic));
    VIREO_TRY(vcpu.set_msrs(s.msrs));
    VIREO_TRY(vcpu.set_vcpu_events(s.events));
    return {};
}

Result<VmKvmSnapshot> save_vm_kvm_state(const kvm::Vm& vm) {
    VmKvmSnapshot s;
    VIREO_ASSIGN_OR_RETURN(s.pic_master, vm.get_irqchip(KVM_IRQCHIP_PIC_MASTER));
    VIREO_ASSIGN_OR_RETURN(s.pic_slave, vm.get_irqchip(KVM_IRQCHIP_PIC_SLAVE));
    VIREO_ASSIGN_OR_RETURN(s.ioapic, vm.get_irqchip(KVM_IRQCHIP_IOAPIC));
    VIREO_ASSIGN_OR_RETURN(s.pit, vm.get_pit2());
    VIREO_ASSIGN_OR_RETURN(s.clock, vm.get_clock());
    return s;
}

Status restore_vm_kvm_state(kvm::Vm& vm, const VmKvmSnapshot& s) {
    VIREO_TRY(vm.set_irqchip(s.pic_master));
    VIREO_TRY(vm.set_irqchip(s.pic_slave));
    VIREO_TRY(vm.set_irqchip(s.ioapic));
    VIREO_TRY(vm.set_pit2(s.pit));
    VIREO_TRY(vm.set_clock(s.clock));
    return {};
}

}  // namespace vireo::vmm
