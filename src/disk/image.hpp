// Disk images as files: detecting the format, opening a BlockBackend for one (with its parent
// chain), creating new ones, and describing one (`vireo img info`).
//
// Format detection: a file is a VHD when it carries the "conectix" footer cookie at its end (512
// bytes, or 511 for very old images) or, for dynamic and differencing disks, in the footer copy at
// offset 0; anything else is raw. A guest can write such a footer into a raw disk, so callers that
// know the format (VM configurations) should pass it instead of relying on detection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "base/uuid.hpp"
#include "disk/block_backend.hpp"
#include "disk/vhd_format.hpp"

namespace vireo::disk {

enum class ImageFormat : uint8_t { kAuto, kRaw, kVhd };
enum class VhdSubformat : uint8_t { kFixed, kDynamic, kDifferencing };

std::string_view format_name(ImageFormat f);      // "raw", "vhd"
std::string_view subformat_name(VhdSubformat s);  // "fixed", "dynamic", "differencing"
// "raw", "vhd" (and QEMU's name "vpc"); empty or "auto" means detect.
Result<ImageFormat> parse_format(std::string_view name);
Result<VhdSubformat> parse_subformat(std::string_view name);  // "fixed", "dynamic"

struct ImageOptions {
    bool read_only = false;
    bool direct = false;  // O_DIRECT for data (and VHD metadata writes; reads stay buffered)
    ImageFormat format = ImageFormat::kAuto;
    vhd::SizeRule size_rule = vhd::SizeRule::kAuto;
    // Differencing disks: open the parent chain. Without it, reads that reach a parent fail;
    // block_status() still describes this image's own sectors (commit and inspection use that).
    bool open_parents = true;
};

// Opens `path` as a disk. Differencing VHDs open their parents read-only, found through the
// parent locators and verified by UUID; a missing or changed parent and parent loops are errors.
Result<std::unique_ptr<BlockBackend>> open_image(const std::string& path, const ImageOptions& options = {});

// The format of a file, by the rule above.
Result<ImageFormat> detect_format(const std::string& path);

// Refuses a path where a new image cannot go (an existing directory) with a clear error.
Status check_new_image_path(const std::string& path);

struct CreateOptions {
    ImageFormat format = ImageFormat::kAuto;  // raw, or vhd when a parent is given
    VhdSubformat subformat = VhdSubformat::kDynamic;
    uint64_t size = 0;  // bytes; with a parent, 0 means the parent's size
    uint32_t block_size = vhd::kDefaultBlockSize;
    bool block_size_given = false;  // otherwise a differencing child takes its parent's block size
    std::string parent;             // non-empty: a differencing VHD on this parent
    bool align_1m = false;          // round the size up to whole MiB (Azure's rule)
};

// Creates a new image (replacing an existing file only once the new one is complete).
Status create_image(const std::string& path, const CreateOptions& options);
// The size create_image() will give an image, after --align-1m and VHD checks.
Result<uint64_t> effective_create_size(const CreateOptions& options);

struct ImageInfo {
    std::string path;
    ImageFormat format = ImageFormat::kRaw;
    std::optional<VhdSubformat> subformat;
    uint64_t virtual_size = 0;
    std::string size_rule;  // "file_size" (raw), "current_size" or "chs"
    std::string size_rule_reason;
    uint64_t file_size = 0;
    uint64_t actual_size = 0;  // bytes allocated on the host file system
    // VHD only.
    uint64_t current_size = 0;
    uint64_t original_size = 0;
    vhd::Geometry geometry;
    std::string creator_app;  // four characters, NULs and trailing spaces dropped
    uint32_t creator_version = 0;
    std::string creator_host;
    uint32_t timestamp = 0;
    Uuid uuid;
    bool saved_state = false;
    uint32_t block_size = 0;  // dynamic and differencing
    uint32_t max_table_entries = 0;
    uint64_t bat_offset = 0;
    uint32_t allocated_blocks = 0;
    // Differencing only.
    Uuid parent_uuid;
    uint32_t parent_timestamp = 0;
    std::string parent_name;
    std::vector<vhd::ParentLocator> parent_locators;
    std::vector<std::string> backing_chain;  // resolved parent paths, nearest first
    std::string chain_error;                 // why the chain could not be followed to its end
    std::vector<std::string> warnings;
};

Result<ImageInfo> inspect_image(const std::string& path, const ImageOptions& options = {});

// The resolved path of a differencing VHD's parent (verified by UUID). For other images: error.
Result<std::string> find_parent(const std::string& path);

}  // namespace vireo::disk
