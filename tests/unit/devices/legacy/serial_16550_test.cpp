// Tests for the 16550A UART: registers per the PC16550D datasheet, interrupts through a counting
// IrqLine, host input back-pressure, the probe sequence Linux's 8250 driver runs, snapshots.
#include "devices/legacy/serial_16550.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "fakes/counting_irq_line.hpp"

namespace vireo::devices {
namespace {

using testing::CountingIrqLine;

constexpr uint8_t kRbr = 0, kThr = 0, kDll = 0, kIer = 1, kDlm = 1, kIir = 2, kFcr = 2, kLcr = 3, kMcr = 4,
                  kLsr = 5, kMsr = 6, kScr = 7;

class SerialTest : public ::testing::Test {
  protected:
    SerialTest() { make(Serial16550::kDefaultHostBufferSize); }

    void make(size_t host_buffer) {
        irq = std::make_shared<CountingIrqLine>();
        uart = std::make_shared<Serial16550>(
            irq, [this](std::span<const uint8_t> b) { out.append(b.begin(), b.end()); }, host_buffer);
    }

    uint8_t in(uint8_t reg) {
        uint8_t v = 0;
        uart->read(reg, {&v, 1});
        return v;
    }
    void outb(uint8_t reg, uint8_t v) { uart->write(reg, {&v, 1}); }
    size_t feed(std::string_view s) {
        return uart->enqueue_input({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
    }

    std::shared_ptr<CountingIrqLine> irq;
    std::shared_ptr<Serial16550> uart;
    std::string out;
};

TEST_F(SerialTest, ResetValues) {
    EXPECT_EQ(in(kIer), 0x00);
    EXPECT_EQ(in(kIir), 0x01);  // no interrupt, FIFOs off
    EXPECT_EQ(in(kLcr), 0x00);
    EXPECT_EQ(in(kMcr), 0x00);
    EXPECT_EQ(in(kLsr), 0x60);  // THRE | TEMT
    EXPECT_EQ(in(kMsr), 0xB0);  // DCD | DSR | CTS, no deltas
    EXPECT_EQ(in(kScr), 0x00);
    EXPECT_FALSE(irq->level());
}

TEST_F(SerialTest, ScratchAndDivisorLatch) {
    outb(kScr, 0x5A);
    EXPECT_EQ(in(kScr), 0x5A);
    outb(kLcr, 0x83);  // DLAB, 8N1
    outb(kDll, 0x01);
    outb(kDlm, 0x00);
    EXPECT_EQ(in(kDll), 0x01);
    EXPECT_EQ(in(kDlm), 0x00);
    outb(kLcr, 0x03);
    EXPECT_EQ(in(kLcr), 0x03);
    EXPECT_EQ(in(kIer), 0x00);  // the divisor writes did not touch IER
    EXPECT_TRUE(out.empty());   // nor THR
}

TEST_F(SerialTest, PolledTransmit) {
    for (char c : std::string("hello\n")) {
        while (!(in(kLsr)&0x20)) {
        }
        outb(kThr, static_cast<uint8_t>(c));
    }
    EXPECT_EQ(out, "hello\n");
    EXPECT_EQ(uart->counters().tx_bytes, 6u);
    EXPECT_FALSE(irq->level());
}

TEST_F(SerialTest, ThreInterruptNeedsOut2) {
    outb(kIer, 0x02);
    EXPECT_EQ(in(kIir), 0x02);  // reported, and the read clears it
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());  // OUT2 clear: the line is gated off

    outb(kMcr, 0x08);  // OUT2
    outb(kIer, 0x00);
    outb(kIer, 0x02);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x02);
    EXPECT_FALSE(irq->level());
}

TEST_F(SerialTest, EachTransmittedByteGivesAnEdge) {
    outb(kMcr, 0x08);
    outb(kIer, 0x02);
    ASSERT_TRUE(irq->level());
    irq->reset_counts();
    outb(kThr, 'a');
    outb(kThr, 'b');
    EXPECT_EQ(irq->raises(), 2u);
    EXPECT_TRUE(irq->level());
    outb(kIer, 0x00);  // disabling THRI drops the pending interrupt
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(in(kIir), 0x01);
}

// serial8250_do_startup(): the TXEN and THRE re-assertion tests.
TEST_F(SerialTest, LinuxStartupThreTests) {
    outb(kLcr, 0x03);
    outb(kMcr, 0x0B);  // DTR | RTS | OUT2
    outb(kIer, 0x02);
    uint8_t iir1 = in(kIir);
    outb(kIer, 0x00);
    outb(kIer, 0x02);
    uint8_t iir = in(kIir);
    outb(kIer, 0x00);
    EXPECT_FALSE(iir1 & 0x01) << "THRE interrupt not raised when enabled";
    EXPECT_FALSE(iir & 0x01) << "THRE interrupt not re-asserted (Linux would set UART_BUG_THRE)";

    outb(kIer, 0x02);
    uint8_t lsr = in(kLsr);
    iir = in(kIir);
    outb(kIer, 0x00);
    EXPECT_TRUE(lsr & 0x40);
    EXPECT_FALSE(iir & 0x01) << "Linux would set UART_BUG_TXEN";
}

// autoconfig() in drivers/tty/serial/8250/8250_port.c, with the 16550A variant checks.
TEST_F(SerialTest, LinuxAutoconfigFinds16550A) {
    uint8_t saved_ier = in(kIer);
    outb(kIer, 0x00);
    uint8_t scratch2 = in(kIer)&0x0F;
    outb(kIer, 0x0F);
    uint8_t scratch3 = in(kIer)&0x0F;
    outb(kIer, saved_ier);
    EXPECT_EQ(scratch2, 0x00);
    EXPECT_EQ(scratch3, 0x0F);

    uint8_t save_mcr = in(kMcr);
    outb(kMcr, 0x10 | 0x0A);  // loopback, RTS, OUT2
    EXPECT_EQ(in(kMsr)&0xF0, 0x90) << "loopback test: DCD|CTS expected";
    outb(kMcr, save_mcr);

    outb(kLcr, 0xBF);
    outb(2, 0);  // EFR on a 16650; FCR here
    outb(kLcr, 0);
    outb(kFcr, 0x01);
    EXPECT_EQ(in(kIir) >> 6, 3) << "FIFO bits: 16550A";

    // Not a ST16C650V1/V2 (no EFR behind LCR 0x80 / 0xBF).
    outb(kLcr, 0x80);
    EXPECT_NE(in(2), 0);
    outb(kLcr, 0xBF);
    EXPECT_NE(in(2), 0);
    // Not a TI16750: bit 5 of IIR never sets.
    outb(kLcr, 0);
    outb(kFcr, 0x21);
    EXPECT_EQ(in(kIir) >> 5, 6);
    outb(kFcr, 0x01);
    outb(kLcr, 0x80);
    outb(kFcr, 0x21);
    EXPECT_EQ(in(kIir) >> 5, 6);
    outb(kFcr, 0x01);
    outb(kLcr, 0);
    // Not an XScale UART: IER bit 6 does not stick.
    outb(kIer, 0x40);
    EXPECT_EQ(in(kIer)&0x40, 0);
    EXPECT_GE(uart->counters().guest_errors, 1u);  // reserved IER bit counted, not fatal
}

TEST_F(SerialTest, ReceiveIn16450Mode) {
    outb(kMcr, 0x08);
    outb(kIer, 0x01);
    EXPECT_EQ(feed("ab"), 2u);  // 'a' in RBR, 'b' waits in the host buffer
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x04);
    EXPECT_EQ(in(kLsr)&0x01, 0x01);
    EXPECT_EQ(in(kRbr), 'a');
    EXPECT_EQ(in(kLsr)&0x03, 0x01);  // 'b' moved in, no overrun
    EXPECT_EQ(in(kRbr), 'b');
    EXPECT_EQ(in(kLsr)&0x01, 0x00);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_EQ(uart->counters().rx_bytes, 2u);
}

TEST_F(SerialTest, FifoTriggerLevelAndTimeout) {
    outb(kMcr, 0x08);
    outb(kFcr, 0x87);  // enable, clear both, trigger 8
    outb(kIer, 0x01);
    feed("abc");
    EXPECT_EQ(in(kIir), 0xCC);  // below the trigger level: character timeout
    EXPECT_TRUE(irq->level());
    feed("defgh");
    EXPECT_EQ(in(kIir), 0xC4);  // 8 bytes: data available
    std::string got;
    while (in(kLsr)&0x01)
        got.push_back(static_cast<char>(in(kRbr)));
    EXPECT_EQ(got, "abcdefgh");
    EXPECT_EQ(in(kIir), 0xC1);
    EXPECT_FALSE(irq->level());
}

TEST_F(SerialTest, TriggerLevels) {
    const std::pair<uint8_t, size_t> levels[] = {{0x01, 1}, {0x41, 4}, {0x81, 8}, {0xC1, 14}};
    for (auto [fcr, level] : levels) {
        outb(kFcr, static_cast<uint8_t>(fcr | 0x02));
        outb(kIer, 0x01);
        feed(std::string(level - 1, 'x'));
        if (level > 1) {
            EXPECT_EQ(in(kIir), 0xCC) << "level " << level;
        }
        feed("x");
        EXPECT_EQ(in(kIir), 0xC4) << "level " << level;
    }
}

TEST_F(SerialTest, FcrClearsAndToggles) {
    outb(kFcr, 0x01);
    feed("0123456789");
    outb(kFcr, 0x03);  // clear RX
    EXPECT_EQ(in(kLsr)&0x01, 0);
    feed("xyz");
    outb(kFcr, 0x00);  // disabling the FIFOs clears them too
    EXPECT_EQ(in(kLsr)&0x01, 0);
    EXPECT_EQ(in(kIir), 0x01);
}

TEST_F(SerialTest, BackPressureKeepsEveryByteInOrder) {
    make(32);
    outb(kFcr, 0x01);
    std::atomic<int> callbacks{0};
    uart->set_input_space_callback([&] { ++callbacks; });
    std::string input;
    for (int i = 0; i < 100; ++i)
        input.push_back(static_cast<char>('A' + i % 26));
    EXPECT_EQ(uart->input_space(), 16u + 32u);
    size_t taken = feed(input);
    EXPECT_EQ(taken, 48u);  // FIFO + host buffer
    EXPECT_EQ(uart->input_space(), 0u);
    EXPECT_EQ(uart->counters().input_refused, 52u);
    EXPECT_EQ(callbacks, 0);

    std::string got;
    size_t pos = taken;
    while (got.size() < input.size()) {
        ASSERT_TRUE(in(kLsr)&0x01);
        got.push_back(static_cast<char>(in(kRbr)));
        if (callbacks > 0 && pos < input.size()) {
            // The VMM resumes reading its source and offers the rest again.
            callbacks = 0;
            pos += feed(std::string_view(input).substr(pos));
        }
    }
    EXPECT_EQ(got, input);
    EXPECT_EQ(in(kLsr)&0x03, 0);  // no overrun ever
    EXPECT_EQ(uart->counters().overruns, 0u);
}

TEST_F(SerialTest, LoopbackEchoesAndOverruns) {
    outb(kFcr, 0x01);
    outb(kMcr, 0x18);  // loopback + OUT2
    outb(kIer, 0x05);  // RDA + RLS
    feed("host");      // held back: loopback disconnects the input
    for (int i = 0; i < 17; ++i)
        outb(kThr, static_cast<uint8_t>('a' + i));
    EXPECT_TRUE(out.empty());
    EXPECT_EQ(uart->counters().overruns, 1u);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0xC6);  // receiver line status has the highest priority
    uint8_t lsr = in(kLsr);
    EXPECT_EQ(lsr & 0x03, 0x03);  // DR | OE
    EXPECT_EQ(in(kLsr)&0x02, 0);  // OE clears on read
    EXPECT_EQ(in(kIir), 0xC4);    // now the 16 bytes are reported
    std::string got;
    while (in(kLsr)&0x01)
        got.push_back(static_cast<char>(in(kRbr)));
    EXPECT_EQ(got, "abcdefghijklmnop");  // the 17th byte was lost, the FIFO kept its contents
    outb(kMcr, 0x08);                    // leave loopback: the host bytes arrive
    got.clear();
    while (in(kLsr)&0x01)
        got.push_back(static_cast<char>(in(kRbr)));
    EXPECT_EQ(got, "host");
}

TEST_F(SerialTest, LoopbackModemStatusAndInterrupt) {
    outb(kMcr, 0x18);                         // loopback, OUT2 -> DCD
    EXPECT_EQ(in(kMsr), 0x80 | 0x02 | 0x01);  // DCD; DSR and CTS fell (deltas)
    outb(kIer, 0x08);
    outb(kMcr, 0x1F);  // DTR RTS OUT1 OUT2
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(in(kIir), 0x00);  // modem status
    EXPECT_EQ(in(kMsr), 0xF0 | 0x03);
    EXPECT_FALSE(irq->level());  // reading MSR cleared the deltas
    outb(kMcr, 0x1B);            // OUT1 (RI) falls: trailing edge
    EXPECT_EQ(in(kMsr)&0x4F, 0x04);
    outb(kMcr, 0x1F);  // RI rises: no TERI
    EXPECT_EQ(in(kMsr)&0x0F, 0x00);
}

TEST_F(SerialTest, InterruptPriorities) {
    outb(kFcr, 0x01);
    outb(kMcr, 0x18);
    in(kMsr);
    outb(kIer, 0x0F);
    EXPECT_EQ(in(kIir)&0x0F, 0x02);  // only THRE (enabled just now)
    outb(kMcr, 0x19);                // DSR delta
    EXPECT_EQ(in(kIir)&0x0F, 0x00);  // THRE was cleared by the previous read; MSI left
    outb(kThr, 'x');                 // THRE again, plus received data
    EXPECT_EQ(in(kIir)&0x0F, 0x04);  // data at the trigger level (1) beats THRE
    in(kRbr);
    EXPECT_EQ(in(kIir)&0x0F, 0x02);
    EXPECT_EQ(in(kIir)&0x0F, 0x00);
    in(kMsr);
    EXPECT_EQ(in(kIir), 0xC1);
}

TEST_F(SerialTest, WideAccessesAndErrors) {
    uint8_t two[2] = {0x5A, 0xA5};
    uart->write(6, two);  // MSR (read-only) then scratch
    EXPECT_EQ(in(kScr), 0xA5);
    uint8_t wide[2] = {};
    uart->read(4, wide);  // MCR, LSR
    EXPECT_EQ(wide[0], 0x00);
    EXPECT_EQ(wide[1], 0x60);
    outb(kLsr, 0x00);
    outb(kMcr, 0xFF);
    EXPECT_EQ(in(kMcr), 0x1F);
    EXPECT_EQ(uart->counters().guest_errors, 3u);
}

TEST_F(SerialTest, ReadOfEmptyRbrIsHarmless) {
    EXPECT_EQ(in(kRbr), 0);
    EXPECT_EQ(uart->counters().rx_bytes, 0u);
}

TEST_F(SerialTest, ResetKeepsHostInput) {
    outb(kFcr, 0x01);
    outb(kMcr, 0x08);
    outb(kIer, 0x03);
    feed(std::string(20, 'q'));
    uart->reset();
    EXPECT_EQ(in(kIer), 0);
    EXPECT_EQ(in(kIir), 0x01);
    EXPECT_FALSE(irq->level());
    int n = 0;
    while (in(kLsr)&0x01) {
        in(kRbr);
        ++n;
    }
    EXPECT_EQ(n, 4);  // the 16 FIFO bytes went with the reset; the 4 buffered ones remain
}

TEST(SerialSnapshot, RestoresEverythingTheGuestSees) {
    auto irq1 = std::make_shared<CountingIrqLine>();
    Serial16550 a(irq1, {});
    auto w = [&](uint8_t r, uint8_t v) { a.write(r, {&v, 1}); };
    w(kLcr, 0x83);
    w(kDll, 0x0C);
    w(kLcr, 0x1B);
    w(kFcr, 0x41);
    w(kMcr, 0x0B);
    w(kIer, 0x05);
    w(kScr, 0x77);
    std::string in = "snapshot";
    a.enqueue_input({reinterpret_cast<const uint8_t*>(in.data()), in.size()});
    ASSERT_TRUE(irq1->level());
    nlohmann::json state = a.save_state();

    auto irq2 = std::make_shared<CountingIrqLine>();
    Serial16550 b(irq2, {});
    ASSERT_TRUE(b.restore_state(state).ok());
    EXPECT_TRUE(irq2->level());
    auto r = [&](Serial16550& s, uint8_t reg) {
        uint8_t v = 0;
        s.read(reg, {&v, 1});
        return v;
    };
    for (uint8_t reg : {kIer, kLcr, kMcr, kScr})
        EXPECT_EQ(r(a, reg), r(b, reg)) << int(reg);
    EXPECT_EQ(r(b, kIir), 0xC4);
    std::string got;
    while (r(b, kLsr) & 0x01)
        got.push_back(static_cast<char>(r(b, kRbr)));
    EXPECT_EQ(got, "snapshot");
    EXPECT_EQ(b.save_state()["lcr"], 0x1B);
}

TEST(SerialSnapshot, RefusesBadStateWithoutChangingAnything) {
    auto irq = std::make_shared<CountingIrqLine>();
    Serial16550 s(irq, {});
    uint8_t v = 0x42;
    s.write(kScr, {&v, 1});
    nlohmann::json good = s.save_state();

    auto expect_refused = [&](nlohmann::json bad, std::string_view what) {
        Status st = s.restore_state(bad);
        ASSERT_FALSE(st.ok()) << what;
        EXPECT_NE(st.error().message().find("serial"), std::string::npos) << st.error().message();
        uint8_t scr = 0;
        s.read(kScr, {&scr, 1});
        EXPECT_EQ(scr, 0x42) << what;
    };
    nlohmann::json bad = good;
    bad["version"] = 99;
    expect_refused(bad, "version");
    bad = good;
    bad.erase("ier");
    expect_refused(bad, "missing field");
    bad = good;
    bad["ier"] = 0x10;
    expect_refused(bad, "ier out of range");
    bad = good;
    bad["rx"] = "0102";  // two bytes in 16450 mode
    expect_refused(bad, "rx too long");
    bad = good;
    bad["host_input"] = "zz";
    expect_refused(bad, "bad hex");
    bad = good;
    bad["scratch"] = 0x11;
    bad["fcr"] = 0x07;
    expect_refused(bad, "bad fcr");
    expect_refused(nlohmann::json::array(), "not an object");
}

TEST(SerialThreads, ConcurrentInputAndGuestReads) {
    auto irq = std::make_shared<CountingIrqLine>();
    Serial16550 s(irq, {}, 64);
    uint8_t fcr = 0x01;
    s.write(kFcr, {&fcr, 1});
    constexpr size_t kTotal = 20000;
    std::thread host([&] {
        size_t sent = 0;
        while (sent < kTotal) {
            uint8_t b[7];
            size_t n = std::min<size_t>(7, kTotal - sent);
            for (size_t i = 0; i < n; ++i)
                b[i] = static_cast<uint8_t>((sent + i) % 251);
            sent += s.enqueue_input({b, n});
        }
    });
    size_t got = 0;
    bool in_order = true;
    while (got < kTotal) {
        uint8_t lsr = 0;
        s.read(kLsr, {&lsr, 1});
        if (lsr & 0x01) {
            uint8_t b = 0;
            s.read(kRbr, {&b, 1});
            in_order &= b == got % 251;
            ++got;
        }
    }
    host.join();
    EXPECT_TRUE(in_order);
    EXPECT_EQ(s.counters().rx_bytes, kTotal);
}

}  // namespace
}  // namespace vireo::devices
