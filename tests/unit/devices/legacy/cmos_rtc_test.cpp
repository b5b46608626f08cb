// Tests for the MC146818 RTC and CMOS RAM: time registers in every mode, UIP, setting the time,
// register C flags and IRQ 8, periodic/alarm/update interrupts with a manual clock, the divider,
// memory-size bytes, reset and snapshots.
#include "devices/legacy/cmos_rtc.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "fakes/counting_irq_line.hpp"
#include "fakes/manual_clock.hpp"

namespace vireo::devices {
namespace {

using testing::CountingIrqLine;
using testing::ManualClock;

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kStart = 1'710'506'096;  // 2024-03-15 12:34:56 UTC, a Friday

class RtcTest : public ::testing::Test {
  protected:
    RtcTest() : clock(kStart * kSec) { make(); }

    void make(CmosRtc::MemoryInfo memory = {}) {
        irq = std::make_shared<CountingIrqLine>();
        rtc = std::make_unique<CmosRtc>(irq, clock, memory, [this](std::optional<int64_t> d) { armed = d; });
    }
    uint8_t rd(uint8_t index) {
        uint8_t v = index;
        rtc->write(0, {&v, 1});
        rtc->read(1, {&v, 1});
        return v;
    }
    void wr(uint8_t index, uint8_t value) {
        rtc->write(0, {&index, 1});
        rtc->write(1, {&value, 1});
    }
    // Moves time forward and delivers the armed timer if it is due (a one-shot timerfd).
    void advance(int64_t ns) {
        clock.advance_ns(ns);
        if (armed && *armed <= clock.monotonic_ns()) {
            armed.reset();
            rtc->on_timer();
        }
    }
    // Positions the clock at `frac_ns` into the current RTC second.
    void to_fraction(int64_t frac_ns) {
        int64_t now = rtc->guest_time_ns();
        int64_t cur = now % kSec;
        advance((frac_ns - cur + kSec) % kSec);
    }

    ManualClock clock;
    std::shared_ptr<CountingIrqLine> irq;
    std::unique_ptr<CmosRtc> rtc;
    std::optional<int64_t> armed;
};

TEST_F(RtcTest, HostTimeInBcd24Hour) {
    EXPECT_EQ(rd(0x00), 0x56);
    EXPECT_EQ(rd(0x02), 0x34);
    EXPECT_EQ(rd(0x04), 0x12);
    EXPECT_EQ(rd(0x06), 0x06);  // Friday (Sunday = 1)
    EXPECT_EQ(rd(0x07), 0x15);
    EXPECT_EQ(rd(0x08), 0x03);
    EXPECT_EQ(rd(0x09), 0x24);
    EXPECT_EQ(rd(0x32), 0x20);  // century
    EXPECT_EQ(rd(0x0A) & 0x7F, 0x26);
    EXPECT_EQ(rd(0x0B), 0x02);
    EXPECT_EQ(rd(0x0D), 0x80);
    EXPECT_FALSE(irq->level());
}

TEST_F(RtcTest, BinaryAndTwelveHourModes) {
    wr(0x0B, 0x04 | 0x02);  // binary, 24 h
    EXPECT_EQ(rd(0x00), 56);
    EXPECT_EQ(rd(0x04), 12);
    EXPECT_EQ(rd(0x09), 24);
    EXPECT_EQ(rd(0x32), 20);
    wr(0x0B, 0x04);  // binary, 12 h: 12:34 is 12 PM
    EXPECT_EQ(rd(0x04), 0x80 | 12);
    wr(0x0B, 0x00);  // BCD, 12 h
    EXPECT_EQ(rd(0x04), 0x80 | 0x12);
    advance(int64_t{11} * 3600 * kSec + 26 * 60 * kSec);  // 00:01 next day
    EXPECT_EQ(rd(0x04), 0x12);                            // 12 AM
    EXPECT_EQ(rd(0x07), 0x16);
    EXPECT_EQ(rd(0x06), 0x07);           // Saturday
    advance(int64_t{13} * 3600 * kSec);  // 13:01
    EXPECT_EQ(rd(0x04), 0x81);           // 1 PM
}

TEST_F(RtcTest, RunsOnTheMonotonicClock) {
    advance(5 * kSec);
    EXPECT_EQ(rd(0x00), 0x01);
    EXPECT_EQ(rd(0x02), 0x35);
    clock.step_realtime_ns(-3600 * kSec);  // host time steps back: the guest's clock does not
    EXPECT_EQ(rd(0x04), 0x12);
    EXPECT_EQ(rd(0x02), 0x35);
}

TEST_F(RtcTest, UpdateInProgressWindow) {
    to_fraction(kSec - CmosRtc::kUipWindowNs - 1000);
    EXPECT_EQ(rd(0x0A) & 0x80, 0);
    advance(2000);
    EXPECT_EQ(rd(0x0A) & 0x80, 0x80);
    uint8_t sec = rd(0x00);
    advance(CmosRtc::kUipWindowNs);  // past the update
    EXPECT_EQ(rd(0x0A) & 0x80, 0);
    EXPECT_NE(rd(0x00), sec);
    // The UIP bit cannot be written.
    wr(0x0A, 0xA6);
    EXPECT_EQ(rd(0x0A) & 0x7F, 0x26);
}

// mc146818_avoid_UIP() + mc146818_get_time(): read seconds, check UIP, re-read seconds, read
// the rest, check UIP again. Started at every point around an update, it never sees a torn time.
TEST_F(RtcTest, LinuxGetTimeIsConsistentAroundUpdates) {
    for (int64_t start = kSec - 400'000; start < kSec + 100'000; start += 7'000) {
        to_fraction(start % kSec);
        bool done = false;
        for (int attempt = 0; attempt < 20 && !done; ++attempt) {
            uint8_t seconds = rd(0x00);
            advance(2'000);  // a few emulated instructions between accesses
            if (rd(0x0A) & 0x80) {
                advance(100'000);  // udelay(100)
                continue;
            }
            advance(2'000);
            if (seconds != rd(0x00)) continue;
            advance(2'000);
            uint8_t minutes = rd(0x02);
            uint8_t hours = rd(0x04);
            advance(2'000);
            if (rd(0x0A) & 0x80) {
                advance(100'000);
                continue;
            }
            // The registers belong to one instant: re-reading right now must give the same
            // or a later second, never a mix.
            int64_t t = rtc->guest_time_ns() / kSec;
            int64_t read_back = ((hours >> 4) * 10 + (hours & 15)) * 3600 +
                                ((minutes >> 4) * 10 + (minutes & 15)) * 60 + (seconds >> 4) * 10 +
                                (seconds & 15);
            EXPECT_EQ(read_back, t % 86400) << "start " << start;
            done = true;
        }
        EXPECT_TRUE(done);
    }
}

TEST_F(RtcTest, GuestSetsTimeWithSetBit) {
    uint8_t b = rd(0x0B);
    wr(0x0B, static_cast<uint8_t>(b | 0x80 | 0x10));  // SET (and UIE, which SET clears)
    EXPECT_EQ(rd(0x0B), (b | 0x80));
    wr(0x00, 0x58);
    wr(0x02, 0x59);
    wr(0x04, 0x23);
    wr(0x07, 0x31);
    wr(0x08, 0x12);
    wr(0x09, 0x99);
    wr(0x32, 0x19);
    advance(3 * kSec);  // no updates while SET
    EXPECT_EQ(rd(0x00), 0x58);
    EXPECT_EQ(rd(0x09), 0x99);
    wr(0x0B, b);
    EXPECT_EQ(rtc->guest_time_ns() / kSec, 946'684'798);  // 1999-12-31 23:59:58
    advance(3 * kSec);
    EXPECT_EQ(rd(0x00), 0x01);
    EXPECT_EQ(rd(0x07), 0x01);
    EXPECT_EQ(rd(0x08), 0x01);
    EXPECT_EQ(rd(0x09), 0x00);
    EXPECT_EQ(rd(0x32), 0x20);  // the century rolls over too
    EXPECT_EQ(rd(0x06), 0x07);  // 2000-01-01 was a Saturday
}

TEST_F(RtcTest, TimeRegisterWriteOutsideSetTakesEffect) {
    wr(0x04, 0x05);  // 05:34:56
    EXPECT_EQ(rd(0x04), 0x05);
    EXPECT_EQ(rd(0x02), 0x34);
    EXPECT_EQ(rd(0x07), 0x15);
    advance(4 * kSec);
    EXPECT_EQ(rd(0x02), 0x35);
    EXPECT_EQ(rd(0x04), 0x05);
}

TEST_F(RtcTest, InvalidDatesAreCountedAndIgnored) {
    int64_t before = rtc->guest_time_ns();
    wr(0x08, 0x13);  // month 13
    wr(0x07, 0x31);  // March 31 is fine
    wr(0x08, 0x02);  // Feb 31: refused
    wr(0x00, 0x5A);  // not BCD
    wr(0x32, 0x22);  // year 2224: out of range
    EXPECT_EQ(rtc->counters().guest_errors, 4u);
    EXPECT_EQ(rd(0x08), 0x03);
    EXPECT_EQ(rd(0x07), 0x31);
    EXPECT_EQ(rd(0x32), 0x20);
    EXPECT_GT(rtc->guest_time_ns(), before);  // only the valid change (day 31) applied
}

TEST_F(RtcTest, RegisterCFlagsAndUpdateInterrupt) {
    EXPECT_EQ(rd(0x0C), 0x00);
    advance(kSec);
    EXPECT_EQ(rd(0x0C), 0x50);  // UF (and PF: the 1024 Hz rate runs) without enables: flags only
    EXPECT_EQ(rd(0x0C), 0x00);  // read clears
    EXPECT_FALSE(irq->level());
    EXPECT_FALSE(armed.has_value());

    wr(0x0B, 0x02 | 0x10);  // UIE
    ASSERT_TRUE(armed.has_value());
    advance(*armed - clock.monotonic_ns());
    EXPECT_TRUE(irq->level());
    EXPECT_FALSE(armed.has_value()) << "no timer while the line is asserted";
    advance(3 * kSec);
    EXPECT_EQ(irq->raises(), 1u);  // one level until register C is read
    EXPECT_EQ(rd(0x0C), 0xD0);     // IRQF, PF, UF
    EXPECT_FALSE(irq->level());
    ASSERT_TRUE(armed.has_value());
    advance(*armed - clock.monotonic_ns());
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(rtc->counters().interrupts, 2u);
}

TEST_F(RtcTest, PeriodicInterrupt) {
    wr(0x0A, 0x26);         // 1024 Hz
    wr(0x0B, 0x02 | 0x40);  // PIE
    ASSERT_TRUE(armed.has_value());
    int64_t wait = *armed - clock.monotonic_ns();
    EXPECT_GT(wait, 0);
    EXPECT_LE(wait, 976'563);
    advance(wait);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(rd(0x0C) & 0xC0, 0xC0);
    int raises = 0;
    for (int i = 0; i < 1024; ++i) {  // one second of ticks, each acknowledged
        ASSERT_TRUE(armed.has_value());
        advance(*armed - clock.monotonic_ns());
        if (irq->level()) {
            ++raises;
            rd(0x0C);
        }
    }
    EXPECT_EQ(raises, 1024);
    wr(0x0A, 0x2F);  // 2 Hz
    rd(0x0C);
    ASSERT_TRUE(armed.has_value());
    EXPECT_GT(*armed - clock.monotonic_ns(), 400'000'000);
    wr(0x0A, 0x20);  // rate 0: no periodic interrupt
    EXPECT_FALSE(armed.has_value());
}

TEST_F(RtcTest, PeriodicFlagWithoutEnableRaisesNothing) {
    advance(2'000'000);
    EXPECT_EQ(rd(0x0C), 0x40 | 0x00);  // PF; UF not yet (less than a second)
    EXPECT_FALSE(irq->level());
    EXPECT_FALSE(armed.has_value());
}

TEST_F(RtcTest, AlarmInterrupt) {
    wr(0x01, 0x00);  // 12:35:00
    wr(0x03, 0x35);
    wr(0x05, 0x12);
    rd(0x0C);
    wr(0x0B, 0x02 | 0x20);  // AIE
    for (int i = 0; i < 3; ++i)
        advance(kSec);  // 12:34:59
    EXPECT_FALSE(irq->level());
    advance(kSec);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(rd(0x0C) & 0xB0, 0x80 | 0x20 | 0x10);  // IRQF, AF, UF
    advance(kSec);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(rd(0x0C) & 0xB0, 0x10);
}

TEST_F(RtcTest, AlarmTimerWakesAtTheAlarm) {
    wr(0x01, 0x00);  // 12:35:00, four seconds ahead
    wr(0x03, 0x35);
    wr(0x05, 0x12);
    rd(0x0C);
    wr(0x0B, 0x02 | 0x20);
    ASSERT_TRUE(armed.has_value());
    int64_t wait = *armed - clock.monotonic_ns();
    EXPECT_GT(wait, 3 * kSec);
    EXPECT_LE(wait, 4 * kSec);
    advance(wait);
    EXPECT_TRUE(irq->level());
}

// AF against a second-by-second oracle, for random alarm bytes (fixed, don't care, invalid) in
// both hour modes and random gaps up to two days.
TEST_F(RtcTest, AlarmMatchesOracle) {
    uint64_t seed = 42;
    auto rnd = [&seed] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return static_cast<uint32_t>(seed >> 33);
    };
    auto bcd = [](int v) { return static_cast<uint8_t>((v / 10) << 4 | (v % 10)); };
    for (int round = 0; round < 300; ++round) {
        bool h24 = rnd() % 2;
        wr(0x0B, h24 ? 0x02 : 0x00);
        auto pick = [&](int limit, bool hour) -> uint8_t {
            switch (rnd() % 5) {
                case 0:
                    return 0xC0 | static_cast<uint8_t>(rnd() % 64);  // don't care
                case 1:
                    return static_cast<uint8_t>(rnd());  // anything, often invalid
                default: {
                    int v = static_cast<int>(rnd() % static_cast<uint32_t>(limit));
                    if (hour && !h24)
                        return static_cast<uint8_t>(bcd(v % 12 == 0 ? 12 : v % 12) | (v >= 12 ? 0x80 : 0));
                    return bcd(v);
                }
            }
        };
        uint8_t as = pick(60, false), am = pick(60, false), ah = pick(24, true);
        wr(0x01, as);
        wr(0x03, am);
        wr(0x05, ah);
        rd(0x0C);
        int64_t from = rtc->guest_time_ns() / kSec;
        int64_t gap = (rnd() % 3 == 0) ? rnd() % (2 * 86400) : rnd() % 4000;
        clock.advance_ns(gap * kSec);
        int64_t to = rtc->guest_time_ns() / kSec;
        bool expected = false;
        for (int64_t t = from + 1; t <= to && !expected; ++t) {
            int64_t sod = ((t % 86400) + 86400) % 86400;
            int h = static_cast<int>(sod / 3600), m = static_cast<int>(sod / 60 % 60),
                sec = static_cast<int>(sod % 60);
            uint8_t hr =
                h24 ? bcd(h) : static_cast<uint8_t>(bcd(h % 12 == 0 ? 12 : h % 12) | (h >= 12 ? 0x80 : 0));
            auto ok = [](uint8_t alarm, uint8_t value) { return (alarm & 0xC0) == 0xC0 || alarm == value; };
            expected = ok(as, bcd(sec)) && ok(am, bcd(m)) && ok(ah, hr);
        }
        EXPECT_EQ((rd(0x0C) & 0x20) != 0, expected)
            << "round " << round << " alarm " << std::hex << int(ah) << ":" << int(am) << ":" << int(as)
            << std::dec << " gap " << gap << (h24 ? " 24h" : " 12h");
    }
}

TEST_F(RtcTest, AlarmDontCareAndLongGaps) {
    wr(0x01, 0xC0);
    wr(0x03, 0xFF);
    wr(0x05, 0xC1);
    rd(0x0C);
    advance(kSec);
    EXPECT_EQ(rd(0x0C) & 0x20, 0x20);  // every second
    wr(0x01, 0x30);                    // hh:mm:30
    rd(0x0C);
    advance(int64_t{5} * 86400 * kSec);  // a long gap without accesses: matched within it
    EXPECT_EQ(rd(0x0C) & 0x20, 0x20);
    wr(0x05, 0x25);  // hour 25 never matches
    rd(0x0C);
    advance(int64_t{2} * 86400 * kSec);
    EXPECT_EQ(rd(0x0C) & 0x20, 0x00);
}

TEST_F(RtcTest, DividerResetStopsAndRestarts) {
    wr(0x0A, 0x76);  // hold the divider in reset
    advance(10 * kSec);
    EXPECT_EQ(rd(0x00), 0x56);
    EXPECT_EQ(rd(0x0A) & 0x80, 0);
    wr(0x0A, 0x26);
    advance(499'000'000);
    EXPECT_EQ(rd(0x00), 0x56);
    advance(2'000'000);  // first update 500 ms after leaving reset
    EXPECT_EQ(rd(0x00), 0x57);
    wr(0x0A, 0x06);  // 4.194304 MHz time base: counted, treated as running
    EXPECT_EQ(rtc->counters().guest_errors, 1u);
}

TEST_F(RtcTest, RamIndexAndErrors) {
    wr(0x40, 0xA5);
    EXPECT_EQ(rd(0x40), 0xA5);
    uint8_t idx = 0x80 | 0x41;  // NMI disable + index
    rtc->write(0, {&idx, 1});
    EXPECT_TRUE(rtc->nmi_disabled());
    uint8_t v = 0x5A;
    rtc->write(1, {&v, 1});
    EXPECT_EQ(rd(0x41), 0x5A);
    EXPECT_FALSE(rtc->nmi_disabled());
    uint8_t port0 = 0;
    rtc->read(0, {&port0, 1});
    EXPECT_EQ(port0, 0xFF);  // the index port is write-only
    wr(0x0C, 0xFF);
    wr(0x0D, 0x00);
    EXPECT_EQ(rd(0x0D), 0x80);
    EXPECT_EQ(rtc->counters().guest_errors, 2u);
    // A 16-bit access to 0x70 writes the index and the data.
    uint8_t both[2] = {0x42, 0x77};
    rtc->write(0, both);
    EXPECT_EQ(rd(0x42), 0x77);
}

TEST_F(RtcTest, MemorySizeBytes) {
    make({.ram_below_4g = 3ull << 30, .ram_above_4g = 1ull << 30, .cpu_count = 4});
    auto rd16 = [&](uint8_t i) { return rd(i) | rd(static_cast<uint8_t>(i + 1)) << 8; };
    EXPECT_EQ(rd16(0x15), 640);
    EXPECT_EQ(rd16(0x17), 0xFFFF);  // capped
    EXPECT_EQ(rd16(0x30), 0xFFFF);
    EXPECT_EQ(rd16(0x34), ((3ull << 30) - (16ull << 20)) >> 16);
    EXPECT_EQ(rd(0x5B) | rd(0x5C) << 8 | rd(0x5D) << 16, (1 << 30) >> 16);
    EXPECT_EQ(rd(0x5F), 3);
    make({.ram_below_4g = 32ull << 20, .ram_above_4g = 0, .cpu_count = 1});
    EXPECT_EQ(rd16(0x17), 31 * 1024);
    EXPECT_EQ(rd16(0x34), 256);
    EXPECT_EQ(rd(0x5B), 0);
}

TEST_F(RtcTest, ResetClearsEnablesAndFlagsButKeepsTime) {
    wr(0x40, 0x11);
    wr(0x0B, 0x02 | 0x40 | 0x20 | 0x10 | 0x08);
    advance(kSec);
    EXPECT_TRUE(irq->level());
    int64_t t = rtc->guest_time_ns();
    rtc->reset();
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(rd(0x0B), 0x02);
    EXPECT_EQ(rd(0x0C), 0x00);
    EXPECT_EQ(rd(0x40), 0x11);
    EXPECT_EQ(rtc->guest_time_ns(), t);
    EXPECT_FALSE(armed.has_value());
}

TEST_F(RtcTest, SnapshotKeepsGuestOffsetFromHostTime) {
    wr(0x04, 0x03);  // guest moved its clock to 03:34:56 (9 hours behind the host)
    wr(0x40, 0x99);
    wr(0x0B, 0x02 | 0x10);
    advance(kSec);
    ASSERT_TRUE(irq->level());
    nlohmann::json state = rtc->save_state();

    // Restored ten minutes later, in a process with another monotonic clock.
    ManualClock later((kStart + 601) * kSec);
    auto irq2 = std::make_shared<CountingIrqLine>();
    CmosRtc restored(irq2, later, {});
    ASSERT_TRUE(restored.restore_state(state).ok());
    EXPECT_TRUE(irq2->level());
    auto rd2 = [&](uint8_t index) {
        uint8_t v = index;
        restored.write(0, {&v, 1});
        restored.read(1, {&v, 1});
        return v;
    };
    EXPECT_EQ(rd2(0x04), 0x03);
    EXPECT_EQ(rd2(0x02), 0x44);  // 03:44:57: the ten minutes passed for the guest too
    EXPECT_EQ(rd2(0x00), 0x57);
    EXPECT_EQ(rd2(0x40), 0x99);
    EXPECT_EQ(rd2(0x0C) & 0xB0, 0x90);
    EXPECT_FALSE(irq2->level());

    nlohmann::json bad = state;
    bad["ram"] = "00";
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["running"] = false;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["offset_ns"] = INT64_MAX;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["flags"] = 0x80;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    EXPECT_EQ(rd2(0x40), 0x99);  // unchanged by the refused restores
}

TEST_F(RtcTest, SnapshotOfAStoppedClock) {
    wr(0x0A, 0x76);
    int64_t frozen = rtc->guest_time_ns();
    nlohmann::json state = rtc->save_state();
    ManualClock other(0);
    auto irq2 = std::make_shared<CountingIrqLine>();
    CmosRtc restored(irq2, other, {});
    ASSERT_TRUE(restored.restore_state(state).ok());
    other.advance_ns(5 * kSec);
    EXPECT_EQ(restored.guest_time_ns(), frozen);
}

}  // namespace
}  // namespace vireo::devices
