// Ps2Mouse: a PS/2 mouse behind the i8042's aux port, with the standard command set, stream
// and remote modes, wrap mode, 2:1 scaling, and the IntelliMouse wheel (ID 3) and 5-button
// (ID 4) extensions. Not thread-safe: the i8042 owns it and calls it under its lock.
#pragma once

#include <cstdint>
#include <deque>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace vireo::devices {

class Ps2Mouse {
  public:
    static constexpr uint8_t kAck = 0xFA;
    static constexpr uint8_t kResend = 0xFE;
    // Buttons as mouse_event() takes them.
    static constexpr uint8_t kLeft = 1 << 0;
    static constexpr uint8_t kRight = 1 << 1;
    static constexpr uint8_t kMiddle = 1 << 2;
    static constexpr uint8_t kSide = 1 << 3;   // button 4 (ID 4 only)
    static constexpr uint8_t kExtra = 1 << 4;  // button 5 (ID 4 only)
    static constexpr size_t kQueueSize = 64;   // bytes of packets waiting for the guest
    static constexpr size_t kReplyLimit = 16;

    Ps2Mouse() { reset_defaults(); }

    // A byte from the controller (0xD4 writes).
    void write(uint8_t byte);
    // Host pointer motion: dx right, dy down (screen convention; PS/2 counts up, so dy is
    // negated), dz wheel steps down, and the button state. Accumulated, and sent as packets in
    // stream mode while reporting is enabled.
    void mouse_event(int32_t dx, int32_t dy, int32_t dz, uint8_t buttons);

    bool has_output() const { return !m_replies.empty() || !m_packets.empty(); }
    uint8_t pop_output();
    // Turns accumulated motion into packets while there is queue room (called after pops).
    void flush_motion();

    uint8_t device_id() const { return m_id; }
    bool reporting() const { return m_enabled; }
    uint8_t sample_rate() const { return m_rate; }

    void power_on();

    nlohmann::json save_state() const;
    Status restore_state(const nlohmann::json& state);

  private:
    void reply(uint8_t byte);
    void reset_defaults();
    size_t packet_size() const { return m_id >= 3 ? 4 : 3; }
    // Queues one packet from the accumulated motion (removing what it carries).
    void queue_packet();
    bool motion_pending() const;

    std::deque<uint8_t> m_replies;  // command responses, sent first
    std::deque<uint8_t> m_packets;  // movement packets
    uint8_t m_pending = 0;          // command waiting for its argument
    bool m_enabled = false;
    bool m_remote = false;
    bool m_wrap = false;
    bool m_scaling_2to1 = false;
    uint8_t m_resolution = 2;  // 4 counts/mm
    uint8_t m_rate = 100;
    uint8_t m_id = 0;
    uint8_t m_rate_history[3] = {};  // last three sample rates (IntelliMouse unlock sequence)
    uint8_t m_buttons = 0;
    bool m_buttons_changed = false;
    int32_t m_dx = 0;  // accumulated, PS/2 convention (up positive)
    int32_t m_dy = 0;
    int32_t m_dz = 0;
    uint8_t m_last_sent = kAck;
};

}  // namespace vireo::devices
