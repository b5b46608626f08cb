// The legacy devices on one port I/O bus at the addresses of arch/x86/layout.hpp, the way the
// VMM wires them: ranges do not overlap and each device answers at its ports.
#include <gtest/gtest.h>
#include <linux/input-event-codes.h>

#include <string>

#include "arch/x86/layout.hpp"
#include "devices/bus.hpp"
#include "devices/legacy/acpi_pm.hpp"
#include "devices/legacy/cmos_rtc.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/reset_control.hpp"
#include "devices/legacy/serial_16550.hpp"
#include "fakes/counting_irq_line.hpp"
#include "fakes/manual_clock.hpp"

namespace vireo::devices {
namespace {

namespace layout = arch::x86::layout;
using testing::CountingIrqLine;

TEST(PlatformWiring, AllDevicesOnOneBus) {
    testing::ManualClock clock;
    std::string out;
    int power_offs = 0, resets = 0;
    auto com1_irq = std::make_shared<CountingIrqLine>();
    auto sci = std::make_shared<CountingIrqLine>();
    auto rtc_irq = std::make_shared<CountingIrqLine>();
    auto kbd_irq = std::make_shared<CountingIrqLine>();
    auto aux_irq = std::make_shared<CountingIrqLine>();

    auto com1 = std::make_shared<Serial16550>(
        com1_irq, [&](std::span<const uint8_t> b) { out.append(b.begin(), b.end()); });
    auto pm = std::make_shared<AcpiPm>(sci, clock, AcpiPm::Callbacks{.power_off = [&] { ++power_offs; }});
    auto reset = std::make_shared<ResetControl>([&] { ++resets; });
    auto rtc = std::make_shared<CmosRtc>(rtc_irq, clock, CmosRtc::MemoryInfo{.ram_below_4g = 256ull << 20});
    auto i8042 = std::make_shared<I8042>(kbd_irq, aux_irq, [&] { ++resets; });

    Bus pio("pio");
    ASSERT_TRUE(pio.insert(com1, layout::kCom1Port, Serial16550::kPortCount).ok());
    ASSERT_TRUE(pio.insert(pm, layout::kAcpiPmPort, AcpiPm::kPortCount).ok());
    ASSERT_TRUE(pio.insert(reset, layout::kResetPort, 1).ok());
    ASSERT_TRUE(pio.insert(rtc, layout::kCmosPort, CmosRtc::kPortCount).ok());
    ASSERT_TRUE(pio.insert(i8042, layout::kI8042DataPort, I8042::kPortCount).ok());
    // The blocks the FADT names sit where the layout says.
    EXPECT_EQ(layout::kAcpiPm1aEventPort, layout::kAcpiPmPort + AcpiPm::kPm1EventOffset);
    EXPECT_EQ(layout::kAcpiPm1aControlPort, layout::kAcpiPmPort + AcpiPm::kPm1ControlOffset);
    EXPECT_EQ(layout::kAcpiPmTimerPort, layout::kAcpiPmPort + AcpiPm::kPmTimerOffset);
    EXPECT_EQ(layout::kI8042CommandPort, layout::kI8042DataPort + I8042::kCommandOffset);

    auto outb = [&](uint16_t port, uint8_t v) { ASSERT_TRUE(pio.write(port, {&v, 1})); };
    auto inb = [&](uint16_t port) {
        uint8_t v = 0;
        EXPECT_TRUE(pio.read(port, {&v, 1}));
        return v;
    };

    for (char c : std::string("ok\n"))
        outb(layout::kCom1Port, static_cast<uint8_t>(c));
    EXPECT_EQ(out, "ok\n");
    EXPECT_EQ(inb(layout::kCom1Port + 5) & 0x60, 0x60);

    outb(layout::kCmosPort, 0x09);
    EXPECT_EQ(inb(layout::kCmosPort + 1), 0x24);  // the fake clock's year, BCD

    EXPECT_EQ(inb(layout::kI8042CommandPort) & 0x01, 0);
    outb(layout::kI8042CommandPort, 0xAA);
    EXPECT_EQ(inb(layout::kI8042DataPort), 0x55);
    i8042->key_event(KEY_ENTER, true);
    EXPECT_TRUE(kbd_irq->level());
    EXPECT_EQ(inb(layout::kI8042DataPort), 0x1C);

    uint8_t en[2] = {0x00, 0x01};  // PWRBTN_EN
    ASSERT_TRUE(pio.write(layout::kAcpiPm1aEventPort + 2, en));
    EXPECT_TRUE(pm->press_power_button());
    EXPECT_TRUE(sci->level());
    uint8_t s5[2] = {0x00, static_cast<uint8_t>((AcpiPm::kSlpTypS5 << 2) | 0x20)};  // SLP_TYP=5, SLP_EN
    ASSERT_TRUE(pio.write(layout::kAcpiPm1aControlPort, s5));
    EXPECT_EQ(power_offs, 1);

    outb(layout::kResetPort, 0x06);
    outb(layout::kI8042CommandPort, 0xFE);
    EXPECT_EQ(resets, 2);
}

}  // namespace
}  // namespace vireo::devices
