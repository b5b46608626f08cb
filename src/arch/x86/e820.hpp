// Where guest RAM goes for a given size (below the 32-bit MMIO hole, the rest above 4 GiB) and
// the e820 memory map that describes it, with the reserved low areas and the hole's fixed
// ranges, to the guest (boot_params, hvm_start_info).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace vireo::arch::x86 {

// ACPI 6.5 §15 "System Address Map Interfaces" (the e820 types).
enum class E820Type : uint32_t {
    kRam = 1,
    kReserved = 2,
    kAcpi = 3,
    kNvs = 4,
    kUnusable = 5,
};

struct E820Entry {
    uint64_t addr = 0;
    uint64_t size = 0;
    E820Type type = E820Type::kRam;
    uint64_t end() const { return addr + size; }
    bool operator==(const E820Entry&) const = default;
};

// A contiguous range of guest RAM.
struct RamRange {
    uint64_t gpa = 0;
    uint64_t size = 0;
    bool operator==(const RamRange&) const = default;
};

// RAM from 0 up to the hole (layout::kMmioHoleStart); the rest from 4 GiB up.
std::vector<RamRange> ram_ranges(uint64_t ram_size);

// One past the last byte of RAM below the hole.
uint64_t low_ram_end(uint64_t ram_size);

// The map, sorted by address, non-overlapping: low RAM up to the EBDA, the EBDA/VGA/BIOS area
// (ACPI tables included) reserved, RAM from 1 MiB to the hole, the PCI ECAM window and KVM's
// TSS/identity-map pages reserved inside the hole, and RAM above 4 GiB.
std::vector<E820Entry> build_e820(uint64_t ram_size);

std::string_view e820_type_name(E820Type type);

}  // namespace vireo::arch::x86
