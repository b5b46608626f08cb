// A validating reader of ELF32/ELF64 x86 kernel images: the loadable segments, the entry point
// and the notes (where a PVH kernel names its 32-bit entry). It trusts nothing in the file.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace vireo::arch::x86 {

struct ElfSegment {
    uint64_t file_offset = 0;
    uint64_t file_size = 0;
    uint64_t paddr = 0;     // where it goes in guest-physical memory
    uint64_t mem_size = 0;  // >= file_size; the rest is zero-filled
};

struct ElfNote {
    std::span<const uint8_t> name;  // without the terminating NUL
    uint32_t type = 0;
    std::span<const uint8_t> desc;
};

struct ElfImage {
    bool is_64bit = false;
    uint16_t machine = 0;  // EM_386 or EM_X86_64
    uint64_t entry = 0;
    std::vector<ElfSegment> segments;  // PT_LOAD with a non-zero memory size, in file order
    std::vector<ElfNote> notes;        // from every PT_NOTE
};

inline constexpr size_t kElfMaxProgramHeaders = 512;
inline constexpr size_t kElfMaxNotes = 1024;

// Parses and checks the headers: magic, class, little-endian, x86 machine, executable type,
// program headers and notes inside the file, file size <= memory size, no address overflow.
// Errors say what is wrong and where ("ELF program header 3: segment extends past the end of
// the file (offset 0x..., size 0x..., file size 0x...)").
Result<ElfImage> parse_elf(std::span<const uint8_t> file);

bool looks_like_elf(std::span<const uint8_t> file);

// Xen's ELF notes (xen/include/public/elfnote.h).
inline constexpr uint32_t kXenElfnotePhys32Entry = 18;

// The PVH entry (XEN_ELFNOTE_PHYS32_ENTRY in a "Xen" note), if the image has one. Its
// descriptor is 4 or 8 bytes (Linux emits a pointer-sized one); the value must fit in 32 bits.
Result<std::optional<uint32_t>> find_pvh_entry(const ElfImage& image);

}  // namespace vireo::arch::x86
