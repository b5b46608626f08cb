// Helpers shared by `vireo img serve` and `vireo img bench`.
#pragma once

#include <memory>
#include <string>

#include "base/result.hpp"
#include "disk/block_backend.hpp"

namespace vireo::cli {

// Opens an image for serving or benchmarking. `format` is "raw", "vhd" (or QEMU's name "vpc"),
// or empty to detect it.
Result<std::unique_ptr<disk::BlockBackend>> open_disk_image(const std::string& path,
                                                            const std::string& format, bool read_only,
                                                            bool direct);

}  // namespace vireo::cli
