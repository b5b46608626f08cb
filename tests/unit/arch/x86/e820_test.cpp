// The guest RAM layout and the e820 map: the hole, the reserved low areas, RAM above 4 GiB.
#include "arch/x86/e820.hpp"

#include <gtest/gtest.h>

#include "arch/x86/layout.hpp"

namespace vireo::arch::x86 {
namespace {

constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t GiB = 1ull << 30;

void expect_sorted_disjoint(const std::vector<E820Entry>& map) {
    for (size_t i = 1; i < map.size(); ++i)
        EXPECT_LE(map[i - 1].end(), map[i].addr) << i;
    for (const auto& e : map)
        EXPECT_GT(e.size, 0u);
}

uint64_t ram_bytes(const std::vector<E820Entry>& map) {
    uint64_t sum = 0;
    for (const auto& e : map)
        if (e.type == E820Type::kRam) sum += e.size;
    return sum;
}

TEST(RamRanges, SmallGuestsAreOneRangeFromZero) {
    EXPECT_EQ(ram_ranges(256 * MiB), (std::vector<RamRange>{{0, 256 * MiB}}));
    EXPECT_EQ(ram_ranges(3 * GiB), (std::vector<RamRange>{{0, 3 * GiB}}));
    EXPECT_EQ(low_ram_end(256 * MiB), 256 * MiB);
}

TEST(RamRanges, LargeGuestsSkipTheHole) {
    auto r = ram_ranges(5 * GiB);
    ASSERT_EQ(r.size(), 2u);
    EXPECT_EQ(r[0], (RamRange{0, layout::kMmioHoleStart}));
    EXPECT_EQ(r[1], (RamRange{layout::kRamHighStart, 5 * GiB - layout::kMmioHoleStart}));
    EXPECT_EQ(low_ram_end(5 * GiB), layout::kMmioHoleStart);
}

TEST(E820, SmallGuest) {
    auto map = build_e820(256 * MiB);
    std::vector<E820Entry> expected = {
        {0, 0x9fc00, E820Type::kRam},
        {0x9fc00, 0x100000 - 0x9fc00, E820Type::kReserved},
        {0x100000, 256 * MiB - 0x100000, E820Type::kRam},
        {layout::kPciEcamStart, layout::kPciEcamSize, E820Type::kReserved},
        {layout::kKvmIdentityMapAddr, 4 * 4096, E820Type::kReserved},
    };
    EXPECT_EQ(map, expected);
    expect_sorted_disjoint(map);
    EXPECT_EQ(ram_bytes(map), 256 * MiB - (0x100000 - 0x9fc00));
}

TEST(E820, LargeGuestDescribesTheHoleAndHighRam) {
    uint64_t size = 6 * GiB;
    auto map = build_e820(size);
    expect_sorted_disjoint(map);
    // No RAM inside the hole.
    for (const auto& e : map) {
        if (e.type != E820Type::kRam) continue;
        EXPECT_TRUE(e.end() <= layout::kMmioHoleStart || e.addr >= layout::kMmioHoleEnd)
            << std::hex << e.addr << "+" << e.size;
    }
    ASSERT_GE(map.size(), 2u);
    EXPECT_EQ(map.back(), (E820Entry{layout::kRamHighStart, size - layout::kMmioHoleStart, E820Type::kRam}));
    EXPECT_EQ(map[2], (E820Entry{0x100000, layout::kMmioHoleStart - 0x100000, E820Type::kRam}));
    EXPECT_EQ(ram_bytes(map), size - (0x100000 - 0x9fc00));
}

TEST(E820, ExactlyThreeGibHasNoHighRam) {
    auto map = build_e820(layout::kMmioHoleStart);
    for (const auto& e : map)
        EXPECT_LT(e.addr, layout::kMmioHoleEnd);
}

TEST(E820, AcpiTablesLieInReservedMemory) {
    auto map = build_e820(64 * MiB);
    bool covered = false;
    for (const auto& e : map) {
        if (e.type == E820Type::kReserved && e.addr <= layout::kAcpiTablesStart &&
            e.end() >= layout::kAcpiTablesEnd)
            covered = true;
    }
    EXPECT_TRUE(covered);
}

TEST(E820, TypeNames) {
    EXPECT_EQ(e820_type_name(E820Type::kRam), "usable");
    EXPECT_EQ(e820_type_name(E820Type::kReserved), "reserved");
}

}  // namespace
}  // namespace vireo::arch::x86
