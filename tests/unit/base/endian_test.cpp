// Tests for byte-order helpers.
#include "base/endian.hpp"

#include <gtest/gtest.h>

namespace vireo {
namespace {

TEST(Endian, LoadStoreBigEndian) {
    uint8_t buf[8];
    store_be<uint32_t>(buf, 0x11223344);
    EXPECT_EQ(buf[0], 0x11);
    EXPECT_EQ(buf[3], 0x44);
    EXPECT_EQ(load_be<uint32_t>(buf), 0x11223344u);
    store_be<uint64_t>(buf, 0x0102030405060708ull);
    EXPECT_EQ(buf[7], 0x08);
    EXPECT_EQ(load_be<uint64_t>(buf), 0x0102030405060708ull);
}

TEST(Endian, LittleEndian) {
    uint8_t buf[2];
    store_le<uint16_t>(buf, 0xABCD);
    EXPECT_EQ(buf[0], 0xCD);
    EXPECT_EQ(load_le<uint16_t>(buf), 0xABCD);
}

struct [[gnu::packed]] Wire {
    Be<uint16_t> a;
    Be<uint32_t> b;
    Le<uint16_t> c;
};
static_assert(sizeof(Wire) == 8);

TEST(Endian, PackedFields) {
    Wire w{};
    w.a = 0x1234;
    w.b = 0xDEADBEEF;
    w.c = 0x5678;
    const auto* raw = reinterpret_cast<const uint8_t*>(&w);
    EXPECT_EQ(raw[0], 0x12);
    EXPECT_EQ(raw[2], 0xDE);
    EXPECT_EQ(raw[6], 0x78);
    EXPECT_EQ(w.b.get(), 0xDEADBEEFu);
    EXPECT_EQ(static_cast<uint16_t>(w.c), 0x5678);
}

}  // namespace
}  // namespace vireo
