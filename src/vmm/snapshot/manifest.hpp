// The snapshot manifest: format version, host CPU, VM configuration, memory layout, disks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "vmm/snapshot/host_cpu.hpp"

namespace vireo::vmm::snapshot {

// Bumped whenever a snapshot written by this code could not be restored by older code or the
// other way round; a snapshot of another version is refused, never half-understood.
inline constexpr uint32_t kFormatVersion = 1;

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kStateFile = "vmstate.json";
inline constexpr const char* kMemoryFile = "memory.bin";

struct MemoryRegionRecord {
    uint64_t gpa = 0;
    uint64_t size = 0;
    uint64_t file_offset = 0;  // where the region's bytes start in the memory file
};

struct DiskRecord {
    std::string path;
    nlohmann::json details = nlohmann::json::object();  // format, read-only, serial, ... as the VMM has them
};

struct Manifest {
    uint32_t format_version = kFormatVersion;
    std::string vireo_version;
    std::string created;  // ISO 8601, UTC
    HostCpu cpu;
    nlohmann::json vm_config = nlohmann::json::object();  // what rebuilds the same machine
    uint32_t vcpus = 0;
    uint64_t memory_size = 0;                 // bytes of the memory file
    std::vector<MemoryRegionRecord> regions;  // guest RAM layout
    uint64_t memory_data_bytes = 0;           // bytes of pages stored (not holes)
    std::vector<DiskRecord> disks;
};

nlohmann::json to_json(const Manifest& m);
// Parses a manifest; a different format version is refused before anything else is read.
Result<Manifest> manifest_from_json(const nlohmann::json& j);

// Reads DIR/manifest.json and checks that this host can restore it: same format version, same
// CPU feature set. Errors say what differs.
Result<Manifest> load_manifest(const std::string& dir, const HostCpu& here);

// Writes DIR/manifest.json atomically (temporary file, fsync, rename, fsync of DIR).
Status write_manifest(const std::string& dir, const Manifest& m);

// Writes a JSON document to DIR/name atomically, like write_manifest.
Status write_json_file(const std::string& dir, const std::string& name, const nlohmann::json& j);
Result<nlohmann::json> read_json_file(const std::string& path, size_t max_size = 64 * 1024 * 1024);

}  // namespace vireo::vmm::snapshot
