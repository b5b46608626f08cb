// Guest RAM: memfd-backed, shared mapping, laid out around the MMIO hole, lazily allocated.
#include "vmm/guest_ram.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include "arch/x86/layout.hpp"

namespace vireo::vmm {
namespace {

namespace layout = arch::x86::layout;

TEST(GuestRam, SmallGuestIsOneSlot) {
    auto ram = GuestRam::create({.size = 64 << 20});
    ASSERT_TRUE(ram.ok()) << ram.error().message();
    ASSERT_EQ(ram->slots().size(), 1u);
    EXPECT_EQ(ram->slots()[0].gpa, 0u);
    EXPECT_EQ(ram->memory().total_size(), 64u << 20);
    EXPECT_GE(ram->fd(), 0);
}

TEST(GuestRam, LargeGuestSkipsTheHoleWithoutTouchingPages) {
    uint64_t size = 4ull << 30;  // 4 GiB of address space; nothing is allocated until touched
    auto ram = GuestRam::create({.size = size});
    ASSERT_TRUE(ram.ok()) << ram.error().message();
    ASSERT_EQ(ram->slots().size(), 2u);
    EXPECT_EQ(ram->slots()[0].size, layout::kMmioHoleStart);
    EXPECT_EQ(ram->slots()[1].gpa, layout::kRamHighStart);
    EXPECT_EQ(ram->slots()[1].file_offset, layout::kMmioHoleStart);
    EXPECT_EQ(ram->memory().end(), layout::kRamHighStart + size - layout::kMmioHoleStart);
    // The hole is not guest memory.
    EXPECT_FALSE(ram->memory().checked_slice(layout::kMmioHoleStart, 1).ok());
    auto resident = ram->resident_bytes();
    ASSERT_TRUE(resident.ok());
    EXPECT_EQ(*resident, 0u);
    // A write above 4 GiB lands in the memfd after the low part.
    uint8_t v = 0x5a;
    ASSERT_TRUE(ram->memory().write(layout::kRamHighStart + 4096, {&v, 1}).ok());
    uint8_t back = 0;
    ASSERT_EQ(::pread(ram->fd(), &back, 1, static_cast<off_t>(layout::kMmioHoleStart + 4096)), 1);
    EXPECT_EQ(back, 0x5a);
    EXPECT_EQ(*ram->resident_bytes(), static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)));
}

TEST(GuestRam, RejectsBadSizes) {
    EXPECT_FALSE(GuestRam::create({.size = 0}).ok());
    EXPECT_FALSE(GuestRam::create({.size = 4097}).ok());
    EXPECT_FALSE(GuestRam::create({.size = 3 << 20, .hugepages = true}).ok());
}

TEST(GuestRam, HugePagesNeedAReservedPool) {
    auto ram = GuestRam::create({.size = 64 << 20, .hugepages = true});
    if (ram.ok()) {
        EXPECT_TRUE(ram->hugepages());
        return;
    }
    // Without a pool the error says what to do.
    EXPECT_NE(ram.error().message().find("huge"), std::string::npos) << ram.error().message();
}

}  // namespace
}  // namespace vireo::vmm
