// The VM command-line options, shared by `vireo-vmm` and `vireo run` so both accept exactly the
// same ones: --kernel, --initrd, --cmdline, --cpus, --memory, --serial, --on-reboot,
// --cpu-features, --hugepages, --log-level, --disk, --net, --console, --rng, --api-socket,
// --restore.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "base/result.hpp"
#include "vmm/vm_config.hpp"

namespace vireo::vmm {

// What the options parse into before it becomes a VmConfig.
struct VmOptions {
    VmConfig config;
    std::string memory = "256";
    std::string serial = "stdio";
    std::string on_reboot = "exit";
    std::vector<std::string> disks;
    std::vector<std::string> nets;
    std::string console = "none";
    bool list_cpu_features = false;
    std::string restore;  // --restore DIR: start from a snapshot instead of a kernel
};

void add_vm_options(CLI::App& app, VmOptions& options);

// Turns parsed options into a checked VmConfig; errors name the option.
Result<VmConfig> finish_options(const VmOptions& options);

// The command line that gives `config` to vireo-vmm (what `vireo run` passes on).
std::vector<std::string> to_args(const VmConfig& config);

// "--memory 512" is MiB; "2G", "512M" are sizes (whole MiB).
Result<uint64_t> parse_memory_mib(std::string_view text);

// The --list-cpu-features text.
std::string cpu_feature_list();

}  // namespace vireo::vmm
