// Tests for configuration mechanism #1 (0xCF8/0xCFC) and ECAM.
#include "devices/pci/config_access.hpp"

#include <gtest/gtest.h>

#include "base/endian.hpp"
#include "unit/devices/pci/test_function.hpp"

namespace vireo::devices::pci {
namespace {

class ByteRegister final : public BusDevice {
  public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        last_offset = offset;
        data[0] = value;
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        last_offset = offset;
        value = data[0];
    }
    uint64_t last_offset = 99;
    uint8_t value = 0;
};

struct Fixture {
    Bus mmio{"mmio"};
    Bus pio{"pio"};
    PciBus bus{mmio, pio};
    std::shared_ptr<ByteRegister> reset = std::make_shared<ByteRegister>();
    Fixture() {
        EXPECT_TRUE(
            pio.insert(std::make_shared<PciConfigIo>(bus, reset), PciConfigIo::kBase, PciConfigIo::kLength)
                .ok());
        EXPECT_TRUE(mmio.insert(std::make_shared<PciEcam>(bus), 0xE000'0000, PciEcam::size_for(1)).ok());
        EXPECT_TRUE(bus.add_device(std::make_shared<test::TestFunction>(), 3).ok());
    }
    void out32(uint16_t port, uint32_t v) {
        uint8_t b[4];
        store_le(b, v);
        pio.write(port, b);
    }
    uint32_t in32(uint16_t port) {
        uint8_t b[4];
        pio.read(port, b);
        return load_le<uint32_t>(b);
    }
    uint16_t in16(uint16_t port) {
        uint8_t b[2];
        pio.read(port, b);
        return load_le<uint16_t>(b);
    }
    uint8_t in8(uint16_t port) {
        uint8_t b[1];
        pio.read(port, b);
        return b[0];
    }
    static uint32_t addr(uint8_t bus, uint8_t dev, uint8_t fn, uint8_t reg) {
        return PciConfigIo::kEnable | uint32_t{bus} << 16 | uint32_t{dev} << 11 | uint32_t{fn} << 8 | reg;
    }
};

TEST(PciConfigIo, ReadsThroughTheDataWindow) {
    Fixture f;
    f.out32(0xCF8, Fixture::addr(0, 3, 0, 0));
    EXPECT_EQ(f.in32(0xCF8), Fixture::addr(0, 3, 0, 0));
    EXPECT_EQ(f.in32(0xCFC), 0x5678'1234u);
    EXPECT_EQ(f.in16(0xCFE), 0x5678);  // byte lanes select the offset inside the dword
    EXPECT_EQ(f.in8(0xCFD), 0x12);
    f.out32(0xCF8, Fixture::addr(0, 0, 0, 8));
    EXPECT_EQ(f.in32(0xCFC) >> 8, kClassHostBridge);
}

TEST(PciConfigIo, DisabledOrAbsentReadsAllOnes) {
    Fixture f;
    f.out32(0xCF8, Fixture::addr(0, 3, 0, 0) & ~PciConfigIo::kEnable);
    EXPECT_EQ(f.in32(0xCFC), 0xFFFF'FFFFu);
    f.out32(0xCF8, Fixture::addr(0, 4, 0, 0));
    EXPECT_EQ(f.in32(0xCFC), 0xFFFF'FFFFu);
    f.out32(0xCF8, Fixture::addr(7, 3, 0, 0));
    EXPECT_EQ(f.in32(0xCFC), 0xFFFF'FFFFu);
}

TEST(PciConfigIo, WritesReachTheFunction) {
    Fixture f;
    f.out32(0xCF8, Fixture::addr(0, 3, 0, reg(Reg::kInterruptLine)));
    uint8_t irq = 9;
    f.pio.write(0xCFC, std::span<const uint8_t>(&irq, 1));
    EXPECT_EQ(f.in8(0xCFC), 9);
}

TEST(PciConfigIo, ByteAccessAtCf9GoesToTheResetRegister) {
    Fixture f;
    uint8_t v = 0x06;
    f.pio.write(0xCF9, std::span<const uint8_t>(&v, 1));
    EXPECT_EQ(f.reset->value, 0x06);
    EXPECT_EQ(f.reset->last_offset, 0u);
    EXPECT_EQ(f.in8(0xCF9), 0x06);
    // ... and it did not change CONFIG_ADDRESS.
    EXPECT_EQ(f.in32(0xCF8), 0u);
    // Other narrow accesses in 0xCF8-0xCFB reach neither.
    uint8_t w = 0x0E;
    f.pio.write(0xCF8, std::span<const uint8_t>(&w, 1));
    f.pio.write(0xCFB, std::span<const uint8_t>(&w, 1));
    EXPECT_EQ(f.reset->value, 0x06);
    EXPECT_EQ(f.in8(0xCFA), 0xFF);
    uint8_t word[2] = {0x0A, 0x0A};
    f.pio.write(0xCF9, word);
    EXPECT_EQ(f.reset->value, 0x06);
    EXPECT_EQ(f.in32(0xCF8), 0u);
}

TEST(PciConfigIo, AddressRegisterReservedBits) {
    Fixture f;
    f.out32(0xCF8, 0xFFFF'FFFF);
    EXPECT_EQ(f.in32(0xCF8), 0x80FF'FFFCu);
}

TEST(PciEcam, DispatchesByBusDeviceFunction) {
    Fixture f;
    uint8_t b[4];
    ASSERT_TRUE(f.mmio.read(0xE000'0000 + (3u << 15), b));
    EXPECT_EQ(load_le<uint32_t>(b), 0x5678'1234u);
    ASSERT_TRUE(f.mmio.read(0xE000'0000 + (3u << 15) + (1u << 12), b));  // function 1
    EXPECT_EQ(load_le<uint32_t>(b), 0xFFFF'FFFFu);
    // Extended configuration space is reachable through ECAM and empty.
    ASSERT_TRUE(f.mmio.read(0xE000'0000 + (3u << 15) + 0x100, b));
    EXPECT_EQ(load_le<uint32_t>(b), 0u);
    uint8_t irq = 10;
    ASSERT_TRUE(
        f.mmio.write(0xE000'0000 + (3u << 15) + reg(Reg::kInterruptLine), std::span<const uint8_t>(&irq, 1)));
    f.out32(0xCF8, Fixture::addr(0, 3, 0, reg(Reg::kInterruptLine) & 0xFC));
    EXPECT_EQ(f.in8(0xCFC), 10);
}

}  // namespace
}  // namespace vireo::devices::pci
