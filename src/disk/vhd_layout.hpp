// VhdLayout: the validated structure of one VHD file (footers, dynamic header, BAT, parent
// locators), read without opening any parent. The opener, `vireo img info` and the resizer use it;
// every problem it can find in outside data is an error naming the file and the cause.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "disk/vhd_format.hpp"

namespace vireo::disk {

// A byte range of the file and what it holds, for overlap checks and reports.
struct FileRegion {
    uint64_t begin = 0;
    uint64_t end = 0;  // exclusive
    std::string what;  // "dynamic header", "BAT", "block 17", ...
};

struct VhdLayout {
    std::string path;
    uint64_t file_size = 0;
    vhd::Footer footer{};
    size_t footer_length = vhd::kFooterSize;  // 511 for the old short footer
    // Where the footer at the end of the file is, and so where the next block goes.
    uint64_t footer_offset = 0;
    bool end_footer_valid = true;  // false: the end footer is damaged and the offset-0 copy is used
    std::string end_footer_error;
    bool head_footer_valid = false;  // dynamic/differencing: the copy at offset 0
    bool head_matches_end = true;
    vhd::DiskType type = vhd::DiskType::kFixed;
    vhd::SizeDecision size;

    // Dynamic and differencing disks.
    vhd::DynamicHeader header{};
    uint64_t header_offset = 0;
    uint64_t bat_offset = 0;
    uint32_t max_table_entries = 0;
    uint32_t block_size = 0;
    uint32_t bitmap_size = 0;
    std::vector<uint32_t> bat;
    std::vector<vhd::ParentLocator> locators;  // differencing: the readable ones
    std::vector<FileRegion> metadata;          // footer copy, header, BAT, locator data
    uint64_t data_end = 0;                     // blocks and metadata must end at or before this

    std::vector<std::string> warnings;

    bool dynamic() const { return type != vhd::DiskType::kFixed; }
    uint64_t block_total() const { return uint64_t{bitmap_size} + block_size; }
    uint32_t allocated_blocks() const;
    // End of the last block or metadata region: where the footer belongs.
    uint64_t used_end() const;
};

// Reads and validates the VHD in `fd`. A dynamic disk whose end footer is damaged but whose copy at
// offset 0 is intact opens with end_footer_valid = false (readable; writers must refuse it).
Result<VhdLayout> read_vhd_layout(int fd, const std::string& path, vhd::SizeRule rule = vhd::SizeRule::kAuto);

// Reads the locator data of a differencing header; malformed locators become warnings.
std::vector<vhd::ParentLocator> read_locators(int fd, const vhd::DynamicHeader& header, uint64_t limit,
                                              std::vector<std::string>* warnings);

}  // namespace vireo::disk
