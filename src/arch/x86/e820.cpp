// The guest RAM layout and the e820 map.
#include "arch/x86/e820.hpp"

#include <algorithm>

#include "arch/x86/layout.hpp"

namespace vireo::arch::x86 {

namespace {
// KVM_SET_IDENTITY_MAP_ADDR takes one page, KVM_SET_TSS_ADDR three, back to back.
constexpr uint64_t kKvmPrivateStart = layout::kKvmIdentityMapAddr;
constexpr uint64_t kKvmPrivateEnd = layout::kKvmTssAddr + 3 * 4096;
static_assert(layout::kKvmIdentityMapAddr + 4096 == layout::kKvmTssAddr);
}  // namespace

std::vector<RamRange> ram_ranges(uint64_t ram_size) {
    std::vector<RamRange> ranges;
    uint64_t low = std::min(ram_size, layout::kMmioHoleStart);
    if (low > 0) ranges.push_back({0, low});
    if (ram_size > low) ranges.push_back({layout::kRamHighStart, ram_size - low});
    return ranges;
}

uint64_t low_ram_end(uint64_t ram_size) {
    return std::min(ram_size, layout::kMmioHoleStart);
}

std::vector<E820Entry> build_e820(uint64_t ram_size) {
    std::vector<E820Entry> map;
    uint64_t low_end = low_ram_end(ram_size);
    // Below 1 MiB: conventional memory up to the EBDA; the EBDA, VGA window and BIOS area (where
    // the ACPI tables live) reserved, as a PC BIOS reports them.
    map.push_back({0, std::min(low_end, layout::kEbdaStart), E820Type::kRam});
    map.push_back({layout::kEbdaStart, layout::kHighMemoryStart - layout::kEbdaStart, E820Type::kReserved});
    if (low_end > layout::kHighMemoryStart)
        map.push_back({layout::kHighMemoryStart, low_end - layout::kHighMemoryStart, E820Type::kRam});
    // Inside the hole: the ECAM window must be reserved or Linux will not use MMCONFIG
    // (PCI Firmware spec 3.2 §4.1.2; arch/x86/pci/mmconfig-shared.c is_mmconf_reserved), and
    // KVM's private TSS and identity-map pages must not be mistaken for free address space.
    map.push_back({layout::kPciEcamStart, layout::kPciEcamSize, E820Type::kReserved});
    map.push_back({kKvmPrivateStart, kKvmPrivateEnd - kKvmPrivateStart, E820Type::kReserved});
    if (ram_size > low_end) map.push_back({layout::kRamHighStart, ram_size - low_end, E820Type::kRam});
    map.erase(std::remove_if(map.begin(), map.end(), [](const E820Entry& e) { return e.size == 0; }),
              map.end());
    return map;
}

std::string_view e820_type_name(E820Type type) {
    switch (type) {
        case E820Type::kRam:
            return "usable";
        case E820Type::kReserved:
            return "reserved";
        case E820Type::kAcpi:
            return "ACPI data";
        case E820Type::kNvs:
            return "ACPI NVS";
        case E820Type::kUnusable:
            return "unusable";
    }
    return "unknown";
}

}  // namespace vireo::arch::x86
