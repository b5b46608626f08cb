// Tests for the scan code tables: known set 1 and set 2 codes from the IBM and Microsoft
// references, the i8042 translation, and the HID and qnum mappings.
#include "devices/legacy/scancodes.hpp"

#include <gtest/gtest.h>
#include <linux/input-event-codes.h>

#include <vector>

namespace vireo::devices::scancodes {
namespace {

std::vector<uint8_t> bytes(uint16_t key, bool pressed, int set) {
    Sequence s = encode(key, pressed, set);
    return {s.begin(), s.end()};
}

using B = std::vector<uint8_t>;

TEST(Scancodes, KnownSet1Codes) {
    EXPECT_EQ(bytes(KEY_A, true, 1), (B{0x1E}));
    EXPECT_EQ(bytes(KEY_A, false, 1), (B{0x9E}));
    EXPECT_EQ(bytes(KEY_ESC, true, 1), (B{0x01}));
    EXPECT_EQ(bytes(KEY_F12, true, 1), (B{0x58}));
    EXPECT_EQ(bytes(KEY_102ND, true, 1), (B{0x56}));
    EXPECT_EQ(bytes(KEY_RIGHTCTRL, true, 1), (B{0xE0, 0x1D}));
    EXPECT_EQ(bytes(KEY_RIGHTCTRL, false, 1), (B{0xE0, 0x9D}));
    EXPECT_EQ(bytes(KEY_UP, true, 1), (B{0xE0, 0x48}));
    EXPECT_EQ(bytes(KEY_LEFTMETA, true, 1), (B{0xE0, 0x5B}));
    EXPECT_EQ(bytes(KEY_VOLUMEUP, true, 1), (B{0xE0, 0x30}));
    EXPECT_EQ(bytes(KEY_SYSRQ, true, 1), (B{0xE0, 0x2A, 0xE0, 0x37}));
    EXPECT_EQ(bytes(KEY_SYSRQ, false, 1), (B{0xE0, 0xB7, 0xE0, 0xAA}));
    EXPECT_EQ(bytes(KEY_PAUSE, true, 1), (B{0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5}));
    EXPECT_TRUE(bytes(KEY_PAUSE, false, 1).empty());
}

TEST(Scancodes, KnownSet2Codes) {
    EXPECT_EQ(bytes(KEY_A, true, 2), (B{0x1C}));
    EXPECT_EQ(bytes(KEY_A, false, 2), (B{0xF0, 0x1C}));
    const std::pair<uint16_t, uint8_t> plain[] = {
        {KEY_ESC, 0x76},        {KEY_ENTER, 0x5A},      {KEY_SPACE, 0x29},     {KEY_F1, 0x05},
        {KEY_F7, 0x83},         {KEY_F12, 0x07},        {KEY_KP5, 0x73},       {KEY_LEFTSHIFT, 0x12},
        {KEY_RIGHTSHIFT, 0x59}, {KEY_GRAVE, 0x0E},      {KEY_BACKSLASH, 0x5D}, {KEY_CAPSLOCK, 0x58},
        {KEY_NUMLOCK, 0x77},    {KEY_KPASTERISK, 0x7C}, {KEY_102ND, 0x61},     {KEY_KPEQUAL, 0x0F},
        {KEY_RO, 0x51},         {KEY_YEN, 0x6A},
    };
    for (auto [key, code] : plain)
        EXPECT_EQ(bytes(key, true, 2), (B{code})) << key;
    const std::pair<uint16_t, uint8_t> extended[] = {
        {KEY_RIGHTCTRL, 0x14}, {KEY_RIGHTALT, 0x11}, {KEY_KPENTER, 0x5A}, {KEY_KPSLASH, 0x4A},
        {KEY_HOME, 0x6C},      {KEY_UP, 0x75},       {KEY_DELETE, 0x71},  {KEY_LEFTMETA, 0x1F},
        {KEY_COMPOSE, 0x2F},   {KEY_POWER, 0x37},    {KEY_MUTE, 0x23},    {KEY_CALC, 0x2B},
        {KEY_MAIL, 0x48},      {KEY_NEXTSONG, 0x4D}, {KEY_BACK, 0x38},
    };
    for (auto [key, code] : extended) {
        EXPECT_EQ(bytes(key, true, 2), (B{0xE0, code})) << key;
        EXPECT_EQ(bytes(key, false, 2), (B{0xE0, 0xF0, code})) << key;
    }
    EXPECT_EQ(bytes(KEY_SYSRQ, true, 2), (B{0xE0, 0x12, 0xE0, 0x7C}));
    EXPECT_EQ(bytes(KEY_SYSRQ, false, 2), (B{0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12}));
    EXPECT_EQ(bytes(KEY_PAUSE, true, 2), (B{0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77}));
}

TEST(Scancodes, UnknownKeysAndSets) {
    EXPECT_TRUE(bytes(0, true, 2).empty());
    EXPECT_TRUE(bytes(KEY_F13, true, 2).empty());
    EXPECT_TRUE(bytes(0xFFFF, true, 1).empty());
    EXPECT_TRUE(bytes(KEY_A, true, 3).empty());
}

// What the i8042 does to a set 2 stream gives the set 1 stream, for every key.
TEST(Scancodes, TranslationTurnsSet2IntoSet1) {
    int keys = 0;
    for (uint16_t key = 0; key < 256; ++key) {
        for (bool pressed : {true, false}) {
            B set2 = bytes(key, pressed, 2);
            if (set2.empty()) continue;
            B translated;
            bool brk = false;
            for (uint8_t b : set2) {
                if (b == 0xF0) {
                    brk = true;
                    continue;
                }
                uint8_t t = translate_set2_to_set1(b);
                translated.push_back(brk ? static_cast<uint8_t>(t | 0x80) : t);
                brk = false;
            }
            EXPECT_EQ(translated, bytes(key, pressed, 1)) << "key " << key << (pressed ? " make" : " break");
            ++keys;
        }
    }
    EXPECT_GT(keys, 2 * 120);
    // Controller and keyboard replies pass through.
    for (uint8_t b : {0xFA, 0xAA, 0xEE, 0xFE, 0xE0, 0xE1})
        EXPECT_EQ(translate_set2_to_set1(b), b);
    EXPECT_EQ(translate_set2_to_set1(0x83), 0x41);  // the MF2 ID byte, as Linux expects (0xAB41)
}

TEST(Scancodes, HidUsages) {
    EXPECT_EQ(hid_usage_to_linux(0x04), KEY_A);
    EXPECT_EQ(hid_usage_to_linux(0x1D), KEY_Z);
    EXPECT_EQ(hid_usage_to_linux(0x1E), KEY_1);
    EXPECT_EQ(hid_usage_to_linux(0x27), KEY_0);
    EXPECT_EQ(hid_usage_to_linux(0x28), KEY_ENTER);
    EXPECT_EQ(hid_usage_to_linux(0x3A), KEY_F1);
    EXPECT_EQ(hid_usage_to_linux(0x45), KEY_F12);
    EXPECT_EQ(hid_usage_to_linux(0x46), KEY_SYSRQ);
    EXPECT_EQ(hid_usage_to_linux(0x52), KEY_UP);
    EXPECT_EQ(hid_usage_to_linux(0x64), KEY_102ND);
    EXPECT_EQ(hid_usage_to_linux(0xE0), KEY_LEFTCTRL);
    EXPECT_EQ(hid_usage_to_linux(0xE7), KEY_RIGHTMETA);
    EXPECT_EQ(hid_usage_to_linux(0x00), 0);
    EXPECT_EQ(hid_usage_to_linux(0x01), 0);
    EXPECT_EQ(hid_usage_to_linux(0xFF), 0);
    // Every key of a 105-key keyboard (usages 0x04-0x67, 0xE0-0xE7) has PS/2 codes.
    for (uint16_t u = 0x04; u <= 0xE7; ++u) {
        if (u > 0x67 && u < 0xE0) continue;
        uint16_t key = hid_usage_to_linux(u);
        ASSERT_NE(key, 0) << "usage 0x" << std::hex << u;
        EXPECT_FALSE(encode(key, true, 2).empty()) << "usage 0x" << std::hex << u;
        EXPECT_FALSE(encode(key, true, 1).empty()) << "usage 0x" << std::hex << u;
    }
}

TEST(Scancodes, QnumRoundTrip) {
    EXPECT_EQ(qnum_to_linux(0x1E), KEY_A);
    EXPECT_EQ(qnum_to_linux(0x9D), KEY_RIGHTCTRL);
    EXPECT_EQ(qnum_to_linux(0xC8), KEY_UP);
    EXPECT_EQ(qnum_to_linux(0xB7), KEY_SYSRQ);
    EXPECT_EQ(qnum_to_linux(0xC6), KEY_PAUSE);
    EXPECT_EQ(qnum_to_linux(0), 0);
    EXPECT_EQ(qnum_to_linux(0x100), 0);
    for (uint16_t key = 1; key < 256; ++key) {
        if (key == KEY_SYSRQ || key == KEY_PAUSE) continue;
        Sequence s = encode(key, true, 1);
        if (s.empty()) continue;
        uint16_t qnum = s.size == 2 ? static_cast<uint16_t>(0x80 | s.bytes[1]) : s.bytes[0];
        EXPECT_EQ(qnum_to_linux(qnum), key) << key;
    }
}

}  // namespace
}  // namespace vireo::devices::scancodes
