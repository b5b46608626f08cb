// Human sizes: "512M", "10G", "1.5T", "4096" (bytes), and back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace vireo {

// Parses a size with an optional binary suffix (K, M, G, T, P, E; optional "iB"/"B"; case-insensitive).
// A plain number is bytes. Fractions are allowed with a suffix ("1.5G") if the result is a whole byte.
Result<uint64_t> parse_size(std::string_view text);

// "1 GiB", "512 MiB", "1.5 KiB", "100 B".
std::string format_size(uint64_t bytes);

}  // namespace vireo
