// VmConfig: everything that defines a VM, filled from the command line (vm_options.hpp) or, later,
// from an API request or a snapshot manifest. Devices added by later work (--disk, --net,
// --display, --api-socket) get their own fields here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "vmm/device_config.hpp"

namespace vireo::vmm {

enum class SerialMode { kStdio, kFile, kNone };

struct SerialConfig {
    SerialMode mode = SerialMode::kStdio;
    std::string path;  // kFile
};

enum class RebootAction { kExit, kRestart };

struct VmConfig {
    std::string kernel;
    std::string initrd;  // empty: none
    std::string cmdline;
    uint32_t cpus = 1;
    uint64_t memory_mib = 256;
    bool hugepages = false;
    SerialConfig serial;
    RebootAction on_reboot = RebootAction::kExit;
    std::string cpu_features;  // "-xsave,-cx16"; checked against the host when the VM is built
    std::string log_level = "warn";
    std::string api_socket;  // --api-socket PATH: the control API (empty: none)
    // Virtio devices on PCI (vmm/device_config.hpp).
    std::vector<DiskConfig> disks;
    std::vector<NetConfig> nets;
    VirtioConsoleConfig console;
    bool rng = false;
};

inline constexpr uint32_t kMaxCpus = 254;  // xAPIC IDs 0..253 (255 is broadcast; 254 keeps IOAPIC ID room)
inline constexpr uint64_t kMinMemoryMib = 2;
inline constexpr uint64_t kMaxMemoryMib = 1ULL << 22;  // 4 TiB

// "stdio", "file:PATH" or "none".
Result<SerialConfig> parse_serial(std::string_view text);
std::string to_string(const SerialConfig& serial);
Result<RebootAction> parse_reboot_action(std::string_view text);
std::string_view to_string(RebootAction action);

// Checks what can be checked without the host: ranges, required fields, cpu feature names.
Status validate(const VmConfig& config);

}  // namespace vireo::vmm
