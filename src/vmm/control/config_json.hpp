// A VmConfig as JSON: what GET /api/v1/vm reports and what a snapshot manifest records to build
// the same machine again.
#pragma once

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/vm_config.hpp"

namespace vireo::vmm {

nlohmann::json to_json(const VmConfig& config);
// Reads the machine-defining fields (kernel, initrd, command line, CPUs, memory, huge pages,
// CPU features, virtio disks, network cards, console and entropy device); the host-side ones
// (serial, API socket, --on-reboot, log level, where the virtio console's output goes) keep
// their values from `base`. `base` must not name devices of its own.
Result<VmConfig> vm_config_from_json(const nlohmann::json& j, VmConfig base = {});

}  // namespace vireo::vmm
