// Checksum implementations.
#include "base/checksum.hpp"

namespace vireo {

uint32_t ones_complement_byte_sum(std::span<const uint8_t> bytes) {
    uint32_t sum = 0;
    for (uint8_t b : bytes)
        sum += b;
    return ~sum;
}

uint8_t acpi_checksum(std::span<const uint8_t> bytes) {
    uint8_t sum = 0;
    for (uint8_t b : bytes)
        sum = static_cast<uint8_t>(sum + b);
    return static_cast<uint8_t>(0x100 - sum);
}

}  // namespace vireo
