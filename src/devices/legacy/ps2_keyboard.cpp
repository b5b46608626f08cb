// PS/2 keyboard command set and scan code queue.
#include "devices/legacy/ps2_keyboard.hpp"

#include "devices/legacy/device_state.hpp"
#include "devices/legacy/scancodes.hpp"

namespace vireo::devices {
namespace {

// Keyboard commands.
constexpr uint8_t kCmdSetLeds = 0xED;
constexpr uint8_t kCmdEcho = 0xEE;
constexpr uint8_t kCmdScancodeSet = 0xF0;
constexpr uint8_t kCmdIdentify = 0xF2;
constexpr uint8_t kCmdTypematic = 0xF3;
constexpr uint8_t kCmdEnable = 0xF4;
constexpr uint8_t kCmdDisable = 0xF5;
constexpr uint8_t kCmdDefaults = 0xF6;
constexpr uint8_t kCmdResend = 0xFE;
constexpr uint8_t kCmdReset = 0xFF;
// MF2 keyboard identification bytes.
constexpr uint8_t kId0 = 0xAB;
constexpr uint8_t kId1 = 0x83;
// Typematic default: 10.9 characters/s after 500 ms.
constexpr uint8_t kDefaultTypematic = 0x2B;
constexpr size_t kReplyLimit = 16;  // bounds replies to a guest that never reads them
constexpr int kStateVersion = 1;

}  // namespace

void Ps2Keyboard::reset_defaults() {
    m_set = 2;
    m_typematic = kDefaultTypematic;
    m_scanning = true;
    m_pending = 0;
}

void Ps2Keyboard::power_on() {
    reset_defaults();
    m_leds = 0;
    m_replies.clear();
    m_scancodes.clear();
    m_last_sent = kAck;
}

void Ps2Keyboard::reply(uint8_t byte) {
    if (m_replies.size() < kReplyLimit) m_replies.push_back(byte);
}

uint8_t Ps2Keyboard::pop_output() {
    std::deque<uint8_t>& q = !m_replies.empty() ? m_replies : m_scancodes;
    if (q.empty()) return m_last_sent;
    uint8_t byte = q.front();
    q.pop_front();
    m_last_sent = byte;
    return byte;
}

bool Ps2Keyboard::key_event(uint16_t keycode, bool pressed) {
    if (!m_scanning) return false;
    scancodes::Sequence seq = scancodes::encode(keycode, pressed, m_set);
    if (seq.empty()) return false;
    if (m_scancodes.size() + seq.size > kScanBufferSize) {
        ++m_keys_dropped;
        return false;
    }
    m_scancodes.insert(m_scancodes.end(), seq.begin(), seq.end());
    return true;
}

void Ps2Keyboard::write(uint8_t byte) {
    if (m_pending != 0) {
        uint8_t command = m_pending;
        m_pending = 0;
        switch (command) {
            case kCmdSetLeds:
                m_leds = byte & 0x07;
                reply(kAck);
                return;
            case kCmdTypematic:
                m_typematic = byte & 0x7F;
                reply(kAck);
                return;
            case kCmdScancodeSet:
                if (byte == 0) {
                    reply(kAck);
                    reply(m_set);
                } else if (byte == 1 || byte == 2) {
                    m_set = byte;
                    m_scancodes.clear();  // codes of the old set must not leak into the new one
                    reply(kAck);
                } else {
                    // Set 3 (and anything else) is not offered: the request is refused.
                    reply(kResend);
                }
                return;
            default:
                break;
        }
    }
    switch (byte) {
        case kCmdSetLeds:
        case kCmdTypematic:
        case kCmdScancodeSet:
            m_pending = byte;
            reply(kAck);
            return;
        case kCmdEcho:
            reply(kEcho);
            return;
        case kCmdIdentify:
            reply(kAck);
            reply(kId0);
            reply(kId1);
            return;
        case kCmdEnable:
            m_scancodes.clear();
            m_scanning = true;
            reply(kAck);
            return;
        case kCmdDisable:
            // Disable restores the defaults and stops scanning (PS/2 reference, F5).
            reset_defaults();
            m_scanning = false;
            m_scancodes.clear();
            reply(kAck);
            return;
        case kCmdDefaults:
            reset_defaults();
            m_scancodes.clear();
            reply(kAck);
            return;
        case kCmdResend:
            reply(m_last_sent);
            return;
        case kCmdReset:
            reset_defaults();
            m_leds = 0;
            m_scancodes.clear();
            m_replies.clear();
            reply(kAck);
            reply(kBatOk);  // basic assurance test passed
            return;
        default:
            // Set 3 key-type commands (F7-FD) are acknowledged and ignored; anything else is
            // not a command.
            reply(byte >= 0xF7 && byte <= 0xFD ? kAck : kResend);
            return;
    }
}

nlohmann::json Ps2Keyboard::save_state() const {
    std::vector<uint8_t> replies(m_replies.begin(), m_replies.end());
    std::vector<uint8_t> codes(m_scancodes.begin(), m_scancodes.end());
    return {
        {"version", kStateVersion},
        {"replies", bytes_to_hex(replies)},
        {"scancodes", bytes_to_hex(codes)},
        {"pending", m_pending},
        {"set", m_set},
        {"leds", m_leds},
        {"typematic", m_typematic},
        {"scanning", m_scanning},
        {"last_sent", m_last_sent},
    };
}

Status Ps2Keyboard::restore_state(const nlohmann::json& state) {
    StateReader r(state, "i8042 keyboard", kStateVersion);
    auto replies = r.bytes("replies", kReplyLimit);
    auto codes = r.bytes("scancodes", kScanBufferSize);
    auto pending = static_cast<uint8_t>(r.number("pending", 0xFF));
    auto set = static_cast<uint8_t>(r.number("set", 2));
    auto leds = static_cast<uint8_t>(r.number("leds", 7));
    auto typematic = static_cast<uint8_t>(r.number("typematic", 0x7F));
    bool scanning = r.boolean("scanning");
    auto last = static_cast<uint8_t>(r.number("last_sent", 0xFF));
    if (r.ok() && set < 1) return make_error("i8042 keyboard: cannot restore state: scan code set 0");
    if (r.ok() && pending != 0 && pending != kCmdSetLeds && pending != kCmdTypematic &&
        pending != kCmdScancodeSet)
        return make_error("i8042 keyboard: cannot restore state: 0x{:02x} takes no argument", pending);
    VIREO_TRY(r.status());
    m_replies.assign(replies.begin(), replies.end());
    m_scancodes.assign(codes.begin(), codes.end());
    m_pending = pending;
    m_set = set;
    m_leds = leds;
    m_typematic = typematic;
    m_scanning = scanning;
    m_last_sent = last;
    return {};
}

}  // namespace vireo::devices
