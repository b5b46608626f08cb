// Scan code tables. Set 1 codes follow IBM's XT/AT keyboard and Microsoft's "Keyboard Scan
// Code Specification" (rev 1.3a, for the multimedia keys); set 2 codes are derived from them
// through the i8042 translation, which is a bijection on 0x00-0x7F.
#include "devices/legacy/scancodes.hpp"

#include <linux/input-event-codes.h>

#include <cstddef>

namespace vireo::devices::scancodes {
namespace {

// Set 1 code -> set 2 code for the 128 non-break set 1 codes: the inverse of the i8042's
// translation table (IBM PS/2 Technical Reference, "Keyboard Controller", translation).
constexpr std::array<uint8_t, 128> kSet1ToSet2 = {
    0x00, 0x76, 0x16, 0x1E, 0x26, 0x25, 0x2E, 0x36, 0x3D, 0x3E, 0x46, 0x45, 0x4E, 0x55, 0x66, 0x0D,  // 00
    0x15, 0x1D, 0x24, 0x2D, 0x2C, 0x35, 0x3C, 0x43, 0x44, 0x4D, 0x54, 0x5B, 0x5A, 0x14, 0x1C, 0x1B,  // 10
    0x23, 0x2B, 0x34, 0x33, 0x3B, 0x42, 0x4B, 0x4C, 0x52, 0x0E, 0x12, 0x5D, 0x1A, 0x22, 0x21, 0x2A,  // 20
    0x32, 0x31, 0x3A, 0x41, 0x49, 0x4A, 0x59, 0x7C, 0x11, 0x29, 0x58, 0x05, 0x06, 0x04, 0x0C, 0x03,  // 30
    0x0B, 0x02, 0x0A, 0x01, 0x09, 0x77, 0x7E, 0x6C, 0x75, 0x7D, 0x7B, 0x6B, 0x73, 0x74, 0x79, 0x69,  // 40
    0x72, 0x7A, 0x70, 0x71, 0x7F, 0x60, 0x61, 0x78, 0x07, 0x0F, 0x17, 0x1F, 0x27, 0x2F, 0x37, 0x3F,  // 50
    0x47, 0x4F, 0x56, 0x5E, 0x08, 0x10, 0x18, 0x20, 0x28, 0x30, 0x38, 0x40, 0x48, 0x50, 0x57, 0x6F,  // 60
    0x13, 0x19, 0x39, 0x51, 0x53, 0x5C, 0x5F, 0x62, 0x63, 0x64, 0x65, 0x67, 0x68, 0x6A, 0x6D, 0x6E,  // 70
};

constexpr bool is_permutation_of_0_127(const std::array<uint8_t, 128>& table) {
    std::array<bool, 128> seen{};
    for (uint8_t v : table) {
        if (v >= 128 || seen[v]) return false;
        seen[v] = true;
    }
    return true;
}
static_assert(is_permutation_of_0_127(kSet1ToSet2), "the i8042 translation must be a bijection");

constexpr std::array<uint8_t, 128> make_set2_to_set1() {
    std::array<uint8_t, 128> out{};
    for (std::size_t i = 0; i < 128; ++i)
        out[kSet1ToSet2[i]] = static_cast<uint8_t>(i);
    return out;
}
constexpr std::array<uint8_t, 128> kSet2ToSet1 = make_set2_to_set1();

// The one key whose set 2 code lies above 0x7F: F7 sends 0x83, which the i8042 turns into 0x41.
constexpr uint8_t kSet2F7 = 0x83;
constexpr uint8_t kSet1F7 = 0x41;
// Alt+PrintScreen (SysRq) is 0x84 in set 2, 0x54 in set 1.
constexpr uint8_t kSet2SysRq = 0x84;
constexpr uint8_t kSet1SysRq = 0x54;

// Set 1 code of each Linux key: low byte the code, bit 8 the E0 prefix. 0: no code.
constexpr uint16_t kE0 = 0x100;
struct KeyEntry {
    uint16_t keycode;
    uint16_t set1;
};
constexpr KeyEntry kExtraKeys[] = {
    // Japanese and Brazilian keys (single byte)
    {KEY_RO, 0x73},
    {KEY_KATAKANAHIRAGANA, 0x70},
    {KEY_HENKAN, 0x79},
    {KEY_MUHENKAN, 0x7B},
    {KEY_YEN, 0x7D},
    {KEY_KPJPCOMMA, 0x5C},
    {KEY_KPEQUAL, 0x59},
    {KEY_KPCOMMA, 0x7E},
    // E0-prefixed keys
    {KEY_KPENTER, kE0 | 0x1C},
    {KEY_RIGHTCTRL, kE0 | 0x1D},
    {KEY_KPSLASH, kE0 | 0x35},
    {KEY_RIGHTALT, kE0 | 0x38},
    {KEY_HOME, kE0 | 0x47},
    {KEY_UP, kE0 | 0x48},
    {KEY_PAGEUP, kE0 | 0x49},
    {KEY_LEFT, kE0 | 0x4B},
    {KEY_RIGHT, kE0 | 0x4D},
    {KEY_END, kE0 | 0x4F},
    {KEY_DOWN, kE0 | 0x50},
    {KEY_PAGEDOWN, kE0 | 0x51},
    {KEY_INSERT, kE0 | 0x52},
    {KEY_DELETE, kE0 | 0x53},
    {KEY_LEFTMETA, kE0 | 0x5B},
    {KEY_RIGHTMETA, kE0 | 0x5C},
    {KEY_COMPOSE, kE0 | 0x5D},
    {KEY_POWER, kE0 | 0x5E},
    {KEY_SLEEP, kE0 | 0x5F},
    {KEY_WAKEUP, kE0 | 0x63},
    // Multimedia keys (Microsoft scan code specification)
    {KEY_MUTE, kE0 | 0x20},
    {KEY_CALC, kE0 | 0x21},
    {KEY_PLAYPAUSE, kE0 | 0x22},
    {KEY_STOPCD, kE0 | 0x24},
    {KEY_VOLUMEDOWN, kE0 | 0x2E},
    {KEY_VOLUMEUP, kE0 | 0x30},
    {KEY_HOMEPAGE, kE0 | 0x32},
    {KEY_PREVIOUSSONG, kE0 | 0x10},
    {KEY_NEXTSONG, kE0 | 0x19},
    {KEY_SEARCH, kE0 | 0x65},
    {KEY_BOOKMARKS, kE0 | 0x66},
    {KEY_REFRESH, kE0 | 0x67},
    {KEY_STOP, kE0 | 0x68},
    {KEY_FORWARD, kE0 | 0x69},
    {KEY_BACK, kE0 | 0x6A},
    {KEY_COMPUTER, kE0 | 0x6B},
    {KEY_MAIL, kE0 | 0x6C},
    {KEY_MEDIA, kE0 | 0x6D},
};

constexpr std::array<uint16_t, 256> make_keymap() {
    std::array<uint16_t, 256> map{};
    // KEY_ESC (1) .. KEY_KPDOT (83) and KEY_102ND, KEY_F11, KEY_F12 have set 1 codes equal to
    // their Linux code: Linux numbered them after the XT scan codes.
    for (uint16_t k = KEY_ESC; k <= KEY_KPDOT; ++k)
        map[k] = k;
    for (uint16_t k : {KEY_102ND, KEY_F11, KEY_F12})
        map[k] = k;
    for (const auto& e : kExtraKeys)
        map[e.keycode] = e.set1;
    return map;
}
constexpr std::array<uint16_t, 256> kKeymap = make_keymap();

void push(Sequence& s, uint8_t b) {
    s.bytes[s.size++] = b;
}

uint8_t set2_code(uint8_t set1) {
    return set1 == kSet1F7 ? kSet2F7 : kSet1ToSet2[set1 & 0x7F];
}

}  // namespace

Sequence encode(uint16_t keycode, bool pressed, int set) {
    Sequence s;
    if (set != 1 && set != 2) return s;
    // Pause has only a make sequence; PrintScreen sends a fake shift around its code.
    if (keycode == KEY_PAUSE) {
        if (!pressed) return s;
        for (uint8_t b : set == 1 ? std::array<uint8_t, 8>{0xE1, 0x1D, 0x45, 0xE1, 0x9D, 0xC5}
                                  : std::array<uint8_t, 8>{0xE1, 0x14, 0x77, 0xE1, 0xF0, 0x14, 0xF0, 0x77}) {
            if (b == 0) break;
            push(s, b);
        }
        return s;
    }
    if (keycode == KEY_SYSRQ) {
        if (set == 1) {
            for (uint8_t b : pressed ? std::array<uint8_t, 4>{0xE0, 0x2A, 0xE0, 0x37}
                                     : std::array<uint8_t, 4>{0xE0, 0xB7, 0xE0, 0xAA})
                push(s, b);
        } else {
            if (pressed) {
                for (uint8_t b : {0xE0, 0x12, 0xE0, 0x7C})
                    push(s, b);
            } else {
                for (uint8_t b : {0xE0, 0xF0, 0x7C, 0xE0, 0xF0, 0x12})
                    push(s, b);
            }
        }
        return s;
    }
    if (keycode >= kKeymap.size() || kKeymap[keycode] == 0) return s;
    uint16_t entry = kKeymap[keycode];
    auto code = static_cast<uint8_t>(entry & 0xFF);
    if (entry & kE0) push(s, 0xE0);
    if (set == 1) {
        push(s, pressed ? code : static_cast<uint8_t>(code | 0x80));
    } else {
        if (!pressed) push(s, 0xF0);
        push(s, set2_code(code));
    }
    return s;
}

uint8_t translate_set2_to_set1(uint8_t byte) {
    if (byte < 0x80) return kSet2ToSet1[byte];
    if (byte == kSet2F7) return kSet1F7;
    if (byte == kSet2SysRq) return kSet1SysRq;
    return byte;
}

uint16_t hid_usage_to_linux(uint16_t usage) {
    // USB HID Usage Tables 1.4 §10 (Keyboard/Keypad page), as Linux's hid-input maps them.
    static constexpr uint8_t kLetters[26] = {KEY_A, KEY_B, KEY_C, KEY_D, KEY_E, KEY_F, KEY_G, KEY_H, KEY_I,
                                             KEY_J, KEY_K, KEY_L, KEY_M, KEY_N, KEY_O, KEY_P, KEY_Q, KEY_R,
                                             KEY_S, KEY_T, KEY_U, KEY_V, KEY_W, KEY_X, KEY_Y, KEY_Z};
    if (usage >= 0x04 && usage <= 0x1D) return kLetters[usage - 0x04];
    if (usage >= 0x1E && usage <= 0x26) return static_cast<uint16_t>(KEY_1 + (usage - 0x1E));
    if (usage >= 0x3A && usage <= 0x43) return static_cast<uint16_t>(KEY_F1 + (usage - 0x3A));
    if (usage >= 0x68 && usage <= 0x73) return static_cast<uint16_t>(KEY_F13 + (usage - 0x68));
    switch (usage) {
        case 0x27:
            return KEY_0;
        case 0x28:
            return KEY_ENTER;
        case 0x29:
            return KEY_ESC;
        case 0x2A:
            return KEY_BACKSPACE;
        case 0x2B:
            return KEY_TAB;
        case 0x2C:
            return KEY_SPACE;
        case 0x2D:
            return KEY_MINUS;
        case 0x2E:
            return KEY_EQUAL;
        case 0x2F:
            return KEY_LEFTBRACE;
        case 0x30:
            return KEY_RIGHTBRACE;
        case 0x31:
            return KEY_BACKSLASH;
        case 0x32:
            return KEY_BACKSLASH;  // Non-US # and ~ sits where the backslash is
        case 0x33:
            return KEY_SEMICOLON;
        case 0x34:
            return KEY_APOSTROPHE;
        case 0x35:
            return KEY_GRAVE;
        case 0x36:
            return KEY_COMMA;
        case 0x37:
            return KEY_DOT;
        case 0x38:
            return KEY_SLASH;
        case 0x39:
            return KEY_CAPSLOCK;
        case 0x44:
            return KEY_F11;
        case 0x45:
            return KEY_F12;
        case 0x46:
            return KEY_SYSRQ;
        case 0x47:
            return KEY_SCROLLLOCK;
        case 0x48:
            return KEY_PAUSE;
        case 0x49:
            return KEY_INSERT;
        case 0x4A:
            return KEY_HOME;
        case 0x4B:
            return KEY_PAGEUP;
        case 0x4C:
            return KEY_DELETE;
        case 0x4D:
            return KEY_END;
        case 0x4E:
            return KEY_PAGEDOWN;
        case 0x4F:
            return KEY_RIGHT;
        case 0x50:
            return KEY_LEFT;
        case 0x51:
            return KEY_DOWN;
        case 0x52:
            return KEY_UP;
        case 0x53:
            return KEY_NUMLOCK;
        case 0x54:
            return KEY_KPSLASH;
        case 0x55:
            return KEY_KPASTERISK;
        case 0x56:
            return KEY_KPMINUS;
        case 0x57:
            return KEY_KPPLUS;
        case 0x58:
            return KEY_KPENTER;
        case 0x59:
            return KEY_KP1;
        case 0x5A:
            return KEY_KP2;
        case 0x5B:
            return KEY_KP3;
        case 0x5C:
            return KEY_KP4;
        case 0x5D:
            return KEY_KP5;
        case 0x5E:
            return KEY_KP6;
        case 0x5F:
            return KEY_KP7;
        case 0x60:
            return KEY_KP8;
        case 0x61:
            return KEY_KP9;
        case 0x62:
            return KEY_KP0;
        case 0x63:
            return KEY_KPDOT;
        case 0x64:
            return KEY_102ND;
        case 0x65:
            return KEY_COMPOSE;
        case 0x66:
            return KEY_POWER;
        case 0x67:
            return KEY_KPEQUAL;
        case 0x7F:
            return KEY_MUTE;
        case 0x80:
            return KEY_VOLUMEUP;
        case 0x81:
            return KEY_VOLUMEDOWN;
        case 0x85:
            return KEY_KPCOMMA;
        case 0x87:
            return KEY_RO;
        case 0x88:
            return KEY_KATAKANAHIRAGANA;
        case 0x89:
            return KEY_YEN;
        case 0x8A:
            return KEY_HENKAN;
        case 0x8B:
            return KEY_MUHENKAN;
        case 0x8C:
            return KEY_KPJPCOMMA;
        case 0x90:
            return KEY_HANGEUL;
        case 0x91:
            return KEY_HANJA;
        case 0xE0:
            return KEY_LEFTCTRL;
        case 0xE1:
            return KEY_LEFTSHIFT;
        case 0xE2:
            return KEY_LEFTALT;
        case 0xE3:
            return KEY_LEFTMETA;
        case 0xE4:
            return KEY_RIGHTCTRL;
        case 0xE5:
            return KEY_RIGHTSHIFT;
        case 0xE6:
            return KEY_RIGHTALT;
        case 0xE7:
            return KEY_RIGHTMETA;
        default:
            return 0;
    }
}

uint16_t qnum_to_linux(uint16_t qnum) {
    // qnum 0x54 and 0xB7 are the set 1 SysRq and PrintScreen; 0xC6 is QEMU's number for Pause.
    if (qnum == 0x54 || qnum == 0xB7) return KEY_SYSRQ;
    if (qnum == 0xC6) return KEY_PAUSE;
    if (qnum == 0 || qnum > 0xFF) return 0;
    uint16_t wanted = (qnum & 0x80) ? static_cast<uint16_t>(kE0 | (qnum & 0x7F)) : qnum;
    for (uint16_t k = 0; k < kKeymap.size(); ++k) {
        if (kKeymap[k] == wanted) return k;
    }
    return 0;
}

}  // namespace vireo::devices::scancodes
