// The boot-time marker device.
#include "vmm/boot_timer.hpp"

#include <gtest/gtest.h>

namespace vireo::vmm {
namespace {

TEST(BootTimer, RecordsTheTimeOfAMagicWrite) {
    int64_t now = 1'000;
    BootTimer timer(1'000, [&] { return now; });
    EXPECT_EQ(timer.last_boot_ns(), -1);
    now = 51'000'000;
    uint8_t magic = BootTimer::kMagic;
    timer.write(0, {&magic, 1});
    EXPECT_EQ(timer.last_boot_ns(), 50'999'000);
    EXPECT_EQ(timer.markers(), 1u);
}

TEST(BootTimer, IgnoresOtherWritesAndReadsZero) {
    BootTimer timer(0, [] { return int64_t{5}; });
    uint8_t other = 7;
    timer.write(0, {&other, 1});
    uint8_t magic = BootTimer::kMagic;
    timer.write(4, {&magic, 1});
    EXPECT_EQ(timer.markers(), 0u);
    uint8_t buf[4] = {1, 2, 3, 4};
    timer.read(0, buf);
    EXPECT_EQ(buf[0] | buf[1] | buf[2] | buf[3], 0);
}

}  // namespace
}  // namespace vireo::vmm
