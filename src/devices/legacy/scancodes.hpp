// Keyboard scan codes: Linux input key codes to PC/AT scan code sets 1 and 2, the i8042's
// set 2 -> set 1 translation, and USB HID / QEMU "qnum" key numbers to Linux key codes — what a
// desktop front end needs to turn a key press into the bytes a PS/2 keyboard sends.
#pragma once

#include <array>
#include <cstdint>

namespace vireo::devices::scancodes {

// Up to 8 bytes (Pause make in set 2 is the longest).
struct Sequence {
    std::array<uint8_t, 8> bytes{};
    uint8_t size = 0;
    bool empty() const { return size == 0; }
    const uint8_t* begin() const { return bytes.data(); }
    const uint8_t* end() const { return bytes.data() + size; }
};

// Bytes a keyboard in scan code set `set` (1 or 2) sends when the key with Linux code
// `keycode` (linux/input-event-codes.h, e.g. KEY_A = 30) is pressed or released. Empty for
// keys without a code, and for the release of Pause (which has none).
Sequence encode(uint16_t keycode, bool pressed, int set);

// The i8042's translation of a set 2 byte to set 1 (Linux's atkbd relies on it). Prefixes
// (E0, E1) and controller bytes pass through; the F0 break prefix is handled by the caller,
// which ORs 0x80 into the translation of the byte after it.
uint8_t translate_set2_to_set1(uint8_t byte);

// USB HID Keyboard/Keypad usage (page 0x07) to Linux key code; 0 when there is none.
uint16_t hid_usage_to_linux(uint16_t usage);

// QEMU "qnum" (set 1 code, 0x80 added for E0-prefixed keys; used by the RFB QEMU extended key
// event) to Linux key code; 0 when there is none.
uint16_t qnum_to_linux(uint16_t qnum);

}  // namespace vireo::devices::scancodes
