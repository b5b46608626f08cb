// Tests for the ACPI PM1a blocks and PM timer: the register semantics of ACPI 6.5 §4.8.3, the
// SCI level, the power button, S5, and the sequences Linux's ACPICA uses.
#include "devices/legacy/acpi_pm.hpp"

#include <gtest/gtest.h>

#include <optional>

#include "fakes/counting_irq_line.hpp"
#include "fakes/manual_clock.hpp"

namespace vireo::devices {
namespace {

using testing::CountingIrqLine;
using testing::ManualClock;

class AcpiPmTest : public ::testing::Test {
  protected:
    AcpiPmTest() {
        sci = std::make_shared<CountingIrqLine>();
        pm = std::make_unique<AcpiPm>(sci, clock, AcpiPm::Callbacks{.power_off = [this] { ++power_offs; }},
                                      [this](std::optional<int64_t> deadline) { armed = deadline; });
    }

    uint16_t in16(uint64_t off) {
        uint8_t b[2];
        pm->read(off, b);
        return static_cast<uint16_t>(b[0] | b[1] << 8);
    }
    uint32_t in32(uint64_t off) {
        uint8_t b[4];
        pm->read(off, b);
        return static_cast<uint32_t>(b[0] | b[1] << 8 | b[2] << 16 | uint32_t{b[3]} << 24);
    }
    void out16(uint64_t off, uint16_t v) {
        uint8_t b[2] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
        pm->write(off, b);
    }
    void out32(uint64_t off, uint32_t v) {
        uint8_t b[4] = {static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v >> 16),
                        static_cast<uint8_t>(v >> 24)};
        pm->write(off, b);
    }
    void out8(uint64_t off, uint8_t v) { pm->write(off, {&v, 1}); }

    static constexpr uint64_t kSts = 0, kEn = 2, kCnt = 4, kTmr = 8;
    ManualClock clock;
    std::shared_ptr<CountingIrqLine> sci;
    std::unique_ptr<AcpiPm> pm;
    int power_offs = 0;
    std::optional<int64_t> armed;
};

TEST_F(AcpiPmTest, PowerOnState) {
    EXPECT_EQ(in16(kSts), 0);
    EXPECT_EQ(in16(kEn), 0);
    EXPECT_EQ(in16(kCnt), AcpiPm::kSciEn);  // always in ACPI mode: there is no SMI_CMD
    EXPECT_FALSE(sci->level());
    uint8_t gap[2];
    pm->read(6, gap);
    EXPECT_EQ(gap[0], 0xFF);
    EXPECT_EQ(gap[1], 0xFF);
}

TEST_F(AcpiPmTest, TimerCountsAt3579545HzAndWraps) {
    uint32_t t0 = in32(kTmr);
    clock.advance_ns(1'000'000'000);
    uint32_t t1 = in32(kTmr);
    EXPECT_EQ((t1 - t0) & 0xFFFFFF, 3'579'545u);
    EXPECT_EQ(t1 >> 24, 0u);          // 24 bits
    clock.advance_ns(5'000'000'000);  // past 2^24 ticks (4.69 s)
    uint32_t t2 = in32(kTmr);
    EXPECT_LT(t2, 1u << 24);
    EXPECT_EQ((t2 - t1) & 0xFFFFFF, (5u * 3'579'545u) & 0xFFFFFF);
    EXPECT_EQ(pm->timer_value(), t2);
    // Byte reads see the same counter.
    uint8_t lo = 0;
    pm->read(kTmr, {&lo, 1});
    EXPECT_EQ(lo, t2 & 0xFF);
}

TEST_F(AcpiPmTest, TimerIsMonotonicAcrossWallClockSteps) {
    uint32_t t0 = in32(kTmr);
    clock.step_realtime_ns(-3'600'000'000'000);
    EXPECT_EQ(in32(kTmr), t0);
}

TEST_F(AcpiPmTest, PowerButtonRaisesSciOnlyWhenEnabled) {
    EXPECT_FALSE(pm->press_power_button());  // not enabled: latched only
    EXPECT_EQ(in16(kSts) & AcpiPm::kPwrBtnSts, AcpiPm::kPwrBtnSts);
    EXPECT_FALSE(sci->level());
    out16(kEn, AcpiPm::kPwrBtnSts);  // enabling with the status set raises the SCI
    EXPECT_TRUE(sci->level());
    out16(kSts, AcpiPm::kPwrBtnSts);  // write 1 to clear
    EXPECT_FALSE(sci->level());
    EXPECT_EQ(in16(kSts), 0);
    EXPECT_TRUE(pm->press_power_button());
    EXPECT_TRUE(sci->level());
    EXPECT_EQ(sci->raises(), 2u);
    EXPECT_EQ(pm->counters().power_button_presses, 2u);
    EXPECT_EQ(pm->counters().sci_raised, 2u);
}

TEST_F(AcpiPmTest, WriteZeroDoesNotClearAndSciEnGates) {
    out16(kEn, AcpiPm::kPwrBtnSts);
    pm->press_power_button();
    out16(kSts, 0);
    EXPECT_TRUE(sci->level());
    out16(kCnt, 0);  // SCI_EN off: the event would go to SMI, never the SCI
    EXPECT_FALSE(sci->level());
    EXPECT_FALSE(pm->press_power_button());
    out16(kCnt, AcpiPm::kSciEn);
    EXPECT_TRUE(sci->level());
}

TEST_F(AcpiPmTest, ThirtyTwoBitEventBlockAccess) {
    pm->press_power_button();
    // One dword write: enable power button and clear nothing in the status half.
    out32(kSts, uint32_t{AcpiPm::kPwrBtnSts} << 16);
    EXPECT_EQ(in32(kSts), (uint32_t{AcpiPm::kPwrBtnSts} << 16) | AcpiPm::kPwrBtnSts);
    EXPECT_TRUE(sci->level());
    // Byte write to the high status byte clears PWRBTN_STS (bit 8).
    out8(kSts + 1, 0x01);
    EXPECT_FALSE(sci->level());
}

// acpi_hw_legacy_sleep() for S5: clear WAK_STS and all status, write SLP_TYP, then SLP_TYP|SLP_EN.
TEST_F(AcpiPmTest, LinuxS5SequencePowersOff) {
    out16(kSts, 0xFFFF);
    uint16_t cnt = in16(kCnt);
    cnt = static_cast<uint16_t>((cnt & ~AcpiPm::kSlpTypMask) | (AcpiPm::kSlpTypS5 << AcpiPm::kSlpTypShift));
    out16(kCnt, cnt);
    EXPECT_EQ(power_offs, 0);
    EXPECT_EQ(in16(kCnt) & AcpiPm::kSlpTypMask, AcpiPm::kSlpTypS5 << AcpiPm::kSlpTypShift);
    out16(kCnt, static_cast<uint16_t>(cnt | AcpiPm::kSlpEn));
    EXPECT_EQ(power_offs, 1);
    EXPECT_EQ(in16(kCnt) & AcpiPm::kSlpEn, 0);   // write-only
    EXPECT_EQ(pm->counters().guest_errors, 1u);  // 0xFFFF touched reserved status bits
}

TEST_F(AcpiPmTest, OtherSleepStatesWakeAtOnce) {
    out16(kCnt, static_cast<uint16_t>(AcpiPm::kSciEn | (1 << AcpiPm::kSlpTypShift) | AcpiPm::kSlpEn));
    EXPECT_EQ(power_offs, 0);
    EXPECT_EQ(in16(kSts) & AcpiPm::kWakSts, AcpiPm::kWakSts);
    EXPECT_EQ(pm->counters().sleep_requests_ignored, 1u);
    EXPECT_EQ(pm->counters().guest_errors, 1u);
}

TEST_F(AcpiPmTest, TimerCarrySetsTmrStsAndSci) {
    out16(kEn, AcpiPm::kTmrSts);
    ASSERT_TRUE(armed.has_value());
    int64_t deadline = *armed;
    // 2^23 ticks = 2.343 s after the start.
    EXPECT_NEAR(static_cast<double>(deadline - 1'000'000'000), 2'343'484'437.3, 1.0);
    // The VMM's timer is one-shot: it is disarmed when it fires.
    clock.advance_ns(deadline - clock.monotonic_ns() - 10);
    armed.reset();
    pm->on_timer();  // early: nothing yet, and the device arms again
    EXPECT_FALSE(sci->level());
    EXPECT_EQ(in16(kSts) & AcpiPm::kTmrSts, 0);
    ASSERT_TRUE(armed.has_value());
    EXPECT_EQ(*armed, deadline);
    clock.advance_ns(10);
    armed.reset();
    pm->on_timer();
    EXPECT_TRUE(sci->level());
    EXPECT_EQ(in16(kSts) & AcpiPm::kTmrSts, AcpiPm::kTmrSts);
    EXPECT_FALSE(armed.has_value());  // nothing to wait for while TMR_STS is pending
    out16(kSts, AcpiPm::kTmrSts);
    EXPECT_FALSE(sci->level());
    ASSERT_TRUE(armed.has_value());
    EXPECT_GT(*armed, deadline);
    out16(kEn, 0);
    EXPECT_FALSE(armed.has_value());
}

TEST_F(AcpiPmTest, TmrStsWithoutEnableIsLatchedOnly) {
    clock.advance_ns(2'400'000'000);
    EXPECT_EQ(in16(kSts) & AcpiPm::kTmrSts, AcpiPm::kTmrSts);
    EXPECT_FALSE(sci->level());
    EXPECT_FALSE(armed.has_value());
}

TEST_F(AcpiPmTest, GuestErrorsAreCountedNotFatal) {
    out32(kTmr, 0x1234);
    out16(6, 0xFFFF);
    out16(kEn, 0xFFFF);
    EXPECT_EQ(in16(kEn), 0x4721);
    EXPECT_EQ(pm->counters().guest_errors, 4u);  // the dword timer write counts per register
}

TEST_F(AcpiPmTest, ResetRestoresPowerOnState) {
    out16(kEn, AcpiPm::kPwrBtnSts);
    pm->press_power_button();
    out16(kCnt, 0);
    pm->reset();
    EXPECT_EQ(in16(kSts), 0);
    EXPECT_EQ(in16(kEn), 0);
    EXPECT_EQ(in16(kCnt), AcpiPm::kSciEn);
    EXPECT_FALSE(sci->level());
}

TEST_F(AcpiPmTest, SnapshotContinuesTimerAndKeepsSci) {
    out16(kEn, AcpiPm::kPwrBtnSts);
    pm->press_power_button();
    clock.advance_ns(777'000'000);
    uint32_t before = in32(kTmr);
    nlohmann::json state = pm->save_state();

    ManualClock other(0);
    other.advance_ns(123'456'789'000);  // a new process: different monotonic time
    auto sci2 = std::make_shared<CountingIrqLine>();
    AcpiPm restored(sci2, other, {});
    ASSERT_TRUE(restored.restore_state(state).ok());
    EXPECT_TRUE(sci2->level());
    EXPECT_EQ(restored.timer_value(), before);
    other.advance_ns(1'000'000'000);
    EXPECT_EQ((restored.timer_value() - before) & 0xFFFFFF, 3'579'545u);

    nlohmann::json bad = state;
    bad["status"] = AcpiPm::kTmrSts;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["enable"] = 0x8000;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["tmr_sts_cleared"] = state["timer_ticks"].get<uint64_t>() + 1;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    bad = state;
    bad["version"] = 2;
    EXPECT_FALSE(restored.restore_state(bad).ok());
    EXPECT_TRUE(sci2->level());  // unchanged by the refused restores
}

}  // namespace
}  // namespace vireo::devices
