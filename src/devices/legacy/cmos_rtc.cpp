// MC146818 RTC and CMOS RAM. Register semantics follow the Motorola MC146818A datasheet (and
// the compatible DS12887): the update cycle each second, UIP for 244 us before it, periodic
// interrupts from the 32.768 kHz divider chain, alarms with "don't care" bytes, register C
// flags cleared by reading it.
#include "devices/legacy/cmos_rtc.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "devices/legacy/device_state.hpp"

namespace vireo::devices {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
constexpr int64_t kSecondsPerDay = 86'400;
constexpr int64_t kDividerHz = 32'768;

// Register A
constexpr uint8_t kRegAUip = 0x80;
constexpr uint8_t kRegADividerMask = 0x70;
constexpr uint8_t kRegARateMask = 0x0F;
// Register B
constexpr uint8_t kRegBSet = 0x80;
constexpr uint8_t kRegBPie = 0x40;
constexpr uint8_t kRegBAie = 0x20;
constexpr uint8_t kRegBUie = 0x10;
constexpr uint8_t kRegBSqwe = 0x08;
constexpr uint8_t kRegBBinary = 0x04;  // DM: 1 = binary, 0 = BCD
constexpr uint8_t kRegB24Hour = 0x02;
// Register C
constexpr uint8_t kRegCIrqf = 0x80;
constexpr uint8_t kRegCPf = 0x40;
constexpr uint8_t kRegCAf = 0x20;
constexpr uint8_t kRegCUf = 0x10;
// Register D
constexpr uint8_t kRegDVrt = 0x80;
// Alarm bytes with both top bits set match any value.
constexpr uint8_t kAlarmDontCare = 0xC0;
constexpr uint8_t kHourPm = 0x80;

constexpr uint8_t kIndexMask = 0x7F;
constexpr uint8_t kNmiDisable = 0x80;
constexpr int kStateVersion = 1;

int64_t floor_div(int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t floor_mod(int64_t a, int64_t b) {
    return a - floor_div(a, b) * b;
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level
// Date Algorithms", days_from_civil / civil_from_days).
int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void civil_from_days(int64_t z, int64_t& y, int64_t& m, int64_t& d) {
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y = yoe + era * 400 + (m <= 2);
}

bool is_leap(int64_t y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int64_t days_in_month(int64_t y, int64_t m) {
    static constexpr int64_t kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : kDays[m - 1];
}

uint8_t to_bcd(int64_t v) {
    return static_cast<uint8_t>(((v / 10) << 4) | (v % 10));
}

// Periodic interrupt period in divider ticks for rate select 1..15 (datasheet Table 3, 32.768 kHz
// time base): rates 1 and 2 repeat rates 8 and 9.
int64_t periodic_ticks(uint8_t rate) {
    if (rate == 1) return 128;
    if (rate == 2) return 256;
    return int64_t{1} << (rate - 1);
}

// Guest nanoseconds to divider ticks, floored.
int64_t ns_to_divider_ticks(int64_t ns) {
    auto wide = static_cast<__int128>(ns) * kDividerHz;
    auto q = wide / kNsPerSec;
    if (wide % kNsPerSec != 0 && wide < 0) --q;
    return static_cast<int64_t>(q);
}

// The first nanosecond at or after divider tick `ticks`.
int64_t divider_ticks_to_ns(int64_t ticks) {
    auto wide = static_cast<__int128>(ticks) * kNsPerSec;
    auto q = wide / kDividerHz;
    if (wide % kDividerHz != 0 && wide > 0) ++q;
    return static_cast<int64_t>(q);
}

}  // namespace

CmosRtc::CmosRtc(std::shared_ptr<IrqLine> irq, const Clock& clock, MemoryInfo memory, TimerArm timer)
    : m_irq(std::move(irq)), m_clock(clock), m_timer(std::move(timer)) {
    std::lock_guard lock(m_lock);
    // Power-on values: 32.768 kHz time base, 1024 Hz periodic rate; BCD, 24-hour mode.
    m_ram[uint8_t(CmosReg::kRegA)] = 0x26;
    m_ram[uint8_t(CmosReg::kRegB)] = kRegB24Hour;

    auto put16 = [this](CmosReg reg, uint64_t value) {
        value = std::min<uint64_t>(value, 0xFFFF);
        m_ram[uint8_t(reg)] = static_cast<uint8_t>(value);
        m_ram[uint8_t(reg) + 1] = static_cast<uint8_t>(value >> 8);
    };
    constexpr uint64_t kMiB = 1 << 20;
    put16(CmosReg::kBaseMemLow, 640);
    uint64_t extended_kib = memory.ram_below_4g > kMiB ? (memory.ram_below_4g - kMiB) / 1024 : 0;
    put16(CmosReg::kExtMemLow, extended_kib);
    put16(CmosReg::kExtMem2Low, extended_kib);
    put16(CmosReg::kHighMemLow,
          memory.ram_below_4g > 16 * kMiB ? (memory.ram_below_4g - 16 * kMiB) >> 16 : 0);
    uint64_t above = std::min<uint64_t>(memory.ram_above_4g >> 16, 0xFF'FFFF);
    m_ram[uint8_t(CmosReg::kAbove4gLow)] = static_cast<uint8_t>(above);
    m_ram[uint8_t(CmosReg::kAbove4gLow) + 1] = static_cast<uint8_t>(above >> 8);
    m_ram[uint8_t(CmosReg::kAbove4gLow) + 2] = static_cast<uint8_t>(above >> 16);
    m_ram[uint8_t(CmosReg::kCpuCountMinus1)] =
        static_cast<uint8_t>(std::clamp<uint32_t>(memory.cpu_count, 1, 256) - 1);

    m_base_guest_ns = m_clock.realtime_ns();
    m_base_mono_ns = m_clock.monotonic_ns();
    resync_event_marks();
}

bool CmosRtc::divider_running() const {
    // Divider bits 11x hold the chain in reset (datasheet, "Divider Control").
    return (m_ram[uint8_t(CmosReg::kRegA)] & 0x60) != 0x60;
}

bool CmosRtc::updates_enabled() const {
    return divider_running() && !(m_ram[uint8_t(CmosReg::kRegB)] & kRegBSet);
}

int64_t CmosRtc::now_guest_ns() const {
    if (!divider_running()) return m_base_guest_ns;
    return m_base_guest_ns + (m_clock.monotonic_ns() - m_base_mono_ns);
}

int64_t CmosRtc::guest_time_ns() const {
    std::lock_guard lock(m_lock);
    return now_guest_ns();
}

bool CmosRtc::nmi_disabled() const {
    std::lock_guard lock(m_lock);
    return m_nmi_disabled;
}

CmosRtc::Counters CmosRtc::counters() const {
    std::lock_guard lock(m_lock);
    Counters c = m_counters;
    c.guest_errors = m_errors.count();
    return c;
}

std::array<uint8_t, 10> CmosRtc::encode_time(int64_t seconds, uint8_t* century) const {
    uint8_t reg_b = m_ram[uint8_t(CmosReg::kRegB)];
    bool binary = reg_b & kRegBBinary;
    auto enc = [binary](int64_t v) { return binary ? static_cast<uint8_t>(v) : to_bcd(v); };
    int64_t days = floor_div(seconds, kSecondsPerDay);
    int64_t sod = seconds - days * kSecondsPerDay;
    int64_t y, m, d;
    civil_from_days(days, y, m, d);
    int64_t hour = sod / 3600;
    std::array<uint8_t, 10> regs{};
    regs[uint8_t(CmosReg::kSeconds)] = enc(sod % 60);
    regs[uint8_t(CmosReg::kMinutes)] = enc(sod / 60 % 60);
    if (reg_b & kRegB24Hour) {
        regs[uint8_t(CmosReg::kHours)] = enc(hour);
    } else {
        int64_t h12 = hour % 12 == 0 ? 12 : hour % 12;
        regs[uint8_t(CmosReg::kHours)] = static_cast<uint8_t>(enc(h12) | (hour >= 12 ? kHourPm : 0));
    }
    regs[uint8_t(CmosReg::kDayOfWeek)] = enc(floor_mod(days + 4, 7) + 1);  // 1970-01-01 was a Thursday
    regs[uint8_t(CmosReg::kDayOfMonth)] = enc(d);
    regs[uint8_t(CmosReg::kMonth)] = enc(m);
    regs[uint8_t(CmosReg::kYear)] = enc(floor_mod(y, 100));
    for (auto alarm : {CmosReg::kSecondsAlarm, CmosReg::kMinutesAlarm, CmosReg::kHoursAlarm})
        regs[uint8_t(alarm)] = m_ram[uint8_t(alarm)];
    if (century != nullptr) *century = enc(std::clamp<int64_t>(floor_div(y, 100), 0, 99));
    return regs;
}

std::optional<uint8_t> CmosRtc::decode(uint8_t value) const {
    if (m_ram[uint8_t(CmosReg::kRegB)] & kRegBBinary) return value;
    uint8_t hi = value >> 4, lo = value & 0xF;
    if (hi > 9 || lo > 9) return std::nullopt;
    return static_cast<uint8_t>(hi * 10 + lo);
}

bool CmosRtc::set_time_from(const std::array<uint8_t, 10>& regs, uint8_t century_reg) {
    auto sec = decode(regs[uint8_t(CmosReg::kSeconds)]);
    auto min = decode(regs[uint8_t(CmosReg::kMinutes)]);
    uint8_t hour_reg = regs[uint8_t(CmosReg::kHours)];
    bool h24 = m_ram[uint8_t(CmosReg::kRegB)] & kRegB24Hour;
    auto hour = decode(h24 ? hour_reg : static_cast<uint8_t>(hour_reg & ~kHourPm));
    auto day = decode(regs[uint8_t(CmosReg::kDayOfMonth)]);
    auto month = decode(regs[uint8_t(CmosReg::kMonth)]);
    auto year = decode(regs[uint8_t(CmosReg::kYear)]);
    auto century = decode(century_reg);
    bool ok = sec && min && hour && day && month && year && century && *sec < 60 && *min < 60 &&
              *year < 100 && *century < 100 && *month >= 1 && *month <= 12;
    int64_t h = 0;
    if (ok) {
        if (h24) {
            ok = *hour < 24;
            h = *hour;
        } else {
            ok = *hour >= 1 && *hour <= 12;
            h = *hour % 12 + ((hour_reg & kHourPm) ? 12 : 0);
        }
    }
    int64_t full_year = ok ? int64_t{*century} * 100 + *year : 0;
    // Years outside 1900-2199 are refused: guest time is kept in signed 64-bit nanoseconds.
    if (ok)
        ok = full_year >= 1900 && full_year <= 2199 && *day >= 1 && *day <= days_in_month(full_year, *month);
    if (!ok) {
        m_errors.report("time registers do not hold a valid date",
                        fmt::format("{:02x}-{:02x}-{:02x}{:02x} {:02x}:{:02x}:{:02x}",
                                    regs[uint8_t(CmosReg::kDayOfMonth)], regs[uint8_t(CmosReg::kMonth)],
                                    century_reg, regs[uint8_t(CmosReg::kYear)], hour_reg,
                                    regs[uint8_t(CmosReg::kMinutes)], regs[uint8_t(CmosReg::kSeconds)]));
        return false;
    }
    int64_t seconds = days_from_civil(full_year, *month, *day) * kSecondsPerDay + h * 3600 + *min * 60 + *sec;
    // The divider chain keeps its phase: the next update comes when it would have.
    int64_t fraction = floor_mod(now_guest_ns(), kNsPerSec);
    m_base_guest_ns = seconds * kNsPerSec + fraction;
    m_base_mono_ns = m_clock.monotonic_ns();
    resync_event_marks();
    return true;
}

std::optional<int64_t> CmosRtc::next_alarm_after(int64_t after) const {
    // Each alarm byte is "don't care" (top two bits set) or one value in the current modes; an
    // undecodable byte never matches (datasheet, "Alarm").
    uint8_t reg_b = m_ram[uint8_t(CmosReg::kRegB)];
    auto field = [&](CmosReg reg, int64_t limit, int64_t& value) -> int {  // 0 never, 1 fixed, 2 any
        uint8_t v = m_ram[uint8_t(reg)];
        if ((v & kAlarmDontCare) == kAlarmDontCare) return 2;
        if (reg == CmosReg::kHoursAlarm && !(reg_b & kRegB24Hour)) {
            auto h12 = decode(static_cast<uint8_t>(v & ~kHourPm));
            if (!h12 || *h12 < 1 || *h12 > 12) return 0;
            value = *h12 % 12 + ((v & kHourPm) ? 12 : 0);
            return 1;
        }
        auto d = decode(v);
        if (!d || *d >= limit) return 0;
        value = *d;
        return 1;
    };
    int64_t hour = 0, minute = 0, second = 0;
    int hk = field(CmosReg::kHoursAlarm, 24, hour);
    int mk = field(CmosReg::kMinutesAlarm, 60, minute);
    int sk = field(CmosReg::kSecondsAlarm, 60, second);
    if (hk == 0 || mk == 0 || sk == 0) return std::nullopt;
    // The earliest matching second after `after`: walk hours, then minutes, then seconds,
    // skipping whole hours and minutes that end before it (at most a day and a bit).
    int64_t day = floor_div(after, kSecondsPerDay) * kSecondsPerDay;
    for (int64_t d = 0; d < 2; ++d, day += kSecondsPerDay) {
        for (int64_t h = hk == 1 ? hour : 0; h < (hk == 1 ? hour + 1 : 24); ++h) {
            int64_t hour_start = day + h * 3600;
            if (hour_start + 3599 <= after) continue;
            for (int64_t m = mk == 1 ? minute : 0; m < (mk == 1 ? minute + 1 : 60); ++m) {
                int64_t minute_start = hour_start + m * 60;
                if (minute_start + 59 <= after) continue;
                if (sk == 1) {
                    if (minute_start + second > after) return minute_start + second;
                    continue;
                }
                return std::max(minute_start, after + 1);
            }
        }
    }
    return std::nullopt;
}

void CmosRtc::resync_event_marks() {
    int64_t t = now_guest_ns();
    m_last_update_second = floor_div(t, kNsPerSec);
    uint8_t rate = m_ram[uint8_t(CmosReg::kRegA)] & kRegARateMask;
    m_last_periodic_tick = rate ? floor_div(ns_to_divider_ticks(t), periodic_ticks(rate)) : 0;
}

void CmosRtc::catch_up() {
    int64_t t = now_guest_ns();
    uint8_t rate = m_ram[uint8_t(CmosReg::kRegA)] & kRegARateMask;
    if (divider_running() && rate != 0) {
        int64_t tick = floor_div(ns_to_divider_ticks(t), periodic_ticks(rate));
        if (tick > m_last_periodic_tick) m_flags |= kRegCPf;
        m_last_periodic_tick = tick;
    }
    int64_t second = floor_div(t, kNsPerSec);
    if (updates_enabled() && second > m_last_update_second) {
        m_flags |= kRegCUf;
        auto alarm = next_alarm_after(m_last_update_second);
        if (alarm && *alarm <= second) m_flags |= kRegCAf;
    }
    m_last_update_second = second;
    update_irq();
    rearm_timer();
}

void CmosRtc::update_irq() {
    uint8_t reg_b = m_ram[uint8_t(CmosReg::kRegB)];
    // IRQF = PF.PIE + AF.AIE + UF.UIE (datasheet, register C); the IRQ pin follows IRQF.
    bool level = ((m_flags & kRegCPf) && (reg_b & kRegBPie)) || ((m_flags & kRegCAf) && (reg_b & kRegBAie)) ||
                 ((m_flags & kRegCUf) && (reg_b & kRegBUie));
    if (level != m_irq_level) {
        m_irq_level = level;
        if (level) ++m_counters.interrupts;
        m_irq->set_level(level);
    }
}

void CmosRtc::rearm_timer() {
    if (!m_timer) return;
    uint8_t reg_b = m_ram[uint8_t(CmosReg::kRegB)];
    uint8_t rate = m_ram[uint8_t(CmosReg::kRegA)] & kRegARateMask;
    std::optional<int64_t> deadline;  // guest time of the next event worth waking for
    // Nothing to wake for while the line is already asserted: flags stay set until register C
    // is read, and reading it catches up.
    if (!m_irq_level && divider_running()) {
        int64_t t = now_guest_ns();
        if ((reg_b & kRegBPie) && rate != 0) {
            int64_t period = periodic_ticks(rate);
            int64_t next = (floor_div(ns_to_divider_ticks(t), period) + 1) * period;
            deadline = divider_ticks_to_ns(next);
        }
        if (updates_enabled()) {
            int64_t now_second = floor_div(t, kNsPerSec);
            std::optional<int64_t> wake_second;
            if (reg_b & kRegBUie) wake_second = now_second + 1;
            if (reg_b & kRegBAie) {
                auto alarm = next_alarm_after(now_second);
                if (alarm && (!wake_second || *alarm < *wake_second)) wake_second = alarm;
            }
            if (wake_second) {
                int64_t at = *wake_second * kNsPerSec;
                deadline = deadline ? std::min(*deadline, at) : at;
            }
        }
        if (deadline) *deadline = m_clock.monotonic_ns() + (*deadline - t);
    }
    if (deadline) {
        m_timer(deadline);
        m_timer_armed = true;
    } else if (m_timer_armed) {
        m_timer(std::nullopt);
        m_timer_armed = false;
    }
}

void CmosRtc::on_timer() {
    std::lock_guard lock(m_lock);
    m_timer_armed = false;
    catch_up();
}

void CmosRtc::reset() {
    std::lock_guard lock(m_lock);
    // RESET clears PIE, AIE, UIE, SQWE and the flags of register C (datasheet, "RESET").
    m_ram[uint8_t(CmosReg::kRegB)] &= static_cast<uint8_t>(~(kRegBPie | kRegBAie | kRegBUie | kRegBSqwe));
    m_flags = 0;
    resync_event_marks();
    update_irq();
    rearm_timer();
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset + i;
        // The index port is write-only; reads float.
        data[i] = port == 1 ? read_register(m_index) : 0xFF;
    }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t port = offset + i;
        if (port == 0) {
            m_index = data[i] & kIndexMask;
            m_nmi_disabled = data[i] & kNmiDisable;
        } else if (port == 1) {
            write_register(m_index, data[i]);
        }
    }
}

uint8_t CmosRtc::read_register(uint8_t index) {
    bool set_mode = m_ram[uint8_t(CmosReg::kRegB)] & kRegBSet;
    if (index <= uint8_t(CmosReg::kYear) || index == uint8_t(CmosReg::kCentury)) {
        if (index == uint8_t(CmosReg::kSecondsAlarm) || index == uint8_t(CmosReg::kMinutesAlarm) ||
            index == uint8_t(CmosReg::kHoursAlarm))
            return m_ram[index];
        if (set_mode) return index == uint8_t(CmosReg::kCentury) ? m_set_century : m_set_image[index];
        uint8_t century = 0;
        auto regs = encode_time(floor_div(now_guest_ns(), kNsPerSec), &century);
        return index == uint8_t(CmosReg::kCentury) ? century : regs[index];
    }
    switch (static_cast<CmosReg>(index)) {
        case CmosReg::kRegA: {
            uint8_t value = m_ram[index] & static_cast<uint8_t>(~kRegAUip);
            if (updates_enabled() && floor_mod(now_guest_ns(), kNsPerSec) >= kNsPerSec - kUipWindowNs)
                value |= kRegAUip;
            return value;
        }
        case CmosReg::kRegC: {
            catch_up();
            uint8_t value = m_flags;
            if (m_irq_level) value |= kRegCIrqf;
            m_flags = 0;
            update_irq();
            rearm_timer();
            return value;
        }
        case CmosReg::kRegD:
            return kRegDVrt;  // the battery is always good
        default:
            return m_ram[index];
    }
}

void CmosRtc::write_register(uint8_t index, uint8_t value) {
    bool set_mode = m_ram[uint8_t(CmosReg::kRegB)] & kRegBSet;
    bool time_register =
        (index <= uint8_t(CmosReg::kYear) && index != uint8_t(CmosReg::kSecondsAlarm) &&
         index != uint8_t(CmosReg::kMinutesAlarm) && index != uint8_t(CmosReg::kHoursAlarm)) ||
        index == uint8_t(CmosReg::kCentury);
    if (time_register) {
        if (set_mode) {
            if (index == uint8_t(CmosReg::kCentury)) {
                m_set_century = value;
            } else {
                m_set_image[index] = value;
            }
            return;
        }
        // Outside SET the new value takes effect at once and the clock runs on from it.
        uint8_t century = 0;
        auto regs = encode_time(floor_div(now_guest_ns(), kNsPerSec), &century);
        if (index == uint8_t(CmosReg::kCentury)) {
            century = value;
        } else {
            regs[index] = value;
        }
        set_time_from(regs, century);
        catch_up();
        return;
    }
    switch (static_cast<CmosReg>(index)) {
        case CmosReg::kRegA: {
            bool was_running = divider_running();
            int64_t t = now_guest_ns();
            m_ram[index] = value & static_cast<uint8_t>(~kRegAUip);  // UIP is read-only
            if ((value & kRegADividerMask) >> 4 != 2 && !((value & 0x60) == 0x60))
                m_errors.report("divider set for a time base other than 32.768 kHz",
                                fmt::format("register A 0x{:02x}", value));
            if (was_running && !divider_running()) {
                m_base_guest_ns = t;  // held in reset: time stops
            } else if (!was_running && divider_running()) {
                // Leaving reset, the first update comes 500 ms later (datasheet, "Divider Control").
                m_base_guest_ns = floor_div(t, kNsPerSec) * kNsPerSec + kNsPerSec / 2;
                m_base_mono_ns = m_clock.monotonic_ns();
            }
            resync_event_marks();
            catch_up();
            return;
        }
        case CmosReg::kRegB: {
            uint8_t old = m_ram[index];
            catch_up();  // account for the past under the old modes
            if ((value & kRegBSet) && !(old & kRegBSet)) {
                // Updates stop; the registers keep the time of this moment for the guest to edit.
                m_set_image = encode_time(floor_div(now_guest_ns(), kNsPerSec), &m_set_century);
                value &= static_cast<uint8_t>(~kRegBUie);  // SET clears UIE (datasheet, register B)
            }
            m_ram[index] = value;
            if (!(value & kRegBSet) && (old & kRegBSet)) {
                // The time written while SET was 1 starts running.
                set_time_from(m_set_image, m_set_century);
            }
            if ((value & kRegBSet) && !(old & kRegBSet)) resync_event_marks();
            update_irq();
            rearm_timer();
            return;
        }
        case CmosReg::kRegC:
        case CmosReg::kRegD:
            m_errors.report("write to a read-only RTC register", fmt::format("register 0x{:02x}", index));
            return;
        default:
            m_ram[index] = value;
            return;
    }
}

nlohmann::json CmosRtc::save_state() const {
    std::lock_guard lock(m_lock);
    bool running = divider_running();
    int64_t t = now_guest_ns();
    return {
        {"version", kStateVersion},
        {"ram", bytes_to_hex(m_ram.data(), m_ram.size())},
        {"index", m_index},
        {"nmi_disabled", m_nmi_disabled},
        // A running clock is kept as an offset from host UTC, so the guest's time moves on while
        // the VM is saved; a clock held in reset keeps its frozen time.
        {"running", running},
        {"offset_ns", running ? t - m_clock.realtime_ns() : 0},
        {"frozen_ns", running ? 0 : t},
        {"set_image", bytes_to_hex(m_set_image.data(), m_set_image.size())},
        {"set_century", m_set_century},
        {"flags", m_flags},
        {"interrupts", m_counters.interrupts},
    };
}

Status CmosRtc::restore_state(const nlohmann::json& state) {
    StateReader r(state, "rtc", kStateVersion);
    auto ram = r.bytes("ram", kRamSize, kRamSize);
    auto index = static_cast<uint8_t>(r.number("index", kIndexMask));
    bool nmi = r.boolean("nmi_disabled");
    bool running = r.boolean("running");
    int64_t offset = r.signed_number("offset_ns");
    int64_t frozen = r.signed_number("frozen_ns");
    auto image = r.bytes("set_image", 10, 10);
    auto set_century = static_cast<uint8_t>(r.number("set_century", 0xFF));
    auto flags = static_cast<uint8_t>(r.number("flags", kRegCPf | kRegCAf | kRegCUf));
    uint64_t interrupts = r.number("interrupts", UINT64_MAX);
    if (r.ok() && running != ((ram[uint8_t(CmosReg::kRegA)] & 0x60) != 0x60))
        return make_error("rtc: cannot restore state: \"running\" disagrees with register A");
    // Guest dates are 1900-2199 and the host's near now: anything beyond 200 years is not ours
    // (and would overflow nanosecond arithmetic).
    constexpr int64_t kLimit = int64_t{200} * 366 * kSecondsPerDay * kNsPerSec;
    if (r.ok() && (offset > kLimit || offset < -kLimit || frozen > kLimit || frozen < -kLimit))
        return make_error("rtc: cannot restore state: time offset out of range");
    VIREO_TRY(r.status());

    std::lock_guard lock(m_lock);
    std::copy(ram.begin(), ram.end(), m_ram.begin());
    m_ram[uint8_t(CmosReg::kRegA)] &= static_cast<uint8_t>(~kRegAUip);
    m_index = index;
    m_nmi_disabled = nmi;
    m_base_guest_ns = running ? m_clock.realtime_ns() + offset : frozen;
    m_base_mono_ns = m_clock.monotonic_ns();
    std::copy(image.begin(), image.end(), m_set_image.begin());
    m_set_century = set_century;
    m_flags = flags;
    m_counters.interrupts = interrupts;
    resync_event_marks();
    uint8_t reg_b = m_ram[uint8_t(CmosReg::kRegB)];
    m_irq_level = ((m_flags & kRegCPf) && (reg_b & kRegBPie)) ||
                  ((m_flags & kRegCAf) && (reg_b & kRegBAie)) || ((m_flags & kRegCUf) && (reg_b & kRegBUie));
    m_irq->set_level(m_irq_level);
    m_timer_armed = true;  // make rearm_timer() cancel or arm explicitly
    rearm_timer();
    return {};
}

}  // namespace vireo::devices
