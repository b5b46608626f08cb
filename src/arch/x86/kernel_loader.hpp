// Kernel loaders: a bzImage (Linux x86 boot protocol, 64-bit entry), an ELF vmlinux (64-bit
// entry, same zero page) or a PVH ELF32/ELF64 image (32-bit entry, hvm_start_info) is copied
// into guest memory with its command line, initrd and memory map, and the loader says where
// and how the boot vCPU enters it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "arch/x86/e820.hpp"
#include "base/guest_memory.hpp"
#include "base/result.hpp"

namespace vireo::arch::x86 {

enum class BootProtocol {
    kLinux64,  // 64-bit mode, paging on (identity map), %rsi = zero page (boot.rst "64-bit boot protocol")
    kPvh,      // 32-bit protected mode, paging off, %ebx = hvm_start_info (Xen PVH ABI)
};

enum class KernelFormat { kBzImage, kElfVmlinux, kPvhElf32, kPvhElf64 };

std::string_view kernel_format_name(KernelFormat format);

struct BootRequest {
    std::span<const uint8_t> kernel;
    std::span<const uint8_t> initrd;  // empty: none
    std::string cmdline;
    std::vector<E820Entry> e820;  // the map the guest is told about
    uint64_t acpi_rsdp = 0;       // 0: none (the kernel scans for it)
};

struct BootEntry {
    KernelFormat format = KernelFormat::kBzImage;
    BootProtocol protocol = BootProtocol::kLinux64;
    uint64_t entry = 0;      // %rip
    uint64_t boot_info = 0;  // zero page (%rsi) or hvm_start_info (%ebx)
    uint64_t kernel_start = 0;
    uint64_t kernel_end = 0;  // first byte past what the kernel occupies (init_size for bzImage)
    uint64_t initrd_addr = 0;
    uint64_t initrd_size = 0;
    std::string version;  // bzImage kernel version string, when it has one
};

// Detects the format and loads. Guest memory is expected to be zero where the kernel goes
// (fresh memory); everything written is bounds-checked. Errors name the problem: "bzImage:
// truncated: the header says 0x... bytes of protected-mode code, the file has 0x...".
Result<BootEntry> load_kernel(const GuestMemory& memory, const BootRequest& request);

// The pieces, exposed for tests.
Result<BootEntry> load_bzimage(const GuestMemory& memory, const BootRequest& request);
Result<BootEntry> load_elf_kernel(const GuestMemory& memory, const BootRequest& request);
bool looks_like_bzimage(std::span<const uint8_t> kernel);

// Linux's x86 COMMAND_LINE_SIZE - 1: the command line limit for kernels without a setup header.
inline constexpr size_t kDefaultCmdlineMax = 2047;
// Highest initrd address for kernels that do not say (64-bit Linux accepts 2 GiB - 1).
inline constexpr uint64_t kDefaultInitrdAddrMax = 0x7fff'ffff;

}  // namespace vireo::arch::x86
