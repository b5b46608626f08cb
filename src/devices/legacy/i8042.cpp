// i8042 keyboard controller: status and command byte, controller commands, output buffer
// arbitration between controller, keyboard and aux port, translation, IRQ 1/12, reset pulse.
#include "devices/legacy/i8042.hpp"

#include <fmt/format.h>

#include "devices/legacy/device_state.hpp"
#include "devices/legacy/scancodes.hpp"

namespace vireo::devices {
namespace {

// Controller commands (port 0x64).
constexpr uint8_t kCmdReadRam = 0x20;   // 0x20-0x3F: read RAM byte (0x20: command byte)
constexpr uint8_t kCmdWriteRam = 0x60;  // 0x60-0x7F: write RAM byte (0x60: command byte)
constexpr uint8_t kCmdPasswordTest = 0xA4;
constexpr uint8_t kCmdAuxDisable = 0xA7;
constexpr uint8_t kCmdAuxEnable = 0xA8;
constexpr uint8_t kCmdAuxTest = 0xA9;
constexpr uint8_t kCmdSelfTest = 0xAA;
constexpr uint8_t kCmdKbdTest = 0xAB;
constexpr uint8_t kCmdKbdDisable = 0xAD;
constexpr uint8_t kCmdKbdEnable = 0xAE;
constexpr uint8_t kCmdReadInput = 0xC0;
constexpr uint8_t kCmdReadOutput = 0xD0;
constexpr uint8_t kCmdWriteOutput = 0xD1;
constexpr uint8_t kCmdWriteKbdBuffer = 0xD2;
constexpr uint8_t kCmdWriteAuxBuffer = 0xD3;  // Linux's AUX_LOOP
constexpr uint8_t kCmdWriteAux = 0xD4;
constexpr uint8_t kCmdA20Disable = 0xDD;
constexpr uint8_t kCmdA20Enable = 0xDF;
constexpr uint8_t kCmdReadTestInputs = 0xE0;
constexpr uint8_t kCmdPulseFirst = 0xF0;  // 0xF0-0xFF: pulse output port bits 0-3 low

constexpr uint8_t kSelfTestOk = 0x55;
constexpr uint8_t kInterfaceOk = 0x00;
constexpr uint8_t kNoPassword = 0xF1;
constexpr uint8_t kOutputPortReset = 0x01;  // 0 resets the CPU
constexpr uint8_t kOutputPortA20 = 0x02;
constexpr uint8_t kOutputPortKbdFull = 0x10;
constexpr uint8_t kOutputPortAuxFull = 0x20;
constexpr size_t kReplyLimit = 16;
constexpr int kStateVersion = 1;

}  // namespace

I8042::I8042(std::shared_ptr<IrqLine> kbd_irq, std::shared_ptr<IrqLine> aux_irq, std::function<void()> reset)
    : m_kbd_irq(std::move(kbd_irq)), m_aux_irq(std::move(aux_irq)), m_reset(std::move(reset)) {
    m_ram[0] = kInitialCtr;
}

void I8042::reset() {
    std::lock_guard lock(m_lock);
    m_ram.fill(0);
    m_ram[0] = kInitialCtr;
    m_output = 0;
    m_output_full = false;
    m_output_source = Source::kController;
    m_last_was_command = false;
    m_pending_command = 0;
    m_output_port = kOutputPortReset | kOutputPortA20;
    m_xlate_break = false;
    m_replies.clear();
    m_keyboard.power_on();
    m_mouse.power_on();
    update_irqs();
}

uint8_t I8042::keyboard_leds() const {
    std::lock_guard lock(m_lock);
    return m_keyboard.leds();
}

I8042::Counters I8042::counters() const {
    std::lock_guard lock(m_lock);
    Counters c = m_counters;
    c.keys_dropped = m_keyboard.keys_dropped();
    c.guest_errors = m_errors.count();
    return c;
}

uint8_t I8042::status() const {
    uint8_t s = kStatusUnlocked;
    if (m_output_full) s |= kStatusOutputFull;
    if (m_output_full && m_output_source == Source::kAux) s |= kStatusAuxData;
    if (ctr() & kCtrSystem) s |= kStatusSystem;
    if (m_last_was_command) s |= kStatusCommand;
    return s;
}

void I8042::controller_reply(uint8_t byte, Source source) {
    if (m_replies.size() < kReplyLimit) m_replies.emplace_back(byte, source);
}

void I8042::fill_output() {
    while (!m_output_full) {
        if (!m_replies.empty()) {
            m_output = m_replies.front().first;
            m_output_source = m_replies.front().second;
            m_replies.pop_front();
            m_output_full = true;
            break;
        }
        if (!(ctr() & kCtrKbdDisable) && m_keyboard.has_output()) {
            uint8_t byte = m_keyboard.pop_output();
            if (ctr() & kCtrTranslate) {
                // Set 2 -> set 1: an F0 break prefix is swallowed and sets bit 7 of the next code.
                if (byte == 0xF0) {
                    m_xlate_break = true;
                    continue;
                }
                byte = scancodes::translate_set2_to_set1(byte);
                if (m_xlate_break) {
                    byte |= 0x80;
                    m_xlate_break = false;
                }
            }
            m_output = byte;
            m_output_source = Source::kKeyboard;
            m_output_full = true;
            break;
        }
        if (!(ctr() & kCtrAuxDisable) && m_mouse.has_output()) {
            m_output = m_mouse.pop_output();
            m_output_source = Source::kAux;
            m_output_full = true;
            m_mouse.flush_motion();  // room freed: more motion may become packets
            break;
        }
        break;
    }
    if (m_output_full) {
        m_output_port =
            static_cast<uint8_t>((m_output_port & ~(kOutputPortKbdFull | kOutputPortAuxFull)) |
                                 (m_output_source == Source::kAux ? kOutputPortAuxFull : kOutputPortKbdFull));
    } else {
        m_output_port &= static_cast<uint8_t>(~(kOutputPortKbdFull | kOutputPortAuxFull));
    }
    update_irqs();
}

void I8042::update_irqs() {
    // The output-buffer-full line of each port drives its IRQ when the command byte enables it;
    // controller replies arrive as keyboard-port data.
    bool kbd = m_output_full && m_output_source != Source::kAux && (ctr() & kCtrKbdInt);
    bool aux = m_output_full && m_output_source == Source::kAux && (ctr() & kCtrAuxInt);
    if (kbd != m_kbd_level) {
        m_kbd_level = kbd;
        if (kbd) ++m_counters.kbd_interrupts;
        m_kbd_irq->set_level(kbd);
    }
    if (aux != m_aux_level) {
        m_aux_level = aux;
        if (aux) ++m_counters.aux_interrupts;
        m_aux_irq->set_level(aux);
    }
}

uint8_t I8042::read_data() {
    uint8_t value = m_output;  // reading an empty buffer returns the last byte again
    if (m_output_full) {
        m_output_full = false;
        update_irqs();  // the line drops before the next byte raises it again: a fresh edge
        fill_output();
    }
    return value;
}

void I8042::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset + i;
        if (port == kDataOffset) {
            data[i] = read_data();
        } else if (port == kCommandOffset) {
            data[i] = status();
        } else {
            data[i] = 0xFF;
        }
    }
}

void I8042::write(uint64_t offset, std::span<const uint8_t> data) {
    bool reset = false;
    {
        std::lock_guard lock(m_lock);
        for (size_t i = 0; i < data.size(); ++i) {
            uint64_t port = offset + i;
            if (port == kDataOffset) {
                m_last_was_command = false;
                reset |= write_data(data[i]);
            } else if (port == kCommandOffset) {
                m_last_was_command = true;
                reset |= write_command(data[i]);
            } else {
                m_errors.report("write to an unused keyboard controller port",
                                fmt::format("0x{:x}", 0x60 + port));
            }
        }
        fill_output();
        if (reset) ++m_counters.resets;
    }
    if (reset && m_reset) m_reset();
}

bool I8042::write_data(uint8_t value) {
    uint8_t command = m_pending_command;
    m_pending_command = 0;
    if (command >= kCmdWriteRam && command < kCmdWriteRam + 0x20) {
        m_ram[command - kCmdWriteRam] = value;
        return false;
    }
    switch (command) {
        case kCmdWriteOutput:
            m_output_port = static_cast<uint8_t>((value & ~(kOutputPortKbdFull | kOutputPortAuxFull)) |
                                                 (m_output_port & (kOutputPortKbdFull | kOutputPortAuxFull)));
            if (!(value & kOutputPortA20)) m_errors.report("A20 gate disabled (ignored: A20 is always on)");
            if (!(value & kOutputPortReset)) {
                // Writing the reset line low resets the CPU, as pulsing it does.
                m_output_port |= kOutputPortReset;
                return true;
            }
            return false;
        case kCmdWriteKbdBuffer:
            controller_reply(value, Source::kKeyboard);
            return false;
        case kCmdWriteAuxBuffer:
            controller_reply(value, Source::kAux);
            return false;
        case kCmdWriteAux:
            // Sending to the mouse enables its interface (as the 8042 does to clock the byte out).
            m_ram[0] &= static_cast<uint8_t>(~kCtrAuxDisable);
            m_mouse.write(value);
            return false;
        default:
            // Plain data goes to the keyboard, which also enables the keyboard interface.
            m_ram[0] &= static_cast<uint8_t>(~kCtrKbdDisable);
            m_keyboard.write(value);
            return false;
    }
}

bool I8042::write_command(uint8_t command) {
    m_pending_command = 0;
    if (command >= kCmdReadRam && command < kCmdReadRam + 0x20) {
        controller_reply(m_ram[command - kCmdReadRam]);
        return false;
    }
    if (command >= kCmdWriteRam && command < kCmdWriteRam + 0x20) {
        m_pending_command = command;
        return false;
    }
    if (command >= kCmdPulseFirst) {
        // Bits 0-3 clear = pulse that output line low; bit 0 is the CPU reset line.
        return !(command & 0x01);
    }
    switch (command) {
        case kCmdPasswordTest:
            controller_reply(kNoPassword);
            return false;
        case kCmdAuxDisable:
            m_ram[0] |= kCtrAuxDisable;
            return false;
        case kCmdAuxEnable:
            m_ram[0] &= static_cast<uint8_t>(~kCtrAuxDisable);
            return false;
        case kCmdAuxTest:
        case kCmdKbdTest:
            controller_reply(kInterfaceOk);
            return false;
        case kCmdSelfTest:
            m_ram[0] |= kCtrSystem;  // a passed self-test sets the system flag
            controller_reply(kSelfTestOk);
            return false;
        case kCmdKbdDisable:
            m_ram[0] |= kCtrKbdDisable;
            return false;
        case kCmdKbdEnable:
            m_ram[0] &= static_cast<uint8_t>(~kCtrKbdDisable);
            return false;
        case kCmdReadInput:
            controller_reply(0x80);  // bit 7: keyboard not inhibited
            return false;
        case kCmdReadOutput:
            controller_reply(m_output_port);
            return false;
        case kCmdWriteOutput:
        case kCmdWriteKbdBuffer:
        case kCmdWriteAuxBuffer:
        case kCmdWriteAux:
            m_pending_command = command;
            return false;
        case kCmdA20Disable:
            m_errors.report("A20 gate disabled (ignored: A20 is always on)");
            return false;
        case kCmdA20Enable:
            return false;
        case kCmdReadTestInputs:
            controller_reply(0x00);
            return false;
        default:
            m_errors.report("unknown controller command", fmt::format("0x{:02x}", command));
            return false;
    }
}

bool I8042::key_event(uint16_t keycode, bool pressed) {
    std::lock_guard lock(m_lock);
    bool taken = m_keyboard.key_event(keycode, pressed);
    fill_output();
    return taken;
}

void I8042::mouse_event(int32_t dx, int32_t dy, int32_t dz, uint8_t buttons) {
    std::lock_guard lock(m_lock);
    m_mouse.mouse_event(dx, dy, dz, buttons);
    fill_output();
}

nlohmann::json I8042::save_state() const {
    std::lock_guard lock(m_lock);
    nlohmann::json replies = nlohmann::json::array();
    for (const auto& [byte, source] : m_replies)
        replies.push_back({byte, static_cast<int>(source)});
    return {
        {"version", kStateVersion},
        {"ram", bytes_to_hex(m_ram.data(), m_ram.size())},
        {"output", m_output},
        {"output_source", static_cast<unsigned>(m_output_source)},
        {"output_full", m_output_full},
        {"last_was_command", m_last_was_command},
        {"pending_command", m_pending_command},
        {"output_port", m_output_port},
        {"xlate_break", m_xlate_break},
        {"replies", replies},
        {"keyboard", m_keyboard.save_state()},
        {"mouse", m_mouse.save_state()},
    };
}

Status I8042::restore_state(const nlohmann::json& state) {
    StateReader r(state, "i8042", kStateVersion);
    auto ram = r.bytes("ram", 32, 32);
    auto output = static_cast<uint8_t>(r.number("output", 0xFF));
    auto source = static_cast<uint8_t>(r.number("output_source", 2));
    bool full = r.boolean("output_full");
    bool last_cmd = r.boolean("last_was_command");
    auto pending = static_cast<uint8_t>(r.number("pending_command", 0xFF));
    auto port = static_cast<uint8_t>(r.number("output_port", 0xFF));
    bool xlate_break = r.boolean("xlate_break");
    VIREO_TRY(r.status());
    bool pending_ok = pending == 0 || (pending >= kCmdWriteRam && pending < kCmdWriteRam + 0x20) ||
                      pending == kCmdWriteOutput || pending == kCmdWriteKbdBuffer ||
                      pending == kCmdWriteAuxBuffer || pending == kCmdWriteAux;
    if (!pending_ok) return make_error("i8042: cannot restore state: 0x{:02x} takes no data byte", pending);
    const auto& replies_json = state.find("replies");
    if (replies_json == state.end() || !replies_json->is_array() || replies_json->size() > kReplyLimit)
        return make_error("i8042: cannot restore state: \"replies\" is not an array of at most {}",
                          kReplyLimit);
    std::deque<std::pair<uint8_t, Source>> replies;
    for (const auto& entry : *replies_json) {
        auto in_range = [](const nlohmann::json& v, int64_t max) {
            return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= max;
        };
        if (!entry.is_array() || entry.size() != 2 || !in_range(entry[0], 0xFF) || !in_range(entry[1], 2))
            return make_error("i8042: cannot restore state: bad reply entry {}", entry.dump());
        replies.emplace_back(static_cast<uint8_t>(entry[0].get<int64_t>()),
                             static_cast<Source>(entry[1].get<int64_t>()));
    }
    // Sub-devices: restore into copies, commit only if everything is valid.
    Ps2Keyboard keyboard;
    Ps2Mouse mouse;
    auto kbd_it = state.find("keyboard");
    auto mouse_it = state.find("mouse");
    if (kbd_it == state.end() || mouse_it == state.end())
        return make_error("i8042: cannot restore state: keyboard or mouse state is missing");
    VIREO_TRY(keyboard.restore_state(*kbd_it));
    VIREO_TRY(mouse.restore_state(*mouse_it));

    std::lock_guard lock(m_lock);
    std::copy(ram.begin(), ram.end(), m_ram.begin());
    m_output = output;
    m_output_source = static_cast<Source>(source);
    m_output_full = full;
    m_last_was_command = last_cmd;
    m_pending_command = pending;
    m_output_port = port;
    m_xlate_break = xlate_break;
    m_replies = std::move(replies);
    m_keyboard = std::move(keyboard);
    m_mouse = std::move(mouse);
    // Drive both lines to the restored levels even if they look unchanged.
    m_kbd_level = m_output_full && m_output_source != Source::kAux && (ctr() & kCtrKbdInt);
    m_aux_level = m_output_full && m_output_source == Source::kAux && (ctr() & kCtrAuxInt);
    m_kbd_irq->set_level(m_kbd_level);
    m_aux_irq->set_level(m_aux_level);
    return {};
}

}  // namespace vireo::devices
