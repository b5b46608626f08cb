// I8042: the PC keyboard controller at ports 0x60 (data) and 0x64 (status/command), with a
// PS/2 keyboard on its first port and a PS/2 mouse on its aux port, IRQ 1 and IRQ 12, set 2 ->
// set 1 translation, and the reset line (command 0xFE) that restarts the machine. Linux's
// i8042 and atkbd/psmouse drivers probe and use it as they would real hardware.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/legacy/guest_errors.hpp"
#include "devices/legacy/ps2_keyboard.hpp"
#include "devices/legacy/ps2_mouse.hpp"
#include "devices/snapshot.hpp"

namespace vireo::devices {

class I8042 final : public BusDevice, public StatefulDevice {
  public:
    // One bus range from 0x60: offset 0 is the data port, offset 4 the status/command port.
    // 0x61 (the speaker/PIT gate port) is handled by KVM's in-kernel PIT and never arrives.
    static constexpr uint64_t kDataOffset = 0;
    static constexpr uint64_t kCommandOffset = 4;
    static constexpr uint64_t kPortCount = 5;

    // Status register bits (IBM PS/2 Technical Reference, "Keyboard/Auxiliary Device Controller").
    static constexpr uint8_t kStatusOutputFull = 1 << 0;
    static constexpr uint8_t kStatusInputFull = 1 << 1;
    static constexpr uint8_t kStatusSystem = 1 << 2;
    static constexpr uint8_t kStatusCommand = 1 << 3;   // last write went to 0x64
    static constexpr uint8_t kStatusUnlocked = 1 << 4;  // keyboard not inhibited
    static constexpr uint8_t kStatusAuxData = 1 << 5;   // output buffer holds an aux byte
    // Command byte (controller RAM byte 0) bits.
    static constexpr uint8_t kCtrKbdInt = 1 << 0;
    static constexpr uint8_t kCtrAuxInt = 1 << 1;
    static constexpr uint8_t kCtrSystem = 1 << 2;
    static constexpr uint8_t kCtrKbdDisable = 1 << 4;
    static constexpr uint8_t kCtrAuxDisable = 1 << 5;
    static constexpr uint8_t kCtrTranslate = 1 << 6;
    // What a PC BIOS leaves behind: translation on, system flag set, both ports enabled with
    // interrupts.
    static constexpr uint8_t kInitialCtr = kCtrTranslate | kCtrSystem | kCtrAuxInt | kCtrKbdInt;

    struct Counters {
        uint64_t kbd_interrupts = 0;  // IRQ 1 rising edges
        uint64_t aux_interrupts = 0;  // IRQ 12 rising edges
        uint64_t keys_dropped = 0;    // key events lost to a full keyboard buffer
        uint64_t resets = 0;          // reset pulses requested
        uint64_t guest_errors = 0;
    };

    // `kbd_irq` is ISA IRQ 1, `aux_irq` IRQ 12; `reset` is called (without the lock) when the
    // guest pulses the reset line.
    I8042(std::shared_ptr<IrqLine> kbd_irq, std::shared_ptr<IrqLine> aux_irq, std::function<void()> reset);

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // A host key press or release, by Linux key code (see scancodes.hpp for HID and qnum).
    // Returns false when the keyboard did not take it (scanning disabled, no scan code, full).
    bool key_event(uint16_t keycode, bool pressed);
    // Host pointer motion (dx right, dy down, dz wheel down) and buttons (Ps2Mouse::kLeft ...).
    void mouse_event(int32_t dx, int32_t dy, int32_t dz, uint8_t buttons);

    // Power-on state (the VM was reset): controller, keyboard and mouse.
    void reset();

    uint8_t keyboard_leds() const;
    Counters counters() const;

    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;

  private:
    enum class Source : uint8_t { kController, kKeyboard, kAux };

    uint8_t read_data();
    // Both return true when the guest asked for a reset.
    bool write_data(uint8_t value);
    bool write_command(uint8_t command);
    void controller_reply(uint8_t byte, Source source = Source::kController);
    // Moves the next byte into the empty output buffer: controller replies first, then the
    // keyboard (through translation) and the mouse, each only while its port is enabled.
    void fill_output();
    void update_irqs();
    uint8_t status() const;
    uint8_t ctr() const { return m_ram[0]; }

    std::shared_ptr<IrqLine> m_kbd_irq;
    std::shared_ptr<IrqLine> m_aux_irq;
    std::function<void()> m_reset;

    mutable std::mutex m_lock;
    std::array<uint8_t, 32> m_ram{};  // controller RAM; byte 0 is the command byte
    uint8_t m_output = 0;
    Source m_output_source = Source::kController;
    bool m_output_full = false;
    bool m_last_was_command = false;
    uint8_t m_pending_command = 0;                     // command waiting for its data byte (0: none)
    uint8_t m_output_port = 0x03;                      // bit 0: reset line high (running), bit 1: A20 enabled
    bool m_xlate_break = false;                        // translation saw an F0 prefix
    std::deque<std::pair<uint8_t, Source>> m_replies;  // controller responses
    Ps2Keyboard m_keyboard;
    Ps2Mouse m_mouse;
    bool m_kbd_level = false;
    bool m_aux_level = false;
    Counters m_counters;
    GuestErrors m_errors{"i8042"};
};

}  // namespace vireo::devices
