// The PVH boot ABI's start-of-day structures (xen/include/public/arch-x86/hvm/start_info.h):
// what a PVH kernel finds through %ebx at its 32-bit entry point.
#pragma once

#include <cstdint>

#include "base/endian.hpp"

namespace vireo::arch::x86 {

inline constexpr uint32_t kHvmStartMagic = 0x336ec578;  // "xEn3" with the top bit of E cleared

struct [[gnu::packed]] HvmStartInfo {
    Le<uint32_t> magic;
    Le<uint32_t> version;  // 1: memmap fields present
    Le<uint32_t> flags;
    Le<uint32_t> nr_modules;
    Le<uint64_t> modlist_paddr;
    Le<uint64_t> cmdline_paddr;
    Le<uint64_t> rsdp_paddr;
    Le<uint64_t> memmap_paddr;  // version >= 1
    Le<uint32_t> memmap_entries;
    Le<uint32_t> reserved;
};
static_assert(sizeof(HvmStartInfo) == 56);

struct [[gnu::packed]] HvmModlistEntry {
    Le<uint64_t> paddr;
    Le<uint64_t> size;
    Le<uint64_t> cmdline_paddr;
    Le<uint64_t> reserved;
};
static_assert(sizeof(HvmModlistEntry) == 32);

struct [[gnu::packed]] HvmMemmapEntry {
    Le<uint64_t> addr;
    Le<uint64_t> size;
    Le<uint32_t> type;  // e820 types
    Le<uint32_t> reserved;
};
static_assert(sizeof(HvmMemmapEntry) == 24);

}  // namespace vireo::arch::x86
