// Ps2Keyboard: a PS/2 (MF2) keyboard behind the i8042's first port: its command set (reset,
// LEDs, scan code set, typematic, scanning on/off, identify, echo, resend) and the scan codes of
// host key events. Not thread-safe: the i8042 owns it and calls it under its lock.
#pragma once

#include <cstdint>
#include <deque>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace vireo::devices {

class Ps2Keyboard {
  public:
    // Replies to commands (IBM PS/2 Keyboard Technical Reference, "Commands from the System").
    static constexpr uint8_t kAck = 0xFA;
    static constexpr uint8_t kResend = 0xFE;
    static constexpr uint8_t kBatOk = 0xAA;
    static constexpr uint8_t kEcho = 0xEE;
    // Scan codes waiting beyond this are dropped whole (a real keyboard buffers 16 keys).
    static constexpr size_t kScanBufferSize = 64;

    Ps2Keyboard() { reset_defaults(); }

    // A byte from the controller: a command or a command's argument.
    void write(uint8_t byte);
    // A host key (Linux key code). Queued in the current scan code set if scanning is enabled;
    // returns false if it was dropped (scanning disabled, unknown key or buffer full).
    bool key_event(uint16_t keycode, bool pressed);

    bool has_output() const { return !m_replies.empty() || !m_scancodes.empty(); }
    // The next byte for the controller (replies before pending scan codes).
    uint8_t pop_output();

    uint8_t scancode_set() const { return m_set; }
    uint8_t leds() const { return m_leds; }  // bit 0 Scroll, 1 Num, 2 Caps Lock
    bool scanning() const { return m_scanning; }
    uint8_t typematic() const { return m_typematic; }
    uint64_t keys_dropped() const { return m_keys_dropped; }

    // Power-on reset (as after a VM reset): defaults, empty buffers.
    void power_on();

    nlohmann::json save_state() const;
    // Validates everything first; on error nothing changes.
    Status restore_state(const nlohmann::json& state);

  private:
    void reply(uint8_t byte);
    void reset_defaults();

    std::deque<uint8_t> m_replies;    // command responses, sent first
    std::deque<uint8_t> m_scancodes;  // key codes
    uint8_t m_pending = 0;            // command waiting for its argument (0: none)
    uint8_t m_set = 2;
    uint8_t m_leds = 0;
    uint8_t m_typematic = 0;
    bool m_scanning = true;
    uint8_t m_last_sent = kAck;  // for the Resend command
    uint64_t m_keys_dropped = 0;
};

}  // namespace vireo::devices
