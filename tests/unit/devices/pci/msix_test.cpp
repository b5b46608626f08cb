// Tests for MSI-X: capability layout, masking, function mask, pending bits, delivery.
#include "devices/pci/msix.hpp"

#include <gtest/gtest.h>

#include "base/endian.hpp"
#include "fakes/pci_interrupts.hpp"
#include "unit/devices/pci/test_function.hpp"

namespace vireo::devices::pci {
namespace {

using test::TestFunction;

struct Fixture {
    std::shared_ptr<testing::MsiRecorder> msi = std::make_shared<testing::MsiRecorder>();
    TestFunction fn;
    uint16_t cap = 0;
    Fixture() {
        fn.msix().set_sink(std::make_shared<MsiSinkVectors>(msi));
        cap = fn.msix().capability_offset();
    }
    void write_entry(uint16_t v, uint64_t addr, uint32_t data, bool masked) {
        uint8_t e[16];
        store_le<uint32_t>(e, static_cast<uint32_t>(addr));
        store_le<uint32_t>(e + 4, static_cast<uint32_t>(addr >> 32));
        store_le<uint32_t>(e + 8, data);
        store_le<uint32_t>(e + 12, masked ? 1 : 0);
        // Drivers write dwords; the mask word last.
        for (int i = 0; i < 4; ++i)
            fn.bar_write(0, TestFunction::kTableOffset + v * 16u + 4u * i,
                         std::span<const uint8_t>(e + 4 * i, 4));
    }
    void set_mask(uint16_t v, bool masked) {
        uint8_t w[4];
        store_le<uint32_t>(w, masked ? 1 : 0);
        fn.bar_write(0, TestFunction::kTableOffset + v * 16u + 12, w);
    }
    void control(uint16_t value) {
        uint8_t b[2];
        store_le(b, value);
        fn.config_write(cap + 2u, b);
    }
    uint64_t pba() {
        uint8_t b[8];
        fn.bar_read(0, TestFunction::kPbaOffset, b);
        return load_le<uint64_t>(b);
    }
};

TEST(Msix, CapabilityLayout) {
    Fixture f;
    uint8_t c[12];
    f.fn.config_read(f.cap, c);
    EXPECT_EQ(c[0], kCapIdMsix);
    EXPECT_EQ(load_le<uint16_t>(c + 2) & 0x7FF, 3);  // 4 vectors
    EXPECT_EQ(load_le<uint32_t>(c + 4), TestFunction::kTableOffset | 0u);
    EXPECT_EQ(load_le<uint32_t>(c + 8), TestFunction::kPbaOffset | 0u);
    // Only enable and function mask are writable.
    f.control(0xFFFF);
    f.fn.config_read(f.cap, c);
    EXPECT_EQ(load_le<uint16_t>(c + 2), 0xC003);
}

TEST(Msix, VectorsStartMaskedAndLatchPending) {
    Fixture f;
    uint8_t e[4];
    f.fn.bar_read(0, TestFunction::kTableOffset + 12, e);
    EXPECT_EQ(load_le<uint32_t>(e), 1u);  // masked after reset
    f.control(Msix::kControlEnable);
    f.fn.signal(2);
    EXPECT_EQ(f.msi->count(), 0u);
    EXPECT_EQ(f.pba(), 0b100u);
    f.write_entry(2, 0xFEE0'0000, 0x4041, false);  // unmasking delivers the pending message
    ASSERT_EQ(f.msi->count(), 1u);
    EXPECT_EQ(f.msi->messages()[0].address, 0xFEE0'0000u);
    EXPECT_EQ(f.msi->messages()[0].data, 0x4041u);
    EXPECT_EQ(f.pba(), 0u);
    f.fn.signal(2);
    EXPECT_EQ(f.msi->count(), 2u);
}

TEST(Msix, DisabledDeliversNothing) {
    Fixture f;
    f.write_entry(0, 0xFEE0'0000, 0x30, false);
    f.fn.signal(0);
    EXPECT_EQ(f.msi->count(), 0u);
    EXPECT_EQ(f.pba(), 0u);  // MSI-X off: the function uses INTx instead, nothing latched
}

TEST(Msix, FunctionMask) {
    Fixture f;
    f.write_entry(1, 0xFEE0'1000, 0x31, false);
    f.control(Msix::kControlEnable | Msix::kControlFunctionMask);
    f.fn.signal(1);
    f.fn.signal(1);
    EXPECT_EQ(f.msi->count(), 0u);
    EXPECT_EQ(f.pba(), 0b10u);
    f.control(Msix::kControlEnable);
    EXPECT_EQ(f.msi->count(), 1u);  // one pending bit: one message
    EXPECT_EQ(f.pba(), 0u);
}

TEST(Msix, MaskingAfterProgramming) {
    Fixture f;
    f.control(Msix::kControlEnable);
    f.write_entry(3, 0xFEE0'0000, 0x33, false);
    f.fn.signal(3);
    EXPECT_EQ(f.msi->count_data(0x33), 1u);
    f.set_mask(3, true);
    f.fn.signal(3);
    EXPECT_EQ(f.msi->count_data(0x33), 1u);
    EXPECT_EQ(f.pba(), 0b1000u);
    f.set_mask(3, false);
    EXPECT_EQ(f.msi->count_data(0x33), 2u);
}

TEST(Msix, ReservedBitsAndOutOfRange) {
    Fixture f;
    f.write_entry(0, 0xFEE0'0003, 0x1, false);
    uint8_t b[4];
    f.fn.bar_read(0, TestFunction::kTableOffset, b);
    EXPECT_EQ(load_le<uint32_t>(b), 0xFEE0'0000u);  // address bits 1:0 are 0
    store_le<uint32_t>(b, 0xFFFF'FFFF);
    f.fn.bar_write(0, TestFunction::kTableOffset + 12, b);
    f.fn.bar_read(0, TestFunction::kTableOffset + 12, b);
    EXPECT_EQ(load_le<uint32_t>(b), 1u);
    f.fn.signal(200);  // past the table: ignored
    EXPECT_EQ(f.msi->count(), 0u);
}

TEST(Msix, SaveAndRestore) {
    Fixture f;
    f.control(Msix::kControlEnable);
    f.write_entry(1, 0xFEE0'2000, 0x77, true);
    f.fn.signal(1);
    auto state = f.fn.msix().save_state();
    Fixture g;
    g.control(Msix::kControlEnable);
    ASSERT_TRUE(g.fn.msix().restore_state(state).ok());
    EXPECT_TRUE(g.fn.msix().pending(1));
    g.set_mask(1, false);
    ASSERT_EQ(g.msi->count(), 1u);
    EXPECT_EQ(g.msi->messages()[0].data, 0x77u);
    EXPECT_FALSE(g.fn.msix().restore_state(nlohmann::json{{"version", 1}, {"table", "00"}}).ok());
}

}  // namespace
}  // namespace vireo::devices::pci
