// Tests for the 0xCF9 reset control register.
#include "devices/legacy/reset_control.hpp"

#include <gtest/gtest.h>

namespace vireo::devices {
namespace {

TEST(ResetControl, RstCpuResets) {
    int resets = 0;
    ResetControl rc([&] { ++resets; });
    uint8_t v = 0x02;  // SYS_RST alone: armed, no reset yet (PIIX4 RCR)
    rc.write(0, {&v, 1});
    EXPECT_EQ(resets, 0);
    uint8_t r = 0;
    rc.read(0, {&r, 1});
    EXPECT_EQ(r, 0x02);
    v = ResetControl::kResetValue;  // 0x06, what the FADT tells Linux to write
    rc.write(0, {&v, 1});
    EXPECT_EQ(resets, 1);
    rc.read(0, {&r, 1});
    EXPECT_EQ(r, 0x02);  // RST_CPU self-clears
    v = 0x0E;
    rc.write(0, {&v, 1});
    EXPECT_EQ(resets, 2);
    EXPECT_EQ(rc.resets_requested(), 2u);
}

TEST(ResetControl, OtherValuesDoNothing) {
    int resets = 0;
    ResetControl rc([&] { ++resets; });
    for (uint8_t v : {0x00, 0x01, 0x02, 0x08, 0x0A, 0xF0})
        rc.write(0, {&v, 1});
    EXPECT_EQ(resets, 0);
}

}  // namespace
}  // namespace vireo::devices
