// Whole-image operations behind `vireo img`: convert, commit, resize, compare and map.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "disk/image.hpp"

namespace vireo::disk {

// Called with bytes done and the total as an operation advances.
using Progress = std::function<void(uint64_t done, uint64_t total)>;

struct ConvertOptions {
    ImageFormat source_format = ImageFormat::kAuto;
    ImageFormat format = ImageFormat::kRaw;  // output
    VhdSubformat subformat = VhdSubformat::kDynamic;
    uint32_t block_size = vhd::kDefaultBlockSize;
    bool align_1m = false;
    Progress progress;
};

// Copies the contents of `source` (through its parent chain) into a new image `destination`.
// Ranges that read as zeros are not written, so they stay unallocated. The destination appears
// under its name only when complete; on failure nothing is left behind.
Status convert_image(const std::string& source, const std::string& destination,
                     const ConvertOptions& options);

// Writes the sectors a differencing VHD holds into its parent. The child stays valid (it reads
// the same as before) and unchanged. Returns the parent's path.
Result<std::string> commit_image(const std::string& child, const Progress& progress = {});

struct ResizeResult {
    uint64_t old_size = 0;
    uint64_t new_size = 0;  // may exceed the request when the image is sized by CHS geometry
    uint32_t blocks_moved = 0;
};
// Grows an image. Dynamic VHDs whose BAT must grow move the blocks in its way to the end of the
// file first, each move made durable before its BAT entry changes, so a crash leaves a valid
// image (of the old size, with at worst leaked space).
Result<ResizeResult> resize_image(const std::string& path, uint64_t new_size);

struct CompareResult {
    bool identical = true;
    uint64_t first_difference = 0;
    bool size_mismatch = false;
    uint64_t size_a = 0;
    uint64_t size_b = 0;
};
// Compares two images by content (any formats). As qemu-img compare: when sizes differ, the
// larger image's extra part must read as zeros for them to be identical.
Result<CompareResult> compare_images(const std::string& a, const std::string& b, ImageFormat format_a,
                                     ImageFormat format_b, const Progress& progress = {});

// The allocation map of an image: consecutive extents covering the whole disk, merged where the
// status is the same.
Result<std::vector<Extent>> map_image(const std::string& path, ImageFormat format = ImageFormat::kAuto);

}  // namespace vireo::disk
