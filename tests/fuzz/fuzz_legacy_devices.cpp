// Fuzz target: the legacy platform devices (16550 UART, ACPI PM, reset register, CMOS RTC,
// i8042) driven by random port reads and writes, host input (serial bytes, keys, mouse motion,
// power button), clock movement and timers. Invariants: no crash, every saved state restores
// into a fresh device that saves identically and drives its IRQ to the same level, and counters
// stay consistent. An input starting with '{' is instead parsed as JSON and offered to every
// device's restore_state() (snapshot files are outside data): it must be refused cleanly or
// leave a device that works and round-trips.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>

#include "base/log.hpp"
#include "devices/legacy/acpi_pm.hpp"
#include "devices/legacy/cmos_rtc.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/reset_control.hpp"
#include "devices/legacy/serial_16550.hpp"
#include "fakes/counting_irq_line.hpp"
#include "fakes/manual_clock.hpp"

namespace {

using vireo::testing::CountingIrqLine;
using vireo::testing::ManualClock;
namespace dev = vireo::devices;

class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool empty() const { return m_pos >= m_size; }
    uint8_t byte() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(byte() | byte() << 8); }

  private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos = 0;
};

struct Timer {
    std::optional<int64_t> deadline;
    dev::TimerArm arm() {
        return [this](std::optional<int64_t> d) { deadline = d; };
    }
};

struct Machine {
    ManualClock clock;
    Timer pm_timer, rtc_timer;
    std::shared_ptr<CountingIrqLine> com1_irq = std::make_shared<CountingIrqLine>();
    std::shared_ptr<CountingIrqLine> sci = std::make_shared<CountingIrqLine>();
    std::shared_ptr<CountingIrqLine> rtc_irq = std::make_shared<CountingIrqLine>();
    std::shared_ptr<CountingIrqLine> kbd_irq = std::make_shared<CountingIrqLine>();
    std::shared_ptr<CountingIrqLine> aux_irq = std::make_shared<CountingIrqLine>();
    uint64_t sink_bytes = 0;
    uint64_t power_offs = 0;
    uint64_t resets = 0;
    dev::Serial16550 serial{com1_irq, [this](std::span<const uint8_t> b) { sink_bytes += b.size(); }, 64};
    dev::AcpiPm pm{sci, clock, {.power_off = [this] { ++power_offs; }}, pm_timer.arm()};
    dev::ResetControl reset_control{[this] { ++resets; }};
    dev::CmosRtc rtc{
        rtc_irq, clock, {.ram_below_4g = 1ull << 30, .ram_above_4g = 0, .cpu_count = 2}, rtc_timer.arm()};
    dev::I8042 i8042{kbd_irq, aux_irq, [this] { ++resets; }};
};

// Saves `device`, restores the state into `fresh`, and checks the copy saves the same state
// and drives its line like the original.
template <typename Device>
void check_round_trip(const Device& device, Device& fresh, const CountingIrqLine& line,
                      const CountingIrqLine& fresh_line) {
    nlohmann::json state = device.save_state();
    vireo::Status st = fresh.restore_state(state);
    if (!st.ok()) {
        std::fprintf(stderr, "own state refused: %s\n", st.error().message().c_str());
        std::abort();
    }
    if (fresh.save_state() != state) {
        std::fprintf(stderr, "state changed in a round trip:\n%s\n%s\n", state.dump().c_str(),
                     fresh.save_state().dump().c_str());
        std::abort();
    }
    if (fresh_line.level() != line.level()) std::abort();
}

void round_trip_all(Machine& m) {
    auto l1 = std::make_shared<CountingIrqLine>();
    dev::Serial16550 serial(l1, {}, 64);
    check_round_trip(m.serial, serial, *m.com1_irq, *l1);
    auto l2 = std::make_shared<CountingIrqLine>();
    dev::AcpiPm pm(l2, m.clock, {});
    check_round_trip(m.pm, pm, *m.sci, *l2);
    auto l3 = std::make_shared<CountingIrqLine>();
    dev::CmosRtc rtc(l3, m.clock, {});
    check_round_trip(m.rtc, rtc, *m.rtc_irq, *l3);
    auto l4 = std::make_shared<CountingIrqLine>();
    auto l5 = std::make_shared<CountingIrqLine>();
    dev::I8042 i8042(l4, l5, {});
    check_round_trip(m.i8042, i8042, *m.kbd_irq, *l4);
    if (l5->level() != m.aux_irq->level()) std::abort();
}

void access(dev::BusDevice& device, uint64_t ports, Input& in) {
    uint8_t op = in.byte();
    uint64_t offset = (op >> 1) % ports;
    size_t size = size_t{1} << ((op >> 5) % 3);
    if (offset + size > ports) size = 1;
    uint8_t buf[4] = {};
    if (op & 1) {
        for (size_t i = 0; i < size; ++i)
            buf[i] = in.byte();
        device.write(offset, {buf, size});
    } else {
        device.read(offset, {buf, size});
    }
}

void fire_timers(Machine& m) {
    int64_t now = m.clock.monotonic_ns();
    if (m.pm_timer.deadline && *m.pm_timer.deadline <= now) {
        m.pm_timer.deadline.reset();
        m.pm.on_timer();
    }
    if (m.rtc_timer.deadline && *m.rtc_timer.deadline <= now) {
        m.rtc_timer.deadline.reset();
        m.rtc.on_timer();
    }
}

void run_ops(const uint8_t* data, size_t size) {
    Machine m;
    Input in(data, size);
    uint64_t offered = 0, taken = 0;
    int round_trips = 0;
    while (!in.empty()) {
        uint8_t op = in.byte();
        switch (op % 16) {
            case 0:
            case 1:
                access(m.serial, dev::Serial16550::kPortCount, in);
                break;
            case 2:
                access(m.pm, dev::AcpiPm::kPortCount, in);
                break;
            case 3:
                access(m.reset_control, 1, in);
                break;
            case 4:
            case 5:
                access(m.rtc, dev::CmosRtc::kPortCount, in);
                break;
            case 6:
            case 7:
                access(m.i8042, dev::I8042::kPortCount, in);
                break;
            case 8: {
                uint8_t bytes[32];
                size_t n = in.byte() % sizeof bytes;
                for (size_t i = 0; i < n; ++i)
                    bytes[i] = in.byte();
                size_t space = m.serial.input_space();
                size_t t = m.serial.enqueue_input({bytes, n});
                if (t > n || t != std::min(n, space)) std::abort();
                offered += n;
                taken += t;
                break;
            }
            case 9:
                m.i8042.key_event(in.byte(), in.byte() & 1);
                break;
            case 10: {
                auto dx = static_cast<int8_t>(in.byte());
                auto dy = static_cast<int8_t>(in.byte());
                auto dz = static_cast<int8_t>(in.byte());
                m.i8042.mouse_event(dx * 7, dy * 7, dz, in.byte());
                break;
            }
            case 11:
                m.pm.press_power_button();
                break;
            case 12: {
                // Time moves: from nanoseconds to about a day.
                uint16_t amount = in.u16();
                int shift = in.byte() % 41;
                m.clock.advance_ns(int64_t{amount} << shift >> 8);  // at most 2^48 ns
                fire_timers(m);
                break;
            }
            case 13:
                switch (in.byte() % 4) {
                    case 0:
                        m.serial.reset();
                        break;
                    case 1:
                        m.pm.reset();
                        break;
                    case 2:
                        m.rtc.reset();
                        break;
                    default:
                        m.i8042.reset();
                        break;
                }
                break;
            case 14:
                // Snapshots are expensive under the sanitizers: a few per input are enough.
                if (round_trips++ < 3) round_trip_all(m);
                break;
            default:
                m.pm.on_timer();  // spurious wakeups are allowed
                m.rtc.on_timer();
                break;
        }
    }
    round_trip_all(m);
    auto c = m.serial.counters();
    if (c.input_refused != offered - taken) std::abort();
    if (c.rx_bytes > taken + c.tx_bytes) std::abort();  // only host input and loopback arrive
    if (m.sink_bytes > c.tx_bytes) std::abort();
}

void run_json(const uint8_t* data, size_t size) {
    nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false);
    if (j.is_discarded()) return;
    Machine m;
    // Each device either refuses the state or ends up consistent.
    if (m.serial.restore_state(j).ok()) {
        uint8_t b = 0;
        m.serial.read(0, {&b, 1});
        m.serial.read(2, {&b, 1});
    }
    if (m.pm.restore_state(j).ok()) m.pm.press_power_button();
    if (m.rtc.restore_state(j).ok()) {
        for (uint8_t reg : {0x00, 0x0A, 0x0C}) {
            m.rtc.write(0, {&reg, 1});
            m.rtc.read(1, {&reg, 1});
        }
        m.clock.advance_ns(1'500'000'000);
        m.rtc.on_timer();
    }
    if (m.i8042.restore_state(j).ok()) {
        uint8_t b = 0;
        m.i8042.read(0, {&b, 1});
        m.i8042.key_event(30, true);
        m.i8042.mouse_event(3, 3, 0, 1);
    }
    round_trip_all(m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    // Guest errors are expected here by the million; their log lines would only slow the run.
    static const bool quiet = vireo::log::set_level("off").ok();
    (void)quiet;
    if (size > 0 && data[0] == '{') {
        run_json(data, size);
    } else {
        run_ops(data, size);
    }
    return 0;
}
