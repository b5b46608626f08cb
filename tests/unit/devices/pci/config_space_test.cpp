// Tests for PciConfigSpace: identity, write masks, write-1-to-clear, capabilities, BAR sizing.
#include "devices/pci/config_space.hpp"

#include <gtest/gtest.h>

#include "base/endian.hpp"

namespace vireo::devices::pci {
namespace {

PciConfigSpace make_space() {
    return PciConfigSpace(PciIdentity{.vendor_id = 0x1AF4,
                                      .device_id = 0x1042,
                                      .subsystem_vendor_id = 0x1AF4,
                                      .subsystem_id = 0x1100,
                                      .revision = 1,
                                      .class_code = 0x018000,
                                      .interrupt_pin = 1});
}

uint32_t read32(const PciConfigSpace& c, uint32_t off) {
    uint8_t b[4];
    c.read(off, b);
    return load_le<uint32_t>(b);
}
void write32(PciConfigSpace& c, uint32_t off, uint32_t v) {
    uint8_t b[4];
    store_le(b, v);
    c.write(off, b);
}
void write16(PciConfigSpace& c, uint32_t off, uint16_t v) {
    uint8_t b[2];
    store_le(b, v);
    c.write(off, b);
}

TEST(PciConfigSpace, IdentityIsReadOnly) {
    auto c = make_space();
    EXPECT_EQ(read32(c, 0), 0x1042'1AF4u);
    EXPECT_EQ(read32(c, 8), 0x0180'0001u);  // class 01 80 00, revision 1
    EXPECT_EQ(c.u16(reg(Reg::kSubsystemId)), 0x1100);
    EXPECT_EQ(c.u8(reg(Reg::kInterruptPin)), 1);
    write32(c, 0, 0xFFFF'FFFF);
    write32(c, 8, 0);
    c.write(reg(Reg::kInterruptPin), std::array<uint8_t, 1>{4});
    EXPECT_EQ(read32(c, 0), 0x1042'1AF4u);
    EXPECT_EQ(read32(c, 8), 0x0180'0001u);
    EXPECT_EQ(c.u8(reg(Reg::kInterruptPin)), 1);
}

TEST(PciConfigSpace, CommandMaskAndInterruptLine) {
    auto c = make_space();
    write16(c, reg(Reg::kCommand), 0xFFFF);
    EXPECT_EQ(c.command(), kCommandWritable);
    c.write(reg(Reg::kInterruptLine), std::array<uint8_t, 1>{11});
    EXPECT_EQ(c.u8(reg(Reg::kInterruptLine)), 11);
}

TEST(PciConfigSpace, StatusErrorBitsAreWriteOneToClear) {
    auto c = make_space();
    c.set_u16(reg(Reg::kStatus), static_cast<uint16_t>((1u << 13) | (1u << 15)));
    c.set_interrupt_status(true);
    write16(c, reg(Reg::kStatus), 1u << 13);  // clear "received master abort" only
    EXPECT_EQ(c.u16(reg(Reg::kStatus)), (1u << 15) | kStatusInterrupt);
    write16(c, reg(Reg::kStatus), 0xFFFF);  // the interrupt status bit is read-only
    EXPECT_EQ(c.u16(reg(Reg::kStatus)), kStatusInterrupt);
}

TEST(PciConfigSpace, CapabilityListIsLinked) {
    auto c = make_space();
    EXPECT_EQ(c.u16(reg(Reg::kStatus)) & kStatusCapabilitiesList, 0);
    uint8_t a[] = {kCapIdMsix, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    uint8_t b[] = {kCapIdVendor, 0, 16, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    uint16_t at_a = c.add_capability(a);
    uint16_t at_b = c.add_capability(b);
    EXPECT_EQ(at_a, kHeaderSize);
    EXPECT_EQ(at_b, kHeaderSize + 12);
    EXPECT_NE(c.u16(reg(Reg::kStatus)) & kStatusCapabilitiesList, 0);
    EXPECT_EQ(c.u8(reg(Reg::kCapabilitiesPointer)), at_a);
    EXPECT_EQ(c.u8(at_a + 1u), at_b);
    EXPECT_EQ(c.u8(at_b + 1u), 0);
    EXPECT_EQ(c.find_capability(kCapIdVendor), at_b);
    EXPECT_EQ(c.find_capability(kCapIdPcie), 0);
    // Capability bytes are read-only unless a mask says otherwise.
    write32(c, at_a + 4u, 0);
    EXPECT_EQ(c.u8(at_a + 4u), 3);
}

TEST(PciConfigSpace, Bar32SizingProtocol) {
    auto c = make_space();
    c.define_bar(0, BarInfo{BarKind::kMemory32, 0x8000, false});
    write32(c, reg(Reg::kBar0), 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, reg(Reg::kBar0)), 0xFFFF'8000u);  // ~(size-1), type 0 = 32-bit memory
    write32(c, reg(Reg::kBar0), 0xC000'1234);
    EXPECT_EQ(read32(c, reg(Reg::kBar0)), 0xC000'0000u);
    EXPECT_EQ(c.bar_address(0), 0xC000'0000u);
    // Undefined BARs read 0 and ignore writes.
    write32(c, reg(Reg::kBar0) + 4, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, reg(Reg::kBar0) + 4), 0u);
}

TEST(PciConfigSpace, Bar64SizingProtocol) {
    auto c = make_space();
    c.define_bar(2, BarInfo{BarKind::kMemory64, uint64_t{1} << 33, true});  // 8 GiB
    uint32_t lo = reg(Reg::kBar0) + 8;
    EXPECT_EQ(read32(c, lo), kBarMem64 | kBarPrefetchable);
    write32(c, lo, 0xFFFF'FFFF);
    write32(c, lo + 4, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, lo), 0x0000'000Cu);  // no address bits below 8 GiB, type 64-bit, prefetchable
    EXPECT_EQ(read32(c, lo + 4), 0xFFFF'FFFEu);
    write32(c, lo, 0);
    write32(c, lo + 4, 0x4);
    EXPECT_EQ(c.bar_address(2), uint64_t{4} << 32);
    c.set_bar_address(2, uint64_t{6} << 32);
    EXPECT_EQ(read32(c, lo + 4), 6u);
    EXPECT_EQ(read32(c, lo), 0x0000'000Cu);
}

TEST(PciConfigSpace, IoBarSizingProtocol) {
    auto c = make_space();
    c.define_bar(4, BarInfo{BarKind::kIo, 0x20, false});
    uint32_t off = reg(Reg::kBar0) + 16;
    write32(c, off, 0xFFFF'FFFF);
    EXPECT_EQ(read32(c, off), 0xFFFF'FFE1u);
    write32(c, off, 0xC040);
    EXPECT_EQ(c.bar_address(4), 0xC040u);
}

TEST(PciConfigSpace, OutOfRangeReadsAllOnes) {
    auto c = make_space();
    uint8_t b[4];
    c.read(kExtConfigSpaceSize - 2, b);
    EXPECT_EQ(b[2], 0xFF);
    EXPECT_EQ(b[3], 0xFF);
    c.write(kExtConfigSpaceSize - 1, b);  // must not write past the end
    uint8_t ext[4];
    c.read(0x100, ext);  // no extended capabilities
    EXPECT_EQ(load_le<uint32_t>(ext), 0u);
}

}  // namespace
}  // namespace vireo::devices::pci
