// The virtio devices of a VM as its configuration names them: --disk, --net, --console and
// --rng, parsed and printed back (what `vireo run` passes on to vireo-vmm).
#pragma once

#include <string>
#include <string_view>

#include "base/result.hpp"

namespace vireo::vmm {

// --disk PATH[,ro][,format=raw|vhd][,serial=ID]
struct DiskConfig {
    std::string path;
    bool read_only = false;
    std::string format = "auto";  // "auto" (detected from the file), "raw" or "vhd"
    std::string serial;           // at most 20 characters (VIRTIO_BLK_T_GET_ID)
};

// --net tap=NAME[,mac=MAC]
struct NetConfig {
    std::string tap;
    std::string mac;  // "52:54:00:12:34:56"; empty: a random locally administered address
};

// --console none|stdio|file:PATH: a virtio console (hvc0 in Linux).
enum class VirtioConsoleMode { kNone, kStdio, kFile };
struct VirtioConsoleConfig {
    VirtioConsoleMode mode = VirtioConsoleMode::kNone;
    std::string path;  // kFile
};

Result<DiskConfig> parse_disk(std::string_view text);
std::string to_string(const DiskConfig& disk);
Result<NetConfig> parse_net(std::string_view text);
std::string to_string(const NetConfig& net);
Result<VirtioConsoleConfig> parse_console(std::string_view text);
std::string to_string(const VirtioConsoleConfig& console);

}  // namespace vireo::vmm
