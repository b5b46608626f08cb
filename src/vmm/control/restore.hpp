// Restoring a VM from a snapshot directory: everything is read and checked first (format
// version, host CPU, state files), then the VM is built around the memory file mapped
// copy-on-write and every piece of state is loaded; Vm::start() lets it continue.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "kvm/kvm.hpp"
#include "vmm/snapshot/manifest.hpp"
#include "vmm/vm.hpp"

namespace vireo::vmm {

struct RestorePlan {
    std::string dir;
    snapshot::Manifest manifest;
    VmConfig config;
    std::vector<VcpuSnapshot> vcpus;
    VmKvmSnapshot kvm;
    nlohmann::json devices;
};

// `host_side` supplies what the snapshot does not decide: serial, API socket, log level.
Result<RestorePlan> load_snapshot(const std::string& dir, const kvm::System& kvm, const VmConfig& host_side);

Result<std::unique_ptr<Vm>> restore_vm(const RestorePlan& plan, const Vm::Environment& env);

}  // namespace vireo::vmm
