// Snapshot restore.
#include "vmm/control/restore.hpp"

#include <fmt/format.h>

#include "base/log.hpp"
#include "devices/snapshot.hpp"
#include "vmm/control/config_json.hpp"
#include "vmm/control/state_json.hpp"

namespace vireo::vmm {

Result<RestorePlan> load_snapshot(const std::string& dir, const kvm::System& kvm, const VmConfig& host_side) {
    RestorePlan plan;
    plan.dir = dir;
    VIREO_ASSIGN_OR_RETURN(auto here, snapshot::probe_host_cpu(kvm));
    VIREO_ASSIGN_OR_RETURN(plan.manifest, snapshot::load_manifest(dir, here));
    auto where = [&](std::string_view what) { return fmt::format("snapshot {}: {}", dir, what); };
    auto config = vm_config_from_json(plan.manifest.vm_config, host_side);
    if (!config.ok()) return std::move(config).error().context(where("manifest"));
    plan.config = std::move(config).value();
    if (plan.config.cpus != plan.manifest.vcpus)
        return make_error("{}: {} vCPUs in the manifest, {} in its VM config", dir, plan.manifest.vcpus,
                          plan.config.cpus);
    if (plan.config.memory_mib << 20 != plan.manifest.memory_size)
        return make_error("{}: memory file of {} bytes for a {} MiB VM", dir, plan.manifest.memory_size,
                          plan.config.memory_mib);
    if (auto s = validate(plan.config); !s.ok()) return std::move(s).error().context(where("VM config"));

    std::string state_path = dir + "/" + snapshot::kStateFile;
    VIREO_ASSIGN_OR_RETURN(auto state, snapshot::read_json_file(state_path));
    if (!state.is_object()) return make_error("{}: not a JSON object", state_path);
    auto vcpus = state.find("vcpus");
    if (vcpus == state.end() || !vcpus->is_array() || vcpus->size() != plan.manifest.vcpus)
        return make_error("{}: \"vcpus\" must list {} vCPUs", state_path, plan.manifest.vcpus);
    for (size_t i = 0; i < vcpus->size(); ++i) {
        auto v = vcpu_snapshot_from_json((*vcpus)[i]);
        if (!v.ok()) return std::move(v).error().context(fmt::format("{}: vCPU {}", state_path, i));
        plan.vcpus.push_back(std::move(v).value());
    }
    auto kvm_state = state.find("kvm");
    if (kvm_state == state.end()) return make_error("{}: \"kvm\" is missing", state_path);
    auto k = vm_kvm_snapshot_from_json(*kvm_state);
    if (!k.ok()) return std::move(k).error().context(state_path);
    plan.kvm = *k;
    auto devices = state.find("devices");
    if (devices == state.end() || !devices->is_object())
        return make_error("{}: \"devices\" is missing", state_path);
    plan.devices = *devices;
    return plan;
}

Result<std::unique_ptr<Vm>> restore_vm(const RestorePlan& plan, const Vm::Environment& env) {
    // The memory is not read here: the mapping faults pages in as the guest touches them.
    VIREO_ASSIGN_OR_RETURN(GuestRam ram, GuestRam::map_snapshot(plan.dir + "/" + snapshot::kMemoryFile,
                                                                plan.manifest.memory_size));
    const auto& slots = ram.slots();
    bool same_layout = slots.size() == plan.manifest.regions.size();
    for (size_t i = 0; same_layout && i < slots.size(); ++i) {
        const auto& r = plan.manifest.regions[i];
        same_layout =
            slots[i].gpa == r.gpa && slots[i].size == r.size && slots[i].file_offset == r.file_offset;
    }
    if (!same_layout)
        return make_error("snapshot {}: its RAM layout differs from the one this vireo-vmm builds for {} MiB",
                          plan.dir, plan.config.memory_mib);

    VIREO_ASSIGN_OR_RETURN(auto vm, Vm::create_restored(plan.config, env, std::move(ram)));
    // Device models before the vCPUs run; unknown or missing devices are refused rather than
    // left at their power-on state.
    auto devices = vm->stateful_devices();
    for (const auto& [name, value] : plan.devices.items()) {
        bool known = false;
        for (const auto& d : devices)
            known = known || d.first == name;
        if (!known) return make_error("snapshot {}: state for an unknown device \"{}\"", plan.dir, name);
    }
    VIREO_TRY(vm->load_state(plan.vcpus, plan.kvm));
    for (auto [name, device] : devices) {
        auto it = plan.devices.find(name);
        if (it == plan.devices.end())
            return make_error("snapshot {}: no state for device \"{}\"", plan.dir, name);
        if (auto s = device->restore_state(*it); !s.ok())
            return std::move(s).error().context(fmt::format("snapshot {}: device {}", plan.dir, name));
    }
    log::get("vmm").info("restored from {} (taken {} by vireo {})", plan.dir, plan.manifest.created,
                         plan.manifest.vireo_version);
    return vm;
}

}  // namespace vireo::vmm
