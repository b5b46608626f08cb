// CmosRtc: the PC's MC146818 real-time clock and its 128 bytes of CMOS RAM at ports 0x70/0x71,
// with time from an injected clock, BCD/binary and 12/24-hour modes, the update-in-progress
// window, periodic/alarm/update interrupts, and the memory-size bytes PC firmware reports.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/legacy/clock.hpp"
#include "devices/legacy/guest_errors.hpp"
#include "devices/snapshot.hpp"

namespace vireo::devices {

// Register indexes (MC146818A datasheet, "Address Map"; PC conventions for RAM bytes).
enum class CmosReg : uint8_t {
    kSeconds = 0x00,
    kSecondsAlarm = 0x01,
    kMinutes = 0x02,
    kMinutesAlarm = 0x03,
    kHours = 0x04,
    kHoursAlarm = 0x05,
    kDayOfWeek = 0x06,  // 1 = Sunday
    kDayOfMonth = 0x07,
    kMonth = 0x08,
    kYear = 0x09,            // 0-99
    kRegA = 0x0A,            // UIP (7), divider (6-4), rate select (3-0)
    kRegB = 0x0B,            // SET, PIE, AIE, UIE, SQWE, DM, 24/12, DSE
    kRegC = 0x0C,            // IRQF, PF, AF, UF; read clears
    kRegD = 0x0D,            // VRT
    kBaseMemLow = 0x15,      // base memory in KiB (640)
    kExtMemLow = 0x17,       // KiB above 1 MiB, up to 65535
    kExtMem2Low = 0x30,      // the same again (the POST's copy)
    kCentury = 0x32,         // FADT CENTURY points here
    kHighMemLow = 0x34,      // 64 KiB units between 16 MiB and the end of RAM below 4 GiB
    kAbove4gLow = 0x5B,      // 64 KiB units above 4 GiB (3 bytes)
    kCpuCountMinus1 = 0x5F,  // number of CPUs - 1 (as QEMU reports to SeaBIOS)
};

class CmosRtc final : public BusDevice, public StatefulDevice {
  public:
    static constexpr uint64_t kPortCount = 2;  // index at +0, data at +1
    static constexpr size_t kRamSize = 128;
    // The UIP bit is set this long before each update (datasheet: tBUC = 244 us).
    static constexpr int64_t kUipWindowNs = 244'141;

    // Reported in the memory-size bytes, as PC firmware and QEMU do.
    struct MemoryInfo {
        uint64_t ram_below_4g = 0;  // bytes of RAM below 4 GiB
        uint64_t ram_above_4g = 0;  // bytes of RAM from 4 GiB up
        uint32_t cpu_count = 1;
    };

    struct Counters {
        uint64_t interrupts = 0;  // IRQ 8 rising edges
        uint64_t guest_errors = 0;
    };

    // `irq` is ISA IRQ 8. `clock` gives host time: the RTC starts at clock.realtime_ns() (UTC)
    // and then advances with clock.monotonic_ns(), so host clock steps do not reach the guest.
    // `timer` (optional) is armed while an enabled interrupt is due.
    CmosRtc(std::shared_ptr<IrqLine> irq, const Clock& clock, MemoryInfo memory, TimerArm timer = {});

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // The timer armed through TimerArm fired (early or late calls are harmless).
    void on_timer();
    // The RESET pin (VM reset): interrupt enables and flags clear; time and RAM are kept.
    void reset();

    // The guest's current RTC time in nanoseconds since the Unix epoch (what the registers say,
    // with the sub-second part of the divider chain).
    int64_t guest_time_ns() const;
    // Whether the guest has set the NMI-disable bit (bit 7 of the index port).
    bool nmi_disabled() const;
    Counters counters() const;

    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;

  private:
    int64_t now_guest_ns() const;
    bool divider_running() const;
    bool updates_enabled() const;
    uint8_t read_register(uint8_t index);
    void write_register(uint8_t index, uint8_t value);
    // Time registers (0-9 and the century) for guest time `seconds`, in the current modes.
    std::array<uint8_t, 10> encode_time(int64_t seconds, uint8_t* century) const;
    // Applies a time-register image; false (and a counted guest error) if it is not a date.
    bool set_time_from(const std::array<uint8_t, 10>& regs, uint8_t century);
    std::optional<uint8_t> decode(uint8_t value) const;
    // The first second after `after` whose time matches the alarm registers, if any.
    std::optional<int64_t> next_alarm_after(int64_t after) const;
    // Brings PF/UF/AF up to now, raises IRQF and the line as enabled, re-arms the timer.
    void catch_up();
    void rearm_timer();
    void update_irq();
    void resync_event_marks();

    std::shared_ptr<IrqLine> m_irq;
    const Clock& m_clock;
    TimerArm m_timer;

    mutable std::mutex m_lock;
    std::array<uint8_t, kRamSize> m_ram{};  // RAM bytes and the alarm/control registers' storage
    uint8_t m_index = 0;
    bool m_nmi_disabled = false;
    // Guest time = m_base_guest_ns + (monotonic now - m_base_mono_ns) while the divider runs;
    // frozen at m_base_guest_ns while it is held in reset.
    int64_t m_base_guest_ns = 0;
    int64_t m_base_mono_ns = 0;
    // While SET is 1 the time registers hold what the guest wrote, not the running time.
    std::array<uint8_t, 10> m_set_image{};
    uint8_t m_set_century = 0;
    uint8_t m_flags = 0;               // register C
    int64_t m_last_update_second = 0;  // last second whose update cycle was accounted for
    int64_t m_last_periodic_tick = 0;  // last periodic period index accounted for
    bool m_irq_level = false;
    bool m_timer_armed = false;
    Counters m_counters;
    GuestErrors m_errors{"rtc"};
};

}  // namespace vireo::devices
