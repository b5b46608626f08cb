// ACPI PM1a event/control blocks and PM timer.
#include "devices/legacy/acpi_pm.hpp"

#include <fmt/format.h>

#include "devices/legacy/device_state.hpp"

namespace vireo::devices {
namespace {

// Status bits that raise the SCI when their enable bit is set (ACPI 6.5 §4.8.3.1).
constexpr uint16_t kSciSources =
    AcpiPm::kTmrSts | AcpiPm::kGblSts | AcpiPm::kPwrBtnSts | AcpiPm::kSlpBtnSts | AcpiPm::kRtcSts;
// PM1_EN bits that exist (Table 4.17): TMR_EN, GBL_EN, PWRBTN_EN, SLPBTN_EN, RTC_EN, PCIEXP_WAKE_DIS.
constexpr uint16_t kEnableMask = (1 << 0) | (1 << 5) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 14);
// PM1_STS bits that exist (Table 4.16).
constexpr uint16_t kStatusMask = AcpiPm::kTmrSts | AcpiPm::kBmSts | AcpiPm::kGblSts | AcpiPm::kPwrBtnSts |
                                 AcpiPm::kSlpBtnSts | AcpiPm::kRtcSts | AcpiPm::kPciExpWakeSts |
                                 AcpiPm::kWakSts;
// PM1_CNT bits that read back (SLP_EN and GBL_RLS are write-only).
constexpr uint16_t kControlReadMask = AcpiPm::kSciEn | AcpiPm::kBmRld | AcpiPm::kSlpTypMask;
constexpr uint64_t kTimerMask = 0xFF'FFFF;  // 24-bit timer (FADT TMR_VAL_EXT clear)
constexpr uint64_t kTmrStsBit = 23;         // TMR_STS sets when bit 23 toggles

constexpr int kStateVersion = 1;

uint64_t ns_to_ticks(int64_t ns) {
    if (ns <= 0) return 0;
    return static_cast<uint64_t>(static_cast<unsigned __int128>(ns) * AcpiPm::kPmTimerHz / 1'000'000'000);
}

int64_t ticks_to_ns(uint64_t ticks) {
    // Rounded up so that ns_to_ticks(ticks_to_ns(t)) == t.
    auto ns =
        (static_cast<unsigned __int128>(ticks) * 1'000'000'000 + AcpiPm::kPmTimerHz - 1) / AcpiPm::kPmTimerHz;
    return static_cast<int64_t>(ns);
}

}  // namespace

AcpiPm::AcpiPm(std::shared_ptr<IrqLine> sci, const Clock& clock, Callbacks callbacks, TimerArm timer)
    : m_sci(std::move(sci)), m_clock(clock), m_callbacks(std::move(callbacks)), m_timer(std::move(timer)) {
    std::lock_guard lock(m_lock);
    reset_locked();
}

void AcpiPm::reset_locked() {
    m_status = 0;
    m_enable = 0;
    // There is no SMI_CMD port (FADT SMI_CMD = 0): the platform is always in ACPI mode, so
    // SCI_EN is set from power-on (ACPI 6.5 §4.8.2.1, §5.2.9).
    m_control = kSciEn;
    m_timer_base_ns = m_clock.monotonic_ns();
    m_tmr_sts_cleared = 0;
}

void AcpiPm::reset() {
    std::lock_guard lock(m_lock);
    reset_locked();
    update_sci();
    rearm_timer();
}

uint64_t AcpiPm::ticks_locked() const {
    return ns_to_ticks(m_clock.monotonic_ns() - m_timer_base_ns);
}

uint32_t AcpiPm::timer_value() const {
    std::lock_guard lock(m_lock);
    return static_cast<uint32_t>(ticks_locked() & kTimerMask);
}

AcpiPm::Counters AcpiPm::counters() const {
    std::lock_guard lock(m_lock);
    Counters c = m_counters;
    c.guest_errors = m_errors.count();
    return c;
}

uint16_t AcpiPm::status_locked() const {
    uint16_t status = m_status;
    if ((ticks_locked() >> kTmrStsBit) != (m_tmr_sts_cleared >> kTmrStsBit)) status |= kTmrSts;
    return status;
}

void AcpiPm::update_sci() {
    bool level = (m_control & kSciEn) && (status_locked() & m_enable & kSciSources);
    if (level != m_sci_level) {
        m_sci_level = level;
        if (level) ++m_counters.sci_raised;
        m_sci->set_level(level);
    }
}

void AcpiPm::rearm_timer() {
    if (!m_timer) return;
    // Only while the guest wants timer-carry interrupts and has not yet got one pending.
    bool want = (m_enable & kTmrSts) && !(status_locked() & kTmrSts);
    if (want) {
        uint64_t next = ((ticks_locked() >> kTmrStsBit) + 1) << kTmrStsBit;
        m_timer(m_timer_base_ns + ticks_to_ns(next));
        m_timer_armed = true;
    } else if (m_timer_armed) {
        m_timer(std::nullopt);
        m_timer_armed = false;
    }
}

void AcpiPm::on_timer() {
    std::lock_guard lock(m_lock);
    m_timer_armed = false;
    update_sci();
    rearm_timer();
}

bool AcpiPm::press_power_button() {
    std::lock_guard lock(m_lock);
    ++m_counters.power_button_presses;
    m_status |= kPwrBtnSts;
    update_sci();
    return (m_control & kSciEn) && (m_enable & kPwrBtnSts);
}

uint8_t AcpiPm::read_byte(uint64_t offset) const {
    uint16_t reg16 = 0;
    switch (offset & ~uint64_t{1}) {
        case kPm1EventOffset:
            reg16 = status_locked();
            break;
        case kPm1EventOffset + 2:
            reg16 = m_enable;
            break;
        case kPm1ControlOffset:
            reg16 = m_control & kControlReadMask;
            break;
        case kPmTimerOffset:
        case kPmTimerOffset + 2: {
            auto value = static_cast<uint32_t>(ticks_locked() & kTimerMask);
            return static_cast<uint8_t>(value >> (8 * (offset - kPmTimerOffset)));
        }
        default:
            return 0xFF;  // the gap between the control block and the timer
    }
    return static_cast<uint8_t>(reg16 >> (8 * (offset & 1)));
}

void AcpiPm::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    // Multi-byte reads of the timer must see one value: read it once per access.
    uint32_t timer = static_cast<uint32_t>(ticks_locked() & kTimerMask);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t off = offset + i;
        if (off >= kPmTimerOffset && off < kPmTimerOffset + kPmTimerLength) {
            data[i] = static_cast<uint8_t>(timer >> (8 * (off - kPmTimerOffset)));
        } else if (off < kPortCount) {
            data[i] = read_byte(off);
        } else {
            data[i] = 0xFF;
        }
    }
}

void AcpiPm::write(uint64_t offset, std::span<const uint8_t> data) {
    bool power_off = false;
    {
        std::lock_guard lock(m_lock);
        // Gather the access into (value, byte mask) per 16-bit register so that a 16- or 32-bit
        // write is applied at once (write-1-to-clear must see the whole value).
        uint64_t end = offset + data.size();
        for (uint64_t reg = offset & ~uint64_t{1}; reg < end; reg += 2) {
            uint16_t value = 0;
            uint16_t mask = 0;
            for (int b = 0; b < 2; ++b) {
                uint64_t off = reg + static_cast<uint64_t>(b);
                if (off < offset || off >= end) continue;
                value |= static_cast<uint16_t>(data[off - offset] << (8 * b));
                mask |= static_cast<uint16_t>(0xFF << (8 * b));
            }
            power_off |= write_register(reg, value, mask);
        }
        update_sci();
        rearm_timer();
    }
    if (power_off && m_callbacks.power_off) m_callbacks.power_off();
}

bool AcpiPm::write_register(uint64_t reg, uint16_t value, uint16_t mask) {
    value &= mask;
    switch (reg) {
        case kPm1EventOffset:
            // Write 1 to clear (ACPI 6.5 §4.8.3.1.1).
            if (value & ~kStatusMask) m_errors.report("PM1_STS reserved bits written");
            if (value & kTmrSts) m_tmr_sts_cleared = ticks_locked();
            m_status &= static_cast<uint16_t>(~value);
            return false;
        case kPm1EventOffset + 2:
            if (value & ~kEnableMask)
                m_errors.report("PM1_EN reserved bits set", fmt::format("0x{:04x}", value));
            m_enable = static_cast<uint16_t>((m_enable & ~mask) | (value & kEnableMask));
            return false;
        case kPm1ControlOffset: {
            m_control = static_cast<uint16_t>((m_control & ~mask) | (value & kControlReadMask));
            if (!(value & kSlpEn)) return false;
            auto slp_typ = static_cast<uint8_t>((value & kSlpTypMask) >> kSlpTypShift);
            if (slp_typ == kSlpTypS5) return true;
            // Only \_S5 is declared. A guest asking for another state gets an immediate wake
            // (WAK_STS), so a kernel waiting for it does not spin forever (ACPI 6.5 §7.4.2).
            ++m_counters.sleep_requests_ignored;
            m_errors.report("sleep state other than S5 requested", fmt::format("SLP_TYP {}", slp_typ));
            m_status |= kWakSts;
            return false;
        }
        case kPmTimerOffset:
        case kPmTimerOffset + 2:
            m_errors.report("write to the read-only PM timer");
            return false;
        default:
            m_errors.report("write to an unused PM port", fmt::format("offset {}", reg));
            return false;
    }
}

nlohmann::json AcpiPm::save_state() const {
    std::lock_guard lock(m_lock);
    uint64_t ticks = ticks_locked();
    return {
        {"version", kStateVersion},
        {"status", m_status},
        {"enable", m_enable},
        {"control", m_control},
        {"timer_ticks", ticks},
        {"tmr_sts_cleared", m_tmr_sts_cleared},
        {"sci_raised", m_counters.sci_raised},
        {"power_button_presses", m_counters.power_button_presses},
        {"sleep_requests_ignored", m_counters.sleep_requests_ignored},
    };
}

Status AcpiPm::restore_state(const nlohmann::json& state) {
    StateReader r(state, "acpi-pm", kStateVersion);
    auto status = static_cast<uint16_t>(r.number("status", kStatusMask));
    auto enable = static_cast<uint16_t>(r.number("enable", kEnableMask));
    auto control = static_cast<uint16_t>(r.number("control", kControlReadMask));
    // Bounded so that the base time stays representable (about 80 years of ticks).
    constexpr uint64_t kMaxTicks = uint64_t{1} << 53;
    uint64_t ticks = r.number("timer_ticks", kMaxTicks);
    uint64_t cleared = r.number("tmr_sts_cleared", kMaxTicks);
    uint64_t sci_raised = r.number("sci_raised", UINT64_MAX);
    uint64_t presses = r.number("power_button_presses", UINT64_MAX);
    uint64_t ignored = r.number("sleep_requests_ignored", UINT64_MAX);
    if (r.ok() && (status & kTmrSts))
        return make_error("acpi-pm: cannot restore state: TMR_STS is derived from the timer, not saved");
    if (r.ok() && cleared > ticks)
        return make_error("acpi-pm: cannot restore state: tmr_sts_cleared {} is after timer_ticks {}",
                          cleared, ticks);
    VIREO_TRY(r.status());

    std::lock_guard lock(m_lock);
    m_status = status;
    m_enable = enable;
    m_control = control;
    // The timer continues from where it was: pick the base that makes it read `ticks` now.
    m_timer_base_ns = m_clock.monotonic_ns() - ticks_to_ns(ticks);
    m_tmr_sts_cleared = cleared;
    m_counters.sci_raised = sci_raised;
    m_counters.power_button_presses = presses;
    m_counters.sleep_requests_ignored = ignored;
    m_sci_level = (m_control & kSciEn) && (status_locked() & m_enable & kSciSources);
    m_sci->set_level(m_sci_level);
    m_timer_armed = true;  // force rearm_timer() to cancel or re-arm explicitly
    rearm_timer();
    return {};
}

}  // namespace vireo::devices
