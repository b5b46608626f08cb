// Checksums used by on-disk and wire formats.
#pragma once

#include <cstdint>
#include <span>

namespace vireo {

// One's complement of the byte sum: VHD footer and dynamic header checksums (VHD spec, "Checksum").
uint32_t ones_complement_byte_sum(std::span<const uint8_t> bytes);

// ACPI: the byte that makes the table's bytes sum to zero (ACPI 6.5 §5.2.5.3, §5.2.6).
uint8_t acpi_checksum(std::span<const uint8_t> bytes);

}  // namespace vireo
