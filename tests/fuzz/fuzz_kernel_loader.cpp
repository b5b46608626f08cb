// Fuzz target: kernel images (bzImage, ELF vmlinux, PVH ELF32/ELF64) are outside data. Loading
// any byte string must end in a BootEntry inside guest RAM or a clean error: no crash, no
// out-of-bounds access, no hang.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>

#include "arch/x86/e820.hpp"
#include "arch/x86/elf.hpp"
#include "arch/x86/kernel_loader.hpp"
#include "base/guest_memory.hpp"

namespace {

constexpr uint64_t kRam = 16 << 20;

const vireo::GuestMemory& memory() {
    static std::unique_ptr<uint8_t[]> bytes(new uint8_t[kRam]());
    static vireo::GuestMemory mem({vireo::GuestRegion{0, kRam, bytes.get()}});
    return mem;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::span<const uint8_t> input(data, size);
    // The first byte picks an initrd size, so placement paths get exercised too.
    static const uint8_t initrd[64 << 10] = {};
    size_t initrd_size = size > 0 ? (static_cast<size_t>(data[0]) << 8) : 0;

    vireo::arch::x86::BootRequest request;
    request.kernel = input;
    request.initrd = std::span<const uint8_t>(initrd, initrd_size);
    request.cmdline = "console=ttyS0";
    request.e820 = vireo::arch::x86::build_e820(kRam);
    request.acpi_rsdp = 0xe0000;
    auto entry = vireo::arch::x86::load_kernel(memory(), request);
    if (entry.ok()) {
        // What a loader accepts lies in RAM.
        if (entry->kernel_end > kRam || entry->kernel_start < 0x100000) std::abort();
        if (entry->initrd_size != 0 && entry->initrd_addr + entry->initrd_size > kRam) std::abort();
        if (entry->initrd_size != 0 && entry->initrd_addr < entry->kernel_end) std::abort();
    }
    // The ELF reader on its own, notes included.
    auto elf = vireo::arch::x86::parse_elf(input);
    if (elf.ok()) {
        for (const auto& note : elf->notes) {
            if (note.name.data() < data || note.desc.data() + note.desc.size() > data + size) std::abort();
        }
        (void)vireo::arch::x86::find_pvh_entry(*elf);
    }
    return 0;
}
