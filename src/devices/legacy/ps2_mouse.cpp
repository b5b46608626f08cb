// PS/2 mouse command set and movement packets (IBM PS/2 Mouse Technical Reference; Microsoft
// IntelliMouse extensions as Linux's psmouse probes them).
#include "devices/legacy/ps2_mouse.hpp"

#include <algorithm>

#include "devices/legacy/device_state.hpp"

namespace vireo::devices {
namespace {

constexpr uint8_t kCmdScaling1to1 = 0xE6;
constexpr uint8_t kCmdScaling2to1 = 0xE7;
constexpr uint8_t kCmdSetResolution = 0xE8;
constexpr uint8_t kCmdStatus = 0xE9;
constexpr uint8_t kCmdStreamMode = 0xEA;
constexpr uint8_t kCmdReadData = 0xEB;
constexpr uint8_t kCmdResetWrap = 0xEC;
constexpr uint8_t kCmdWrap = 0xEE;
constexpr uint8_t kCmdRemoteMode = 0xF0;
constexpr uint8_t kCmdGetId = 0xF2;
constexpr uint8_t kCmdSampleRate = 0xF3;
constexpr uint8_t kCmdEnable = 0xF4;
constexpr uint8_t kCmdDisable = 0xF5;
constexpr uint8_t kCmdDefaults = 0xF6;
constexpr uint8_t kCmdResend = 0xFE;
constexpr uint8_t kCmdReset = 0xFF;
constexpr uint8_t kBatOk = 0xAA;
constexpr int32_t kMaxDelta = 255;  // 9-bit two's complement, kept symmetric
constexpr int kStateVersion = 1;

// 2:1 scaling (PS/2 mouse reference, "Scaling"): 0,1,1,3,6,9 then twice the count.
int32_t scale_2to1(int32_t v) {
    static constexpr int32_t kTable[6] = {0, 1, 1, 3, 6, 9};
    int32_t a = v < 0 ? -v : v;
    int32_t s = a < 6 ? kTable[a] : 2 * a;
    return v < 0 ? -s : s;
}

}  // namespace

void Ps2Mouse::reset_defaults() {
    m_enabled = false;
    m_remote = false;
    m_wrap = false;
    m_scaling_2to1 = false;
    m_resolution = 2;
    m_rate = 100;
    m_pending = 0;
    m_dx = m_dy = m_dz = 0;
    m_buttons_changed = false;
}

void Ps2Mouse::power_on() {
    reset_defaults();
    m_id = 0;
    std::fill(std::begin(m_rate_history), std::end(m_rate_history), 0);
    m_replies.clear();
    m_packets.clear();
    m_buttons = 0;
    m_last_sent = kAck;
}

void Ps2Mouse::reply(uint8_t byte) {
    if (m_replies.size() < kReplyLimit) m_replies.push_back(byte);
}

uint8_t Ps2Mouse::pop_output() {
    std::deque<uint8_t>& q = !m_replies.empty() ? m_replies : m_packets;
    if (q.empty()) return m_last_sent;
    uint8_t byte = q.front();
    q.pop_front();
    m_last_sent = byte;
    return byte;
}

bool Ps2Mouse::motion_pending() const {
    return m_dx != 0 || m_dy != 0 || m_dz != 0 || m_buttons_changed;
}

void Ps2Mouse::queue_packet() {
    int32_t x = std::clamp(m_dx, -kMaxDelta, kMaxDelta);
    int32_t y = std::clamp(m_dy, -kMaxDelta, kMaxDelta);
    m_dx -= x;
    m_dy -= y;
    uint8_t b0 = static_cast<uint8_t>(0x08 | (m_buttons & (kLeft | kRight | kMiddle)));
    if (m_scaling_2to1 && !m_remote) {
        x = scale_2to1(x);
        y = scale_2to1(y);
    }
    if (x > kMaxDelta || x < -kMaxDelta) {
        b0 |= 0x40;  // X overflow
        x = std::clamp(x, -kMaxDelta, kMaxDelta);
    }
    if (y > kMaxDelta || y < -kMaxDelta) {
        b0 |= 0x80;  // Y overflow
        y = std::clamp(y, -kMaxDelta, kMaxDelta);
    }
    if (x < 0) b0 |= 0x10;
    if (y < 0) b0 |= 0x20;
    m_packets.push_back(b0);
    m_packets.push_back(static_cast<uint8_t>(x));
    m_packets.push_back(static_cast<uint8_t>(y));
    if (m_id == 3) {
        int32_t z = std::clamp(m_dz, -127, 127);
        m_dz -= z;
        m_packets.push_back(static_cast<uint8_t>(z));
    } else if (m_id == 4) {
        int32_t z = std::clamp(m_dz, -8, 7);
        m_dz -= z;
        uint8_t b3 = static_cast<uint8_t>(z & 0x0F);
        if (m_buttons & kSide) b3 |= 0x10;
        if (m_buttons & kExtra) b3 |= 0x20;
        m_packets.push_back(b3);
    } else {
        m_dz = 0;  // no wheel on a plain PS/2 mouse
    }
    m_buttons_changed = false;
}

void Ps2Mouse::flush_motion() {
    if (!m_enabled || m_remote || m_wrap) return;
    while (motion_pending() && m_packets.size() + packet_size() <= kQueueSize)
        queue_packet();
}

void Ps2Mouse::mouse_event(int32_t dx, int32_t dy, int32_t dz, uint8_t buttons) {
    // Bounded so that accumulation cannot overflow however long the guest ignores the mouse.
    constexpr int32_t kLimit = 1 << 20;
    m_dx = std::clamp(m_dx + std::clamp(dx, -kLimit, kLimit), -kLimit, kLimit);
    m_dy = std::clamp(m_dy - std::clamp(dy, -kLimit, kLimit), -kLimit, kLimit);
    m_dz = std::clamp(m_dz + std::clamp(dz, -kLimit, kLimit), -kLimit, kLimit);
    buttons &= (m_id == 4 ? 0x1F : 0x07);
    if (buttons != m_buttons) {
        m_buttons = buttons;
        m_buttons_changed = true;
    }
    flush_motion();
}

void Ps2Mouse::write(uint8_t byte) {
    if (m_wrap && byte != kCmdResetWrap && byte != kCmdReset) {
        reply(byte);  // wrap mode echoes everything else
        return;
    }
    // A command aborts packets not yet read, so no packet is split around its reply.
    m_packets.clear();
    if (m_pending != 0) {
        uint8_t command = m_pending;
        m_pending = 0;
        if (command == kCmdSampleRate) {
            m_rate = byte;
            m_rate_history[0] = m_rate_history[1];
            m_rate_history[1] = m_rate_history[2];
            m_rate_history[2] = byte;
            // IntelliMouse: rates 200, 100, 80 unlock the wheel; 200, 200, 80 then five buttons.
            if (m_rate_history[0] == 200 && m_rate_history[1] == 100 && m_rate_history[2] == 80 && m_id == 0)
                m_id = 3;
            else if (m_rate_history[0] == 200 && m_rate_history[1] == 200 && m_rate_history[2] == 80 &&
                     m_id == 3)
                m_id = 4;
            reply(kAck);
            return;
        }
        if (command == kCmdSetResolution) {
            m_resolution = byte & 0x03;
            reply(kAck);
            return;
        }
    }
    switch (byte) {
        case kCmdReset:
            power_on();
            reply(kAck);
            reply(kBatOk);
            reply(0x00);  // device ID after BAT
            return;
        case kCmdResend:
            reply(m_last_sent);
            return;
        case kCmdDefaults:
            reset_defaults();
            reply(kAck);
            return;
        case kCmdDisable:
            m_enabled = false;
            m_dx = m_dy = m_dz = 0;
            reply(kAck);
            return;
        case kCmdEnable:
            m_enabled = true;
            m_dx = m_dy = m_dz = 0;
            m_buttons_changed = false;
            reply(kAck);
            return;
        case kCmdSampleRate:
        case kCmdSetResolution:
            m_pending = byte;
            reply(kAck);
            return;
        case kCmdGetId:
            reply(kAck);
            reply(m_id);
            return;
        case kCmdRemoteMode:
            m_remote = true;
            m_dx = m_dy = m_dz = 0;
            reply(kAck);
            return;
        case kCmdStreamMode:
            m_remote = false;
            m_dx = m_dy = m_dz = 0;
            reply(kAck);
            return;
        case kCmdWrap:
            m_wrap = true;
            reply(kAck);
            return;
        case kCmdResetWrap:
            m_wrap = false;
            reply(kAck);
            return;
        case kCmdReadData: {
            reply(kAck);
            m_buttons_changed = true;  // a packet even without motion
            queue_packet();
            // The packet answers the command: it goes out with the replies.
            while (!m_packets.empty()) {
                reply(m_packets.front());
                m_packets.pop_front();
            }
            return;
        }
        case kCmdStatus: {
            reply(kAck);
            uint8_t status = 0;
            if (m_remote) status |= 0x40;
            if (m_enabled) status |= 0x20;
            if (m_scaling_2to1) status |= 0x10;
            if (m_buttons & kLeft) status |= 0x04;
            if (m_buttons & kMiddle) status |= 0x02;
            if (m_buttons & kRight) status |= 0x01;
            reply(status);
            reply(m_resolution);
            reply(m_rate);
            return;
        }
        case kCmdScaling2to1:
            m_scaling_2to1 = true;
            reply(kAck);
            return;
        case kCmdScaling1to1:
            m_scaling_2to1 = false;
            reply(kAck);
            return;
        default:
            reply(kResend);
            return;
    }
}

nlohmann::json Ps2Mouse::save_state() const {
    std::vector<uint8_t> replies(m_replies.begin(), m_replies.end());
    std::vector<uint8_t> packets(m_packets.begin(), m_packets.end());
    return {
        {"version", kStateVersion},
        {"replies", bytes_to_hex(replies)},
        {"packets", bytes_to_hex(packets)},
        {"pending", m_pending},
        {"enabled", m_enabled},
        {"remote", m_remote},
        {"wrap", m_wrap},
        {"scaling_2to1", m_scaling_2to1},
        {"resolution", m_resolution},
        {"rate", m_rate},
        {"id", m_id},
        {"rate_history", bytes_to_hex(m_rate_history, 3)},
        {"buttons", m_buttons},
        {"buttons_changed", m_buttons_changed},
        {"dx", m_dx},
        {"dy", m_dy},
        {"dz", m_dz},
        {"last_sent", m_last_sent},
    };
}

Status Ps2Mouse::restore_state(const nlohmann::json& state) {
    StateReader r(state, "i8042 mouse", kStateVersion);
    auto replies = r.bytes("replies", kReplyLimit);
    auto packets = r.bytes("packets", kQueueSize);
    auto pending = static_cast<uint8_t>(r.number("pending", 0xFF));
    bool enabled = r.boolean("enabled");
    bool remote = r.boolean("remote");
    bool wrap = r.boolean("wrap");
    bool scaling = r.boolean("scaling_2to1");
    auto resolution = static_cast<uint8_t>(r.number("resolution", 3));
    auto rate = static_cast<uint8_t>(r.number("rate", 0xFF));
    auto id = static_cast<uint8_t>(r.number("id", 4));
    auto history = r.bytes("rate_history", 3, 3);
    auto buttons = static_cast<uint8_t>(r.number("buttons", 0x1F));
    bool changed = r.boolean("buttons_changed");
    int64_t dx = r.signed_number("dx");
    int64_t dy = r.signed_number("dy");
    int64_t dz = r.signed_number("dz");
    auto last = static_cast<uint8_t>(r.number("last_sent", 0xFF));
    constexpr int64_t kLimit = 1 << 20;
    if (r.ok() && (id == 1 || id == 2))
        return make_error("i8042 mouse: cannot restore state: device ID {} is not offered", id);
    if (r.ok() && pending != 0 && pending != kCmdSampleRate && pending != kCmdSetResolution)
        return make_error("i8042 mouse: cannot restore state: 0x{:02x} takes no argument", pending);
    if (r.ok() && (std::abs(dx) > kLimit || std::abs(dy) > kLimit || std::abs(dz) > kLimit))
        return make_error("i8042 mouse: cannot restore state: accumulated motion out of range");
    VIREO_TRY(r.status());
    m_replies.assign(replies.begin(), replies.end());
    m_packets.assign(packets.begin(), packets.end());
    m_pending = pending;
    m_enabled = enabled;
    m_remote = remote;
    m_wrap = wrap;
    m_scaling_2to1 = scaling;
    m_resolution = resolution;
    m_rate = rate;
    m_id = id;
    std::copy(history.begin(), history.end(), m_rate_history);
    m_buttons = buttons;
    m_buttons_changed = changed;
    m_dx = static_cast<int32_t>(dx);
    m_dy = static_cast<int32_t>(dy);
    m_dz = static_cast<int32_t>(dz);
    m_last_sent = last;
    return {};
}

}  // namespace vireo::devices
