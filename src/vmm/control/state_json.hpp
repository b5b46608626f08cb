// The JSON form of vCPU and in-kernel device state in a snapshot (vmstate.json): registers by
// name, KVM's binary structures as base64 with their sizes checked on the way back.
#pragma once

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/vcpu_state.hpp"

namespace vireo::vmm {

nlohmann::json to_json(const VcpuSnapshot& state);
Result<VcpuSnapshot> vcpu_snapshot_from_json(const nlohmann::json& j);
nlohmann::json to_json(const VmKvmSnapshot& state);
Result<VmKvmSnapshot> vm_kvm_snapshot_from_json(const nlohmann::json& j);

}  // namespace vireo::vmm
