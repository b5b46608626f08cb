// Base64 (RFC 4648 §4) for binary blobs inside snapshot JSON.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace vireo::vmm::snapshot {

std::string base64_encode(std::span<const uint8_t> data);
// Refuses characters outside the alphabet, bad padding and bad lengths.
Result<std::vector<uint8_t>> base64_decode(std::string_view text);

}  // namespace vireo::vmm::snapshot
