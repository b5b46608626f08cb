// Tests for bounds-checked guest memory.
#include "base/guest_memory.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace vireo {
namespace {

class GuestMemoryTest : public ::testing::Test {
  protected:
    std::vector<uint8_t> low = std::vector<uint8_t>(0x1000);
    std::vector<uint8_t> high = std::vector<uint8_t>(0x2000);
    GuestMemory mem{{{0x10000, high.size(), high.data()}, {0, low.size(), low.data()}}};
};

TEST_F(GuestMemoryTest, Layout) {
    EXPECT_EQ(mem.total_size(), 0x3000u);
    EXPECT_EQ(mem.end(), 0x12000u);
    EXPECT_EQ(mem.regions()[0].gpa, 0u);
}

TEST_F(GuestMemoryTest, SliceInsideRegion) {
    auto s = mem.checked_slice(0x10010, 16);
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(s->data(), high.data() + 0x10);
    EXPECT_TRUE(mem.checked_slice(0x1000, 0).ok());  // empty slice at region end
}

TEST_F(GuestMemoryTest, RejectsOutOfRange) {
    EXPECT_FALSE(mem.checked_slice(0x0ff0, 0x20).ok());  // crosses the end of a region
    EXPECT_FALSE(mem.checked_slice(0x2000, 1).ok());     // hole
    EXPECT_FALSE(mem.checked_slice(0x12000, 1).ok());    // past the end
    EXPECT_FALSE(mem.checked_slice(0x10000, ~uint64_t{0}).ok());
    EXPECT_FALSE(mem.checked_slice(~uint64_t{0}, 2).ok());
    EXPECT_EQ(mem.host_ptr(0x11fff, 2), nullptr);
}

TEST_F(GuestMemoryTest, ReadWriteObjects) {
    ASSERT_TRUE(mem.write_obj<uint32_t>(0x10100, 0xCAFEBABE).ok());
    EXPECT_EQ(*mem.read_obj<uint32_t>(0x10100), 0xCAFEBABEu);
    EXPECT_FALSE(mem.write_obj<uint64_t>(0xffc, 1).ok());
    auto r = mem.read_obj<uint64_t>(0x5000);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("0x5000"), std::string::npos);
}

}  // namespace
}  // namespace vireo
