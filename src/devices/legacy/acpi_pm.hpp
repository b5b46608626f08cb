// AcpiPm: the ACPI fixed hardware a non-hardware-reduced platform has: the PM1a event block
// (PM1_STS/PM1_EN), the PM1a control block (SCI_EN, SLP_TYP/SLP_EN) and the 24-bit PM timer,
// with the SCI raised through an IrqLine. The power button is a fixed feature, so
// press_power_button() is what lets the API shut a guest down cleanly.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/legacy/clock.hpp"
#include "devices/legacy/guest_errors.hpp"
#include "devices/snapshot.hpp"

namespace vireo::devices {

class AcpiPm final : public BusDevice, public StatefulDevice {
  public:
    // One bus range covers the three blocks; offsets inside it (ACPI 6.5 §4.8.3).
    static constexpr uint64_t kPm1EventOffset = 0;    // PM1_STS (2 bytes), PM1_EN (2 bytes)
    static constexpr uint64_t kPm1ControlOffset = 4;  // PM1_CNT (2 bytes)
    static constexpr uint64_t kPmTimerOffset = 8;     // PM_TMR (4 bytes, read-only)
    static constexpr uint64_t kPortCount = 12;
    static constexpr uint8_t kPm1EventLength = 4;
    static constexpr uint8_t kPm1ControlLength = 2;
    static constexpr uint8_t kPmTimerLength = 4;

    // The SLP_TYP value the DSDT's \_S5 package carries and this device powers off on.
    static constexpr uint8_t kSlpTypS5 = 5;
    // ACPI 6.5 §4.8.3.3: the PM timer runs at 3.579545 MHz.
    static constexpr uint64_t kPmTimerHz = 3'579'545;

    // PM1 status/enable bits (ACPI 6.5 Tables 4.16, 4.17) and control bits (Table 4.18).
    static constexpr uint16_t kTmrSts = 1 << 0;
    static constexpr uint16_t kBmSts = 1 << 4;
    static constexpr uint16_t kGblSts = 1 << 5;
    static constexpr uint16_t kPwrBtnSts = 1 << 8;
    static constexpr uint16_t kSlpBtnSts = 1 << 9;
    static constexpr uint16_t kRtcSts = 1 << 10;
    static constexpr uint16_t kPciExpWakeSts = 1 << 14;
    static constexpr uint16_t kWakSts = 1 << 15;
    static constexpr uint16_t kSciEn = 1 << 0;
    static constexpr uint16_t kBmRld = 1 << 1;
    static constexpr uint16_t kGblRls = 1 << 2;
    static constexpr uint16_t kSlpTypShift = 10;
    static constexpr uint16_t kSlpTypMask = 7 << kSlpTypShift;
    static constexpr uint16_t kSlpEn = 1 << 13;

    struct Callbacks {
        // The guest entered S5 (power off). Called without the device's lock.
        std::function<void()> power_off;
    };

    struct Counters {
        uint64_t sci_raised = 0;              // SCI rising edges
        uint64_t power_button_presses = 0;    // press_power_button() calls
        uint64_t sleep_requests_ignored = 0;  // SLP_EN with a state other than S5
        uint64_t guest_errors = 0;
    };

    // `sci` is the SCI line (IRQ 9, level, active high); `clock` drives the PM timer. `timer`
    // (optional) is only armed while the guest has TMR_EN set, to raise the SCI when timer
    // bit 23 toggles; without it TMR_STS still sets, but only reads notice it.
    AcpiPm(std::shared_ptr<IrqLine> sci, const Clock& clock, Callbacks callbacks, TimerArm timer = {});

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // The power button was pressed: sets PWRBTN_STS. Returns whether the guest will see an SCI
    // for it now (it has enabled the button and SCI_EN is set); either way the status stays set
    // for the guest to find.
    bool press_power_button();
    // The timer armed through TimerArm fired (early or late calls are harmless).
    void on_timer();
    // Power-on state.
    void reset();

    // The current PM timer value (24 bits), as the guest would read it.
    uint32_t timer_value() const;
    Counters counters() const;

    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;

  private:
    uint64_t ticks_locked() const;
    uint16_t status_locked() const;
    uint8_t read_byte(uint64_t offset) const;
    // Returns true when the guest asked for S5.
    bool write_register(uint64_t reg_offset, uint16_t value, uint16_t mask);
    void update_sci();
    void rearm_timer();
    void reset_locked();

    std::shared_ptr<IrqLine> m_sci;
    const Clock& m_clock;
    Callbacks m_callbacks;
    TimerArm m_timer;

    mutable std::mutex m_lock;
    uint16_t m_status = 0;  // latched status bits other than TMR_STS
    uint16_t m_enable = 0;
    uint16_t m_control = 0;
    int64_t m_timer_base_ns = 0;     // monotonic time at which the PM timer read 0
    uint64_t m_tmr_sts_cleared = 0;  // tick count when the guest last cleared TMR_STS
    bool m_sci_level = false;
    bool m_timer_armed = false;
    Counters m_counters;
    GuestErrors m_errors{"acpi-pm"};
};

}  // namespace vireo::devices
