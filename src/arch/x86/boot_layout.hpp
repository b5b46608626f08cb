// Where the boot loaders put what the kernel's entry expects in low memory: GDT, page tables,
// the Linux zero page, the PVH start info, the command line. All below kEbdaStart, in RAM the
// e820 map reports as usable (the kernel reclaims it once it has copied what it needs).
#pragma once

#include <cstdint>

#include "arch/x86/layout.hpp"

namespace vireo::arch::x86::boot_layout {

inline constexpr uint64_t kGdtAddr = 0x500;  // 5 entries: null, null, code, data, TSS
inline constexpr uint64_t kIdtAddr =
    0x520;  // empty IDT (limit 0): a fault before the kernel sets one triple-faults
inline constexpr uint64_t kPvhStartInfoAddr = 0x6000;
inline constexpr uint64_t kPvhModlistAddr = 0x6040;  // one module (the initrd)
inline constexpr uint64_t kPvhMemmapAddr = 0x6100;   // up to kPvhMemmapMax entries, to 0x7000
inline constexpr uint64_t kPvhMemmapMax = (0x7000 - kPvhMemmapAddr) / 24;
inline constexpr uint64_t kZeroPageAddr = 0x7000;  // struct boot_params
inline constexpr uint64_t kBootStackTop = 0x8ff0;  // rsp at the 64-bit entry
inline constexpr uint64_t kPml4Addr = 0x9000;
inline constexpr uint64_t kPdptAddr = 0xA000;
inline constexpr uint64_t kPdAddr = 0xB000;  // 4 page directories: 0-4 GiB in 2 MiB pages
inline constexpr uint64_t kPageTablesEnd = 0xF000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;
inline constexpr uint64_t kCmdlineMaxSize = 0x10000;  // room reserved, NUL included

// GDT selectors (boot.rst "64-bit boot protocol": __BOOT_CS 0x10, __BOOT_DS 0x18).
inline constexpr uint16_t kCodeSelector = 0x10;
inline constexpr uint16_t kDataSelector = 0x18;
inline constexpr uint16_t kTssSelector = 0x20;

// Where a bzImage's protected-mode code goes (code32_start) and ELF images may begin.
inline constexpr uint64_t kKernelLoadAddr = layout::kHighMemoryStart;

static_assert(kCmdlineAddr + kCmdlineMaxSize <= layout::kEbdaStart);
static_assert(kPageTablesEnd <= kCmdlineAddr);

}  // namespace vireo::arch::x86::boot_layout
