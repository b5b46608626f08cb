// Tests for checksums.
#include "base/checksum.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vireo {
namespace {

TEST(Checksum, OnesComplement) {
    std::vector<uint8_t> bytes = {1, 2, 3, 0xFF};
    EXPECT_EQ(ones_complement_byte_sum(bytes), ~uint32_t{0x105});
    EXPECT_EQ(ones_complement_byte_sum({}), 0xFFFFFFFFu);
}

TEST(Checksum, AcpiSumsToZero) {
    std::vector<uint8_t> table = {'R', 'S', 'D', ' ', 'P', 'T', 'R', ' ', 0};
    table.back() = acpi_checksum(table);
    uint8_t sum = 0;
    for (uint8_t b : table)
        sum = static_cast<uint8_t>(sum + b);
    EXPECT_EQ(sum, 0);
}

}  // namespace
}  // namespace vireo
