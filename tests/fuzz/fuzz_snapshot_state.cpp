// Fuzz target: the parsers of a snapshot directory's JSON (manifest, vCPU and KVM device
// state, VM config) and base64 never crash on arbitrary documents, and what they accept
// encodes back to something they accept again.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "vmm/control/config_json.hpp"
#include "vmm/control/state_json.hpp"
#include "vmm/snapshot/base64.hpp"
#include "vmm/snapshot/manifest.hpp"

using namespace vireo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto b = vmm::snapshot::base64_decode(text); b.ok()) {
        if (vmm::snapshot::base64_encode(*b) != text) std::abort();
    }
    auto j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return 0;
    if (auto m = vmm::snapshot::manifest_from_json(j); m.ok()) {
        if (!vmm::snapshot::manifest_from_json(vmm::snapshot::to_json(*m)).ok()) std::abort();
        (void)vmm::snapshot::cpu_differences(m->cpu, m->cpu);
    }
    (void)vmm::vm_config_from_json(j);
    if (j.is_object() && j.contains("vcpus") && j["vcpus"].is_array()) {
        for (const auto& v : j["vcpus"]) {
            if (auto s = vmm::vcpu_snapshot_from_json(v); s.ok()) {
                if (!vmm::vcpu_snapshot_from_json(vmm::to_json(*s)).ok()) std::abort();
            }
        }
    }
    if (j.is_object() && j.contains("kvm")) {
        if (auto s = vmm::vm_kvm_snapshot_from_json(j["kvm"]); s.ok()) {
            if (!vmm::vm_kvm_snapshot_from_json(vmm::to_json(*s)).ok()) std::abort();
        }
    }
    return 0;
}
