// vCPU and KVM device state <-> JSON.
#include "vmm/control/state_json.hpp"

#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "vmm/snapshot/base64.hpp"

namespace vireo::vmm {
namespace {

using snapshot::base64_decode;
using snapshot::base64_encode;

template <typename T>
std::string blob(const T& value) {
    return base64_encode({reinterpret_cast<const uint8_t*>(&value), sizeof value});
}

Result<std::vector<uint8_t>> blob_bytes(const nlohmann::json& j, std::string_view key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return make_error("\"{}\" is missing or not a string", key);
    auto bytes = base64_decode(it->get_ref<const std::string&>());
    if (!bytes.ok()) return std::move(bytes).error().context(fmt::format("\"{}\"", key));
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
#define VIREO_KVM_REGS(X) \
    X(rax)                \
    X(rbx)                \
    X(rcx)                \
    X(rdx) X(rsi) X(rdi) X(rsp) X(rbp) X(r8) X(r9) X(r10) X(r11) X(r12) X(r13) X(r14) X(r15) X(rip) X(rflags)

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

}  // namespace

nlohmann::json to_json(const VcpuSnapshot& s) {
    nlohmann::json msrs = nlohmann::json::array();
    for (const auto& m : s.msrs)
        msrs.push_back({{"index", m.index}, {"value", m.data}});
    return {
        {"mp_state", s.mp_state.mp_state},
        {"regs", regs_json(s.regs)},
        {"sregs", blob(s.sregs)},
        {"xsave", base64_encode(s.xsave)},
        {"xcrs", blob(s.xcrs)},
        {"debugregs", blob(s.debugregs)},
        {"lapic", blob(s.lapic)},
        {"msrs", msrs},
        {"events", blob(s.events)},
        {"cpuid", base64_encode({reinterpret_cast<const uint8_t*>(s.cpuid.data()),
                                 s.cpuid.size() * sizeof(kvm_cpuid_entry2)})},
        {"tsc_khz", s.tsc_khz},
    };
}

Result<VcpuSnapshot> vcpu_snapshot_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("vCPU state is not an object");
    VcpuSnapshot s;
    VIREO_TRY(read_number(j, "mp_state", &s.mp_state.mp_state));
    auto regs = j.find("regs");
    if (regs == j.end()) return make_error("\"regs\" is missing");
    VIREO_TRY(regs_from_json(*regs, &s.regs));
    VIREO_TRY(read_blob(j, "sregs", &s.sregs));
    VIREO_ASSIGN_OR_RETURN(s.xsave, blob_bytes(j, "xsave"));
    if (s.xsave.size() < 4096 || s.xsave.size() % 4 != 0)
        return make_error("\"xsave\" holds {} bytes, not an XSAVE area (at least 4096)", s.xsave.size());
    VIREO_TRY(read_blob(j, "xcrs", &s.xcrs));
    VIREO_TRY(read_blob(j, "debugregs", &s.debugregs));
    VIREO_TRY(read_blob(j, "lapic", &s.lapic));
    VIREO_TRY(read_blob(j, "events", &s.events));
    VIREO_TRY(read_number(j, "tsc_khz", &s.tsc_khz));
    VIREO_ASSIGN_OR_RETURN(auto cpuid, blob_bytes(j, "cpuid"));
    if (cpuid.empty() || cpuid.size() % sizeof(kvm_cpuid_entry2) != 0)
        return make_error("\"cpuid\" holds {} bytes, not whole entries", cpuid.size());
    s.cpuid.resize(cpuid.size() / sizeof(kvm_cpuid_entry2));
    std::memcpy(s.cpuid.data(), cpuid.data(), cpuid.size());
    auto msrs = j.find("msrs");
    if (msrs == j.end() || !msrs->is_array()) return make_error("\"msrs\" is missing or not an array");
    for (const auto& m : *msrs) {
        kvm_msr_entry e{};
        if (!m.is_object()) return make_error("an MSR entry is not an object");
        VIREO_TRY_CTX(read_number(m, "index", &e.index), "msrs");
        VIREO_TRY_CTX(read_number(m, "value", &e.data), "msrs");
        s.msrs.push_back(e);
    }
    return s;
}

nlohmann::json to_json(const VmKvmSnapshot& s) {
    return {
        {"pic_master", blob(s.pic_master)}, {"pic_slave", blob(s.pic_slave)},
        {"ioapic", blob(s.ioapic)},         {"pit", blob(s.pit)},
        {"kvmclock", blob(s.clock)},
    };
}

Result<VmKvmSnapshot> vm_kvm_snapshot_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("KVM VM state is not an object");
    VmKvmSnapshot s;
    VIREO_TRY(read_blob(j, "pic_master", &s.pic_master));
    VIREO_TRY(read_blob(j, "pic_slave", &s.pic_slave));
    VIREO_TRY(read_blob(j, "ioapic", &s.ioapic));
    if (s.pic_master.chip_id != KVM_IRQCHIP_PIC_MASTER || s.pic_slave.chip_id != KVM_IRQCHIP_PIC_SLAVE ||
        s.ioapic.chip_id != KVM_IRQCHIP_IOAPIC)
        return make_error("irqchip state names the wrong chips");
    VIREO_TRY(read_blob(j, "pit", &s.pit));
    VIREO_TRY(read_blob(j, "kvmclock", &s.clock));
    return s;
}

}  // namespace vireo::vmm
