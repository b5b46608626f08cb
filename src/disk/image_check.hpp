// Consistency check and repair of disk images (`vireo img check`), with qemu-img check's exit
// codes: 0 clean, 2 corruption, 3 leaks only.
//
// A VHD is corrupt when data would read wrong or the image would not open: bad footers or header,
// a BAT that does not fit, BAT entries outside the file or overlapping metadata or each other, a
// missing end footer. Leaks are space no BAT entry or metadata references that a block could use:
// what an interrupted allocation leaves. Repair reclaims leaks (moving the last blocks into gaps,
// then trimming the end of the file) and rewrites damaged footer copies from a valid one; it
// never guesses at data. Repairs are ordered so that a crash in the middle leaves a valid image.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "disk/image.hpp"

namespace vireo::disk {

struct CheckOptions {
    bool repair = false;
    ImageFormat format = ImageFormat::kAuto;
};

struct CheckReport {
    std::string path;
    ImageFormat format = ImageFormat::kRaw;
    std::optional<VhdSubformat> subformat;
    std::vector<std::string> corruptions;
    std::vector<std::string> leaks;
    std::vector<std::string> warnings;
    std::vector<std::string> repairs;  // what --repair changed
    uint64_t leaked_bytes = 0;
    uint32_t corruptions_fixed = 0;
    uint32_t leaks_fixed = 0;
    uint32_t allocated_blocks = 0;
    uint32_t total_blocks = 0;
    uint64_t image_end_offset = 0;

    int exit_code() const { return !corruptions.empty() ? 2 : !leaks.empty() ? 3 : 0; }
};

// Checks (and with options.repair, repairs) the image at `path`. An error means the check itself
// could not run (the file cannot be read, or is locked by a writer for a repair).
Result<CheckReport> check_image(const std::string& path, const CheckOptions& options = {});

// The same check over the bytes of a VHD held in `fd` (no repair); used by the fuzz target.
CheckReport check_vhd_fd(int fd, const std::string& path);

// Reclaims the leaks of a VHD that has no corruption, through a read-write `fd` the caller holds
// exclusively: moves the last blocks into gaps that can hold them, then trims the end. Returns
// how many blocks moved.
Result<uint32_t> compact_vhd(int fd, const std::string& path);

}  // namespace vireo::disk
