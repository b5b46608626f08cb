// Tests for PciBus: BAR assignment, mapping, guest reprogramming, decode bits, listeners, INTx.
#include "devices/pci/pci_bus.hpp"

#include <gtest/gtest.h>

#include "base/endian.hpp"
#include "fakes/pci_interrupts.hpp"
#include "unit/devices/pci/test_function.hpp"

namespace vireo::devices::pci {
namespace {

using test::TestFunction;

class Listener final : public PciBarListener {
  public:
    void bar_mapped(PciDevice&, const DecodedBar& bar) override {
        events.push_back({true, bar.index, bar.base});
    }
    void bar_unmapped(PciDevice&, const DecodedBar& bar) override {
        events.push_back({false, bar.index, bar.base});
    }
    struct Event {
        bool mapped;
        int bar;
        uint64_t base;
    };
    std::vector<Event> events;
};

struct Fixture {
    Bus mmio{"mmio"};
    Bus pio{"pio"};
    std::array<std::shared_ptr<testing::LevelRecorder>, 4> lines{
        std::make_shared<testing::LevelRecorder>(), std::make_shared<testing::LevelRecorder>(),
        std::make_shared<testing::LevelRecorder>(), std::make_shared<testing::LevelRecorder>()};
    PciBus bus{mmio, pio, PciBusConfig{}, {lines[0], lines[1], lines[2], lines[3]}};

    uint32_t cfg_read32(uint8_t slot, uint32_t off) {
        uint8_t b[4];
        bus.config_read(0, slot, 0, off, b);
        return load_le<uint32_t>(b);
    }
    void cfg_write32(uint8_t slot, uint32_t off, uint32_t v) {
        uint8_t b[4];
        store_le(b, v);
        bus.config_write(0, slot, 0, off, b);
    }
    void cfg_write16(uint8_t slot, uint32_t off, uint16_t v) {
        uint8_t b[2];
        store_le(b, v);
        bus.config_write(0, slot, 0, off, b);
    }
};

TEST(PciBus, HostBridgeAtSlotZero) {
    Fixture f;
    EXPECT_EQ(f.cfg_read32(0, 0), 0x0008'1B36u);
    EXPECT_EQ(f.cfg_read32(0, 8) >> 8, kClassHostBridge);
    EXPECT_EQ(f.cfg_read32(1, 0), 0xFFFF'FFFFu);  // empty slot
    uint8_t b[4];
    f.bus.config_read(0, 0, 1, 0, b);  // function 1 does not exist
    EXPECT_EQ(load_le<uint32_t>(b), 0xFFFF'FFFFu);
    f.bus.config_read(1, 0, 0, 0, b);  // nor does bus 1
    EXPECT_EQ(load_le<uint32_t>(b), 0xFFFF'FFFFu);
}

TEST(PciBus, AssignsNaturallyAlignedBarsInsideTheWindows) {
    Fixture f;
    auto dev = std::make_shared<TestFunction>();
    auto slot = f.bus.add_device(dev);
    ASSERT_TRUE(slot.ok()) << slot.error().message();
    EXPECT_EQ(*slot, 1);
    PciBusConfig cfg;
    for (int bar : {0, 2, 4}) {
        auto at = f.bus.bar_address(1, bar);
        ASSERT_TRUE(at.has_value()) << "BAR" << bar;
        uint64_t size = bar == 0   ? TestFunction::kBar0Size
                        : bar == 2 ? TestFunction::kBar2Size
                                   : TestFunction::kBar4Size;
        EXPECT_EQ(*at % size, 0u) << "BAR" << bar;
        if (bar == 4) {
            EXPECT_GE(*at, cfg.io_base);
            EXPECT_LE(*at + size, cfg.io_base + cfg.io_size);
        } else {
            EXPECT_GE(*at, cfg.mmio_base);
            EXPECT_LE(*at + size, cfg.mmio_base + cfg.mmio_size);
        }
    }
    // Decode was enabled by the VMM, and the interrupt line follows the _PRT swizzle.
    EXPECT_EQ(f.cfg_read32(1, reg(Reg::kCommand)) & 0x3, 0x3u);
    EXPECT_EQ(f.cfg_read32(1, reg(Reg::kInterruptLine)) & 0xFF, cfg.intx_irqs[1]);
    EXPECT_EQ(f.mmio.size(), 2u);
    EXPECT_EQ(f.pio.size(), 1u);

    // Accesses reach the function with BAR-relative offsets.
    uint64_t bar2 = *f.bus.bar_address(1, 2);
    uint8_t b[4] = {1, 2, 3, 4};
    EXPECT_TRUE(f.mmio.write(bar2 + 0x44, b));
    EXPECT_EQ(dev->last_bar, 2);
    EXPECT_EQ(dev->last_offset, 0x44u);
    EXPECT_EQ(dev->last_value, 0x04030201u);
    uint64_t io = *f.bus.bar_address(1, 4);
    EXPECT_TRUE(f.pio.read(io + 3, std::span<uint8_t>(b, 1)));
    EXPECT_EQ(dev->last_bar, 4);
    EXPECT_EQ(dev->last_offset, 3u);
}

TEST(PciBus, SlotChoiceAndErrors) {
    Fixture f;
    EXPECT_FALSE(f.bus.add_device(std::make_shared<TestFunction>(), 0).ok());
    EXPECT_FALSE(f.bus.add_device(std::make_shared<TestFunction>(), 32).ok());
    ASSERT_TRUE(f.bus.add_device(std::make_shared<TestFunction>(), 5).ok());
    auto again = f.bus.add_device(std::make_shared<TestFunction>(), 5);
    ASSERT_FALSE(again.ok());
    EXPECT_NE(again.error().message().find("taken"), std::string::npos);
    auto next = f.bus.add_device(std::make_shared<TestFunction>());
    ASSERT_TRUE(next.ok());
    EXPECT_EQ(*next, 1);
}

TEST(PciBus, WindowExhaustionIsAnError) {
    Bus mmio("mmio"), pio("pio");
    PciBusConfig cfg;
    cfg.mmio_size = 0x10000;  // room for one BAR 2 only
    PciBus bus(mmio, pio, cfg);
    auto r = bus.add_device(std::make_shared<TestFunction>());
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("no room"), std::string::npos);
}

TEST(PciBus, GuestSizesAndMovesABar) {
    Fixture f;
    auto dev = std::make_shared<TestFunction>();
    ASSERT_TRUE(f.bus.add_device(dev).ok());
    auto listener = std::make_shared<Listener>();
    f.bus.add_listener(listener);
    uint64_t old = *f.bus.bar_address(1, 0);

    // Linux: decode off, size, restore, decode on.
    uint32_t cmd = f.cfg_read32(1, reg(Reg::kCommand)) & 0xFFFF;
    f.cfg_write16(1, reg(Reg::kCommand), static_cast<uint16_t>(cmd & ~kCommandMemorySpace));
    EXPECT_FALSE(f.bus.bar_address(1, 0).has_value());
    f.cfg_write32(1, reg(Reg::kBar0), 0xFFFF'FFFF);
    EXPECT_EQ(f.cfg_read32(1, reg(Reg::kBar0)), ~uint32_t(TestFunction::kBar0Size - 1));
    uint64_t moved = 0xD000'0000 - TestFunction::kBar0Size * 4;
    f.cfg_write32(1, reg(Reg::kBar0), static_cast<uint32_t>(moved));
    EXPECT_FALSE(f.bus.bar_address(1, 0).has_value());  // decode still off
    f.cfg_write16(1, reg(Reg::kCommand), static_cast<uint16_t>(cmd));
    ASSERT_EQ(f.bus.bar_address(1, 0), moved);

    uint8_t b[4] = {};
    EXPECT_FALSE(f.mmio.read(old, b));  // nothing at the old place
    EXPECT_TRUE(f.mmio.read(moved + 8, b));
    EXPECT_EQ(dev->last_offset, 8u);

    // Listener saw: BAR0 and BAR2 unmapped (memory decode off), then both mapped again.
    ASSERT_EQ(listener->events.size(), 4u);
    EXPECT_FALSE(listener->events[0].mapped);
    EXPECT_EQ(listener->events[0].base, old);
    bool saw_new = false;
    for (const auto& e : listener->events)
        saw_new |= e.mapped && e.bar == 0 && e.base == moved;
    EXPECT_TRUE(saw_new);

    // Moving with decode on goes straight from old to new.
    listener->events.clear();
    f.cfg_write32(1, reg(Reg::kBar0), static_cast<uint32_t>(moved + TestFunction::kBar0Size));
    ASSERT_EQ(listener->events.size(), 2u);
    EXPECT_FALSE(listener->events[0].mapped);
    EXPECT_TRUE(listener->events[1].mapped);
    EXPECT_EQ(listener->events[1].base, moved + TestFunction::kBar0Size);
}

TEST(PciBus, Moving64BitBarHalfByHalf) {
    Fixture f;
    auto dev = std::make_shared<TestFunction>();
    ASSERT_TRUE(f.bus.add_device(dev).ok());
    uint32_t lo = reg(Reg::kBar0) + 8;
    f.cfg_write32(1, lo + 4, 0x1);  // above 4 GiB now
    EXPECT_EQ(f.bus.bar_address(1, 2), (uint64_t{1} << 32) | *f.bus.bar_address(1, 2) % (uint64_t{1} << 32));
    f.cfg_write32(1, lo, 0x8000'0000);
    EXPECT_EQ(f.bus.bar_address(1, 2), 0x1'8000'0000u);
}

TEST(PciBus, OverlappingBarStaysUnmapped) {
    Fixture f;
    auto a = std::make_shared<TestFunction>();
    auto b = std::make_shared<TestFunction>();
    ASSERT_TRUE(f.bus.add_device(a).ok());
    ASSERT_TRUE(f.bus.add_device(b).ok());
    uint64_t a_bar0 = *f.bus.bar_address(1, 0);
    f.cfg_write32(2, reg(Reg::kBar0), static_cast<uint32_t>(a_bar0));
    EXPECT_FALSE(f.bus.bar_address(2, 0).has_value());
    EXPECT_EQ(f.bus.guest_errors(), 1u);
    uint8_t x[4];
    EXPECT_TRUE(f.mmio.read(a_bar0, x));
    EXPECT_EQ(a->last_bar, 0);
    EXPECT_EQ(b->last_bar, -1);
}

TEST(PciBus, IoDecodeBit) {
    Fixture f;
    ASSERT_TRUE(f.bus.add_device(std::make_shared<TestFunction>()).ok());
    f.cfg_write16(1, reg(Reg::kCommand), kCommandMemorySpace);
    EXPECT_FALSE(f.bus.bar_address(1, 4).has_value());
    EXPECT_TRUE(f.bus.bar_address(1, 0).has_value());
    EXPECT_EQ(f.pio.size(), 0u);
}

TEST(PciBus, IntxHonoursInterruptDisableAndSharesLines) {
    Fixture f;
    auto a = std::make_shared<TestFunction>();
    auto b = std::make_shared<TestFunction>();
    ASSERT_TRUE(f.bus.add_device(a, 1).ok());
    ASSERT_TRUE(f.bus.add_device(b, 5).ok());  // (5 + 0) % 4 == (1 + 0) % 4: same line
    auto& line = *f.lines[1];

    a->request_intx(true);
    EXPECT_TRUE(line.level());
    EXPECT_NE(f.cfg_read32(1, reg(Reg::kCommand)) >> 16 & kStatusInterrupt, 0u);
    b->request_intx(true);
    a->request_intx(false);
    EXPECT_TRUE(line.level()) << "b still asserts";
    b->request_intx(false);
    EXPECT_FALSE(line.level());

    // Interrupt Disable masks the pin but not the status bit.
    uint16_t cmd = static_cast<uint16_t>(f.cfg_read32(1, reg(Reg::kCommand)));
    f.cfg_write16(1, reg(Reg::kCommand), static_cast<uint16_t>(cmd | kCommandInterruptDisable));
    a->request_intx(true);
    EXPECT_FALSE(line.level());
    EXPECT_NE(f.cfg_read32(1, reg(Reg::kCommand)) >> 16 & kStatusInterrupt, 0u);
    f.cfg_write16(1, reg(Reg::kCommand), cmd);
    EXPECT_TRUE(line.level());
    EXPECT_EQ(line.raises(), 2u);
}

TEST(PciBus, PciStateParsingRejectsBadSnapshots) {
    EXPECT_FALSE(PciDevice::parse_pci_state(nlohmann::json{{"version", 2}}, "test").ok());
    EXPECT_FALSE(PciDevice::parse_pci_state(nlohmann::json::array(), "test").ok());
    auto short_config =
        PciDevice::parse_pci_state(nlohmann::json{{"version", 1}, {"config", "00"}, {"intx", false}}, "test");
    ASSERT_FALSE(short_config.ok());
    EXPECT_NE(short_config.error().message().find("config"), std::string::npos);
    auto ok = PciDevice::parse_pci_state(
        nlohmann::json{{"version", 1}, {"config", std::string(2 * kExtConfigSpaceSize, '0')}, {"intx", true}},
        "test");
    ASSERT_TRUE(ok.ok()) << ok.error().message();
    EXPECT_TRUE(ok->intx);
}

}  // namespace
}  // namespace vireo::devices::pci
