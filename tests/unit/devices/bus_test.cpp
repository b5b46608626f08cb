// Tests for the bus address map.
#include "devices/bus.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace vireo::devices {
namespace {

class Recorder : public BusDevice {
  public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_offset = offset;
        std::memset(data.data(), 0xAB, data.size());
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        last_offset = offset;
        last_value = data[0];
    }
    uint64_t last_offset = ~uint64_t{0};
    uint8_t last_value = 0;
};

TEST(Bus, DispatchesWithOffsets) {
    Bus bus("pio");
    auto dev = std::make_shared<Recorder>();
    ASSERT_TRUE(bus.insert(dev, 0x3f8, 8).ok());
    uint8_t b = 0x41;
    EXPECT_TRUE(bus.write(0x3f9, {&b, 1}));
    EXPECT_EQ(dev->last_offset, 1u);
    EXPECT_EQ(dev->last_value, 0x41);
    uint8_t out[2] = {};
    EXPECT_TRUE(bus.read(0x3fe, out));
    EXPECT_EQ(out[1], 0xAB);
}

TEST(Bus, UnclaimedAndStraddling) {
    Bus bus("mmio");
    ASSERT_TRUE(bus.insert(std::make_shared<Recorder>(), 0x1000, 0x100).ok());
    uint8_t out[4];
    EXPECT_FALSE(bus.read(0x0fff, {out, 1}));
    EXPECT_FALSE(bus.read(0x10fe, {out, 4}));  // runs past the device's end
    EXPECT_FALSE(bus.read(0x1100, {out, 1}));
}

TEST(Bus, RefusesOverlapAndBadRanges) {
    Bus bus("mmio");
    ASSERT_TRUE(bus.insert(std::make_shared<Recorder>(), 0x1000, 0x100).ok());
    EXPECT_FALSE(bus.insert(std::make_shared<Recorder>(), 0x10ff, 0x10).ok());
    EXPECT_FALSE(bus.insert(std::make_shared<Recorder>(), 0x0f00, 0x101).ok());
    EXPECT_FALSE(bus.insert(std::make_shared<Recorder>(), 0x2000, 0).ok());
    EXPECT_FALSE(bus.insert(std::make_shared<Recorder>(), ~uint64_t{0} - 1, 4).ok());
    EXPECT_FALSE(bus.insert(nullptr, 0x3000, 1).ok());
    EXPECT_TRUE(bus.insert(std::make_shared<Recorder>(), 0x1100, 0x100).ok());
    EXPECT_TRUE(bus.insert(std::make_shared<Recorder>(), 0x0f00, 0x100).ok());
    EXPECT_EQ(bus.size(), 3u);
}

TEST(Bus, Remove) {
    Bus bus("mmio");
    ASSERT_TRUE(bus.insert(std::make_shared<Recorder>(), 0x1000, 0x100).ok());
    EXPECT_TRUE(bus.remove(0x1000));
    EXPECT_FALSE(bus.remove(0x1000));
    uint8_t out[1];
    EXPECT_FALSE(bus.read(0x1000, out));
}

}  // namespace
}  // namespace vireo::devices
