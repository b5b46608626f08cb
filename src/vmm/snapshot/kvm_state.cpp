// Saving and restoring vCPU and in-kernel device state through KVM, and its JSON encoding.
#include "vmm/snapshot/kvm_state.hpp"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "vmm/snapshot/base64.hpp"

namespace vireo::vmm::snapshot {
namespace {

template <typename Arg>
Status ioctl_status(int fd, unsigned long request, Arg arg, std::string_view what) {
    int r;
    do {
        r = ::ioctl(fd, request, arg);
    } while (r < 0 && errno == EINTR);
    if (r < 0) return os_error(fmt::format("kvm: {}", what));
    return {};
}

template <typename T>
std::string blob(const T& value) {
    return base64_encode({reinterpret_cast<const uint8_t*>(&value), sizeof value});
}

Result<std::vector<uint8_t>> blob_bytes(const nlohmann::json& j, std::string_view key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return make_error("\"{}\" is missing or not a string", key);
    VIREO_ASSIGN_OR_RETURN(auto bytes, base64_decode(it->get_ref<const std::string&>()));
    return bytes;
}

template <typename T>
Status read_blob(const nlohmann::json& j, std::string_view key, T* out) {
    VIREO_ASSIGN_OR_RETURN(auto bytes, blob_bytes(j, key));
    if (bytes.size() != sizeof(T))
        return make_error("\"{}\" holds {} bytes, expected {}", key, bytes.size(), sizeof(T));
    std::memcpy(out, bytes.data(), sizeof(T));
    return {};
}

template <typename T>
Status read_number(const nlohmann::json& j, std::string_view key, T* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned())
        return make_error("\"{}\" is missing or not a number", key);
    uint64_t v = it->get<uint64_t>();
    if (v > std::numeric_limits<T>::max()) return make_error("\"{}\" is out of range", key);
    *out = static_cast<T>(v);
    return {};
}

// kvm_regs by name, so a snapshot can be read by people.
#define VIREO_KVM_REGS(X)                                                                                  \
    X(rax)                                                                                                 \
    X(rbx)                                                                                                 \
    X(rcx) X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) \
        X(rflags)

nlohmann::json regs_json(const kvm_regs& r) {
    nlohmann::json j;
#define X(name) j[#name] = r.name;
    VIREO_KVM_REGS(X)
#undef X
    return j;
}

Status regs_from_json(const nlohmann::json& j, kvm_regs* r) {
    if (!j.is_object()) return make_error("\"regs\" is not an object");
#define X(name) VIREO_TRY_CTX(read_number(j, #name, &r->name), "regs");
    VIREO_KVM_REGS(X)
#undef X
    return {};
}
#undef VIREO_KVM_REGS

Result<std::vector<kvm_cpuid_entry2>> get_cpuid(kvm::Vcpu& vcpu) {
    for (uint32_t n = 64; n <= 4096; n *= 2) {
        std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
        auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
        cpuid->nent = n;
        if (::ioctl(vcpu.fd(), KVM_GET_CPUID2, cpuid) == 0)
            return std::vector<kvm_cpuid_entry2>(cpuid->entries, cpuid->entries + cpuid->nent);
        if (errno != E2BIG) return os_error("kvm: KVM_GET_CPUID2");
    }
    return make_error("kvm: KVM_GET_CPUID2: too many entries");
}

}  // namespace

Result<VcpuSaveSpec> make_save_spec(const kvm::System& system, kvm::Vm& vm, kvm::Vcpu& probe) {
    VcpuSaveSpec spec;
    int xsave2 = vm.check_extension(KVM_CAP_XSAVE2);
    if (xsave2 > 0)
        spec.xsave_size = std::max<size_t>(static_cast<size_t>(xsave2), sizeof(kvm_xsave));
    else if (system.check_extension(KVM_CAP_XSAVE) > 0)
        spec.xsave_size = sizeof(kvm_xsave);
    spec.xcrs = system.check_extension(KVM_CAP_XCRS) > 0;
    VIREO_ASSIGN_OR_RETURN(auto candidates, system.msr_index_list());
    // KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it read: drop
    // that one and go on from there.
    size_t start = 0;
    while (start < candidates.size()) {
        std::vector<uint32_t> rest(candidates.begin() + static_cast<ptrdiff_t>(start), candidates.end());
        VIREO_ASSIGN_OR_RETURN(auto read, probe.get_msrs(rest));
        for (const auto& e : read)
            spec.msrs.push_back(e.index);
        start += read.size() + 1;
    }
    return spec;
}

Status complete_pending_io(kvm::Vcpu& vcpu) {
    kvm_run* run = vcpu.run_state();
    run->immediate_exit = 1;
    int r;
    do {
        r = ::ioctl(vcpu.fd(), KVM_RUN, 0);
    } while (r == 0);  // cannot happen with immediate_exit, but never trust a guest exit here
    int err = errno;
    run->immediate_exit = 0;
    if (err != EINTR && err != EAGAIN)
        return os_error(fmt::format("kvm: KVM_RUN (immediate exit) on vCPU {}", vcpu.id()), err);
    return {};
}

Result<VcpuState> save_vcpu(kvm::Vcpu& vcpu, const VcpuSaveSpec& spec) {
    VcpuState s;
    s.id = vcpu.id();
    auto where = [&](std::string_view what) { return fmt::format("vCPU {}: {}", vcpu.id(), what); };
    VIREO_ASSIGN_OR_RETURN(s.mp_state, vcpu.get_mp_state());
    VIREO_ASSIGN_OR_RETURN(s.regs, vcpu.get_regs());
    VIREO_ASSIGN_OR_RETURN(s.sregs, vcpu.get_sregs());
    if (spec.xsave_size > 0) {
        s.xsave.resize(spec.xsave_size);
        unsigned long req = spec.xsave_size > sizeof(kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE;
        VIREO_TRY(ioctl_status(vcpu.fd(), req, s.xsave.data(), where("KVM_GET_XSAVE")));
    } else {
        VIREO_ASSIGN_OR_RETURN(s.fpu, vcpu.get_fpu());
    }
    if (spec.xcrs) {
        kvm_xcrs xcrs{};
        VIREO_TRY(ioctl_status(vcpu.fd(), KVM_GET_XCRS, &xcrs, where("KVM_GET_XCRS")));
        s.xcrs = xcrs;
    }
    VIREO_TRY(ioctl_status(vcpu.fd(), KVM_GET_DEBUGREGS, &s.debugregs, where("KVM_GET_DEBUGREGS")));
    VIREO_ASSIGN_OR_RETURN(s.lapic, vcpu.get_lapic());
    VIREO_ASSIGN_OR_RETURN(s.cpuid, get_cpuid(vcpu));
    VIREO_ASSIGN_OR_RETURN(s.msrs, vcpu.get_msrs(spec.msrs));
    if (s.msrs.size() != spec.msrs.size())
        return make_error("vCPU {}: KVM_GET_MSRS read {} of {} MSRs (MSR 0x{:x} failed)", vcpu.id(),
                          s.msrs.size(), spec.msrs.size(), spec.msrs[s.msrs.size()]);
    int khz = ::ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
    s.tsc_khz = khz > 0 ? static_cast<uint32_t>(khz) : 0;
    VIREO_TRY(ioctl_status(vcpu.fd(), KVM_GET_VCPU_EVENTS, &s.events, where("KVM_GET_VCPU_EVENTS")));
    return s;
}

Status restore_vcpu(kvm::Vcpu& vcpu, const VcpuState& s) {
    auto where = [&](std::string_view what) { return fmt::format("vCPU {}: {}", vcpu.id(), what); };
    VIREO_TRY_CTX(vcpu.set_cpuid(s.cpuid), where("CPUID"));
    VIREO_TRY_CTX(vcpu.set_mp_state(s.mp_state), where("MP state"));
    VIREO_TRY_CTX(vcpu.set_regs(s.regs), where("registers"));
    VIREO_TRY_CTX(vcpu.set_sregs(s.sregs), where("special registers"));
    if (!s.xsave.empty()) {
        VIREO_TRY(ioctl_status(vcpu.fd(), KVM_SET_XSAVE, s.xsave.data(), where("KVM_SET_XSAVE")));
    } else if (s.fpu) {
        VIREO_TRY_CTX(vcpu.set_fpu(*s.fpu), where("FPU"));
    }
    if (s.xcrs) VIREO_TRY(ioctl_status(vcpu.fd(), KVM_SET_XCRS, &*s.xcrs, where("KVM_SET_XCRS")));
    VIREO_TRY(ioctl_status(vcpu.fd(), KVM_SET_DEBUGREGS, &s.debugregs, where("KVM_SET_DEBUGREGS")));
    VIREO_TRY_CTX(vcpu.set_lapic(s.lapic), where("LAPIC"));
    VIREO_TRY_CTX(vcpu.set_msrs(s.msrs), where("MSRs"));
    VIREO_TRY(ioctl_status(vcpu.fd(), KVM_SET_VCPU_EVENTS, &s.events, where("KVM_SET_VCPU_EVENTS")));
    return {};
}

Result<VmKvmState> save_vm(kvm::Vm& vm) {
    VmKvmState s;
    s.pic_master.chip_id = KVM_IRQCHIP_PIC_MASTER;
    s.pic_slave.chip_id = KVM_IRQCHIP_PIC_SLAVE;
    s.ioapic.chip_id = KVM_IRQCHIP_IOAPIC;
    for (kvm_irqchip* chip : {&s.pic_master, &s.pic_slave, &s.ioapic})
        VIREO_TRY(
            ioctl_status(vm.fd(), KVM_GET_IRQCHIP, chip, fmt::format("KVM_GET_IRQCHIP {}", chip->chip_id)));
    VIREO_TRY(ioctl_status(vm.fd(), KVM_GET_PIT2, &s.pit, "KVM_GET_PIT2"));
    VIREO_TRY(ioctl_status(vm.fd(), KVM_GET_CLOCK, &s.clock, "KVM_GET_CLOCK"));
    return s;
}

Status restore_vm(kvm::Vm& vm, const VmKvmState& s) {
    for (const kvm_irqchip* chip : {&s.pic_master, &s.pic_slave, &s.ioapic})
        VIREO_TRY(
            ioctl_status(vm.fd(), KVM_SET_IRQCHIP, chip, fmt::format("KVM_SET_IRQCHIP {}", chip->chip_id)));
    VIREO_TRY(ioctl_status(vm.fd(), KVM_SET_PIT2, &s.pit, "KVM_SET_PIT2"));
    // Only the clock value: with KVM_CLOCK_REALTIME the kernel would add the time that passed
    // since the snapshot, and the guest would see a jump.
    kvm_clock_data clock{};
    clock.clock = s.clock.clock;
    VIREO_TRY(ioctl_status(vm.fd(), KVM_SET_CLOCK, &clock, "KVM_SET_CLOCK"));
    return {};
}

nlohmann::json to_json(const VcpuState& s) {
    nlohmann::json msrs = nlohmann::json::array();
    for (const auto& m : s.msrs)
        msrs.push_back({{"index", m.index}, {"value", m.data}});
    nlohmann::json j = {
        {"id", s.id},
        {"mp_state", s.mp_state.mp_state},
        {"regs", regs_json(s.regs)},
        {"sregs", blob(s.sregs)},
        {"debugregs", blob(s.debugregs)},
        {"lapic", blob(s.lapic)},
        {"msrs", msrs},
        {"events", blob(s.events)},
        {"cpuid", base64_encode({reinterpret_cast<const uint8_t*>(s.cpuid.data()),
                                 s.cpuid.size() * sizeof(kvm_cpuid_entry2)})},
        {"tsc_khz", s.tsc_khz},
    };
    if (!s.xsave.empty()) j["xsave"] = base64_encode(s.xsave);
    if (s.fpu) j["fpu"] = blob(*s.fpu);
    if (s.xcrs) j["xcrs"] = blob(*s.xcrs);
    return j;
}

Result<VcpuState> vcpu_state_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("vCPU state is not an object");
    VcpuState s;
    VIREO_TRY(read_number(j, "id", &s.id));
    auto ctx = fmt::format("vCPU {}", s.id);
    VIREO_TRY_CTX(read_number(j, "mp_state", &s.mp_state.mp_state), ctx);
    auto regs = j.find("regs");
    if (regs == j.end()) return make_error("{}: \"regs\" is missing", ctx);
    VIREO_TRY_CTX(regs_from_json(*regs, &s.regs), ctx);
    VIREO_TRY_CTX(read_blob(j, "sregs", &s.sregs), ctx);
    VIREO_TRY_CTX(read_blob(j, "debugregs", &s.debugregs), ctx);
    VIREO_TRY_CTX(read_blob(j, "lapic", &s.lapic), ctx);
    VIREO_TRY_CTX(read_blob(j, "events", &s.events), ctx);
    VIREO_TRY_CTX(read_number(j, "tsc_khz", &s.tsc_khz), ctx);
    if (j.contains("xsave")) {
        VIREO_ASSIGN_OR_RETURN(s.xsave, blob_bytes(j, "xsave"));
        if (s.xsave.size() < sizeof(kvm_xsave))
            return make_error("{}: \"xsave\" holds {} bytes, at least {} expected", ctx, s.xsave.size(),
                              sizeof(kvm_xsave));
    } else if (j.contains("fpu")) {
        kvm_fpu fpu{};
        VIREO_TRY_CTX(read_blob(j, "fpu", &fpu), ctx);
        s.fpu = fpu;
    } else {
        return make_error("{}: neither \"xsave\" nor \"fpu\" is present", ctx);
    }
    if (j.contains("xcrs")) {
        kvm_xcrs xcrs{};
        VIREO_TRY_CTX(read_blob(j, "xcrs", &xcrs), ctx);
        s.xcrs = xcrs;
    }
    VIREO_ASSIGN_OR_RETURN(auto cpuid, blob_bytes(j, "cpuid"));
    if (cpuid.empty() || cpuid.size() % sizeof(kvm_cpuid_entry2) != 0)
        return make_error("{}: \"cpuid\" holds {} bytes, not whole entries", ctx, cpuid.size());
    s.cpuid.resize(cpuid.size() / sizeof(kvm_cpuid_entry2));
    std::memcpy(s.cpuid.data(), cpuid.data(), cpuid.size());
    auto msrs = j.find("msrs");
    if (msrs == j.end() || !msrs->is_array())
        return make_error("{}: \"msrs\" is missing or not an array", ctx);
    for (const auto& m : *msrs) {
        kvm_msr_entry e{};
        if (!m.is_object()) return make_error("{}: an MSR entry is not an object", ctx);
        VIREO_TRY_CTX(read_number(m, "index", &e.index), ctx);
        VIREO_TRY_CTX(read_number(m, "value", &e.data), ctx);
        s.msrs.push_back(e);
    }
    return s;
}

nlohmann::json to_json(const VmKvmState& s) {
    return {
        {"pic_master", blob(s.pic_master)}, {"pic_slave", blob(s.pic_slave)},
        {"ioapic", blob(s.ioapic)},         {"pit", blob(s.pit)},
        {"kvmclock", s.clock.clock},
    };
}

Result<VmKvmState> vm_state_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("KVM VM state is not an object");
    VmKvmState s;
    VIREO_TRY(read_blob(j, "pic_master", &s.pic_master));
    VIREO_TRY(read_blob(j, "pic_slave", &s.pic_slave));
    VIREO_TRY(read_blob(j, "ioapic", &s.ioapic));
    if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return make_error("irqchip state names the wrong chips");
    VIREO_TRY(read_blob(j, "pit", &s.pit));
    VIREO_TRY(read_number(j, "kvmclock", &s.clock.clock));
    return s;
}

}  // namespace vireo::vmm::snapshot
