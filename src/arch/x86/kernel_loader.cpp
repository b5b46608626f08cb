// Kernel loading: format detection, bzImage and ELF images, the zero page and hvm_start_info.
#include "arch/x86/kernel_loader.hpp"

#include <algorithm>
#include <cstring>
#include <memory>

#include "arch/x86/boot_layout.hpp"
#include "arch/x86/boot_params.hpp"
#include "arch/x86/elf.hpp"
#include "arch/x86/pvh.hpp"

namespace vireo::arch::x86 {
namespace {

constexpr uint64_t kPage = 4096;

uint64_t align_down(uint64_t v, uint64_t a) {
    return v & ~(a - 1);
}

// RAM below the hole, from the e820 map (the loaders place everything there).
uint64_t low_ram_limit(const GuestMemory& memory) {
    for (const GuestRegion& r : memory.regions()) {
        if (r.gpa == 0) return r.end();
    }
    return 0;
}

Status write_cmdline(const GuestMemory& memory, const std::string& cmdline, size_t max_len) {
    if (cmdline.find('\0') != std::string::npos) return make_error("kernel command line contains a NUL byte");
    if (cmdline.size() > max_len) {
        return make_error("kernel command line is {} bytes; this kernel accepts at most {}", cmdline.size(),
                          max_len);
    }
    static_assert(boot_layout::kCmdlineMaxSize > kDefaultCmdlineMax);
    if (cmdline.size() + 1 > boot_layout::kCmdlineMaxSize)
        return make_error("kernel command line is {} bytes; Vireo passes at most {}", cmdline.size(),
                          boot_layout::kCmdlineMaxSize - 1);
    VIREO_TRY_CTX(memory.write(boot_layout::kCmdlineAddr,
                               {reinterpret_cast<const uint8_t*>(cmdline.c_str()), cmdline.size() + 1}),
                  "kernel command line");
    return {};
}

// Copies the initrd to the highest page-aligned address whose last byte is <= addr_max and
// inside low RAM, above the kernel.
Status place_initrd(const GuestMemory& memory, const BootRequest& request, uint64_t addr_max,
                    BootEntry& entry) {
    if (request.initrd.empty()) return {};
    uint64_t size = request.initrd.size();
    uint64_t limit = std::min(addr_max + 1, low_ram_limit(memory));
    if (size > limit || align_down(limit - size, kPage) < entry.kernel_end) {
        return make_error(
            "initrd of {} bytes does not fit between the end of the kernel (0x{:x}) and 0x{:x} "
            "(the lower of initrd_addr_max and the end of RAM below 4 GiB): give the VM more memory",
            size, entry.kernel_end, limit);
    }
    uint64_t addr = align_down(limit - size, kPage);
    VIREO_TRY_CTX(memory.write(addr, request.initrd), "initrd");
    entry.initrd_addr = addr;
    entry.initrd_size = size;
    return {};
}

// Checks that [addr, addr+size) is guest RAM the kernel may use: above the low area Vireo keeps
// for boot structures, inside one RAM region.
Status check_kernel_range(const GuestMemory& memory, uint64_t addr, uint64_t size, std::string_view what) {
    if (addr < boot_layout::kKernelLoadAddr) {
        return make_error("{} at 0x{:x} overlaps low memory below 1 MiB, which holds the boot structures",
                          what, addr);
    }
    if (!memory.checked_slice(addr, size).ok()) {
        return make_error(
            "{} at 0x{:x}-0x{:x} is outside guest RAM (the VM has {} MiB): give the VM more memory", what,
            addr, addr + size, memory.total_size() >> 20);
    }
    return {};
}

Status write_zero_page(const GuestMemory& memory, const BootRequest& request, const SetupHeader* header,
                       size_t header_len, const BootEntry& entry) {
    auto params = std::make_unique<BootParams>();  // value-initialized: all zero
    if (header != nullptr) {
        std::memcpy(static_cast<void*>(&params->hdr), header, std::min(header_len, sizeof(SetupHeader)));
    } else {
        // An ELF vmlinux carries no header: give it the fields its entry code reads.
        params->hdr.boot_flag = kBootFlag;
        params->hdr.header = kHdrSMagic;
        params->hdr.kernel_alignment = 0x0100'0000;
    }
    params->hdr.type_of_loader = kLoaderTypeUndefined;
    params->hdr.vid_mode = 0xFFFF;  // "normal" text mode: no mode switch
    params->hdr.cmd_line_ptr = static_cast<uint32_t>(boot_layout::kCmdlineAddr);
    params->ext_cmd_line_ptr = 0;
    params->hdr.ramdisk_image = static_cast<uint32_t>(entry.initrd_addr);
    params->hdr.ramdisk_size = static_cast<uint32_t>(entry.initrd_size);
    params->ext_ramdisk_image = static_cast<uint32_t>(entry.initrd_addr >> 32);
    params->ext_ramdisk_size = static_cast<uint32_t>(entry.initrd_size >> 32);
    params->acpi_rsdp_addr = request.acpi_rsdp;
    if (request.e820.size() > kZeroPageE820Max)
        return make_error("memory map has {} entries; the zero page holds {}", request.e820.size(),
                          kZeroPageE820Max);
    for (size_t i = 0; i < request.e820.size(); ++i) {
        params->e820_table[i].addr = request.e820[i].addr;
        params->e820_table[i].size = request.e820[i].size;
        params->e820_table[i].type = static_cast<uint32_t>(request.e820[i].type);
    }
    params->e820_entries = static_cast<uint8_t>(request.e820.size());
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kZeroPageAddr, *params), "zero page");
    return {};
}

Status write_pvh_start_info(const GuestMemory& memory, const BootRequest& request, const BootEntry& entry) {
    if (request.e820.size() > boot_layout::kPvhMemmapMax) {
        return make_error("memory map has {} entries; the PVH memory map holds {}", request.e820.size(),
                          boot_layout::kPvhMemmapMax);
    }
    HvmStartInfo info{};
    info.magic = kHvmStartMagic;
    info.version = 1;
    info.cmdline_paddr = boot_layout::kCmdlineAddr;
    info.rsdp_paddr = request.acpi_rsdp;
    info.memmap_paddr = boot_layout::kPvhMemmapAddr;
    info.memmap_entries = static_cast<uint32_t>(request.e820.size());
    if (entry.initrd_size > 0) {
        HvmModlistEntry module{};
        module.paddr = entry.initrd_addr;
        module.size = entry.initrd_size;
        VIREO_TRY_CTX(memory.write_obj(boot_layout::kPvhModlistAddr, module), "PVH module list");
        info.nr_modules = 1;
        info.modlist_paddr = boot_layout::kPvhModlistAddr;
    }
    for (size_t i = 0; i < request.e820.size(); ++i) {
        HvmMemmapEntry e{};
        e.addr = request.e820[i].addr;
        e.size = request.e820[i].size;
        e.type = static_cast<uint32_t>(request.e820[i].type);
        VIREO_TRY_CTX(memory.write_obj(boot_layout::kPvhMemmapAddr + i * sizeof(HvmMemmapEntry), e),
                      "PVH memory map");
    }
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kPvhStartInfoAddr, info), "PVH start info");
    return {};
}

// The NUL-terminated string at `offset` in the image, if it is one (at most 256 bytes).
std::string c_string_at(std::span<const uint8_t> image, uint64_t offset) {
    std::string s;
    for (uint64_t i = offset; i < image.size() && s.size() < 256; ++i) {
        if (image[i] == 0) return s;
        if (image[i] < 0x20 || image[i] > 0x7e) return {};
        s.push_back(static_cast<char>(image[i]));
    }
    return {};
}

}  // namespace

std::string_view kernel_format_name(KernelFormat format) {
    switch (format) {
        case KernelFormat::kBzImage:
            return "bzImage";
        case KernelFormat::kElfVmlinux:
            return "ELF vmlinux";
        case KernelFormat::kPvhElf32:
            return "PVH ELF32";
        case KernelFormat::kPvhElf64:
            return "PVH ELF64";
    }
    return "unknown";
}

bool looks_like_bzimage(std::span<const uint8_t> kernel) {
    return kernel.size() >= 0x206 && load_le<uint32_t>(kernel.data() + 0x202) == kHdrSMagic;
}

Result<BootEntry> load_bzimage(const GuestMemory& memory, const BootRequest& request) {
    std::span<const uint8_t> image = request.kernel;
    if (image.size() < kSetupHeaderOffset + sizeof(SetupHeader)) {
        return make_error("bzImage: truncated: {} bytes is too short for the boot sector and setup header",
                          image.size());
    }
    SetupHeader hdr;
    std::memcpy(static_cast<void*>(&hdr), image.data() + kSetupHeaderOffset, sizeof hdr);
    if (hdr.header != kHdrSMagic) return make_error("bzImage: no \"HdrS\" setup header signature at 0x202");
    if (hdr.boot_flag != kBootFlag)
        return make_error("bzImage: boot flag is 0x{:04x}, not 0xAA55", static_cast<uint16_t>(hdr.boot_flag));
    uint16_t version = hdr.version;
    if (version < 0x0206) {
        return make_error("bzImage: boot protocol {}.{:02} is too old (Vireo needs 2.06 or later)",
                          version >> 8, version & 0xff);
    }
    if ((hdr.loadflags & kLoadedHigh) == 0)
        return make_error("bzImage: the kernel is a zImage (loads below 1 MiB), which Vireo does not boot");
    if (version >= 0x020c && (hdr.xloadflags & kXlfKernel64) == 0)
        return make_error(
            "bzImage: the kernel has no 64-bit entry point (xloadflags XLF_KERNEL_64 clear: a 32-bit "
            "kernel?)");

    uint64_t setup_sects = hdr.setup_sects == 0 ? 4 : hdr.setup_sects;
    uint64_t setup_size = (setup_sects + 1) * 512;
    if (setup_size >= image.size()) {
        return make_error("bzImage: truncated: the setup code takes {} bytes ({} sectors), the file has {}",
                          setup_size, setup_sects, image.size());
    }
    std::span<const uint8_t> payload = image.subspan(setup_size);
    uint64_t declared = static_cast<uint64_t>(static_cast<uint32_t>(hdr.syssize)) * 16;
    if (declared > payload.size() + 15) {
        return make_error(
            "bzImage: truncated: the header says 0x{:x} bytes of protected-mode code, the file has "
            "0x{:x}",
            declared, payload.size());
    }
    if (payload.size() <= kStartup64Offset)
        return make_error(
            "bzImage: the protected-mode code ({} bytes) ends before the 64-bit entry at +0x200",
            payload.size());
    // How much the kernel needs from its load address, decompression included (2.10+).
    uint64_t need = payload.size();
    if (version >= 0x020a) need = std::max<uint64_t>(need, static_cast<uint32_t>(hdr.init_size));

    BootEntry entry;
    entry.format = KernelFormat::kBzImage;
    entry.protocol = BootProtocol::kLinux64;
    entry.kernel_start = boot_layout::kKernelLoadAddr;
    entry.kernel_end = boot_layout::kKernelLoadAddr + need;
    entry.entry = boot_layout::kKernelLoadAddr + kStartup64Offset;
    entry.boot_info = boot_layout::kZeroPageAddr;
    if (hdr.kernel_version != 0)
        entry.version = c_string_at(image, 0x200 + static_cast<uint64_t>(hdr.kernel_version));
    VIREO_TRY_CTX(check_kernel_range(memory, entry.kernel_start, need, "the kernel (init_size)"), "bzImage");
    VIREO_TRY_CTX(memory.write(entry.kernel_start, payload), "bzImage");

    size_t cmdline_max = static_cast<uint32_t>(hdr.cmdline_size);
    VIREO_TRY(write_cmdline(memory, request.cmdline, cmdline_max));
    uint64_t initrd_max = static_cast<uint32_t>(hdr.initrd_addr_max);
    VIREO_TRY(place_initrd(memory, request, initrd_max, entry));
    // The header runs from 0x1f1 to 0x202 + the jump's offset byte (boot.rst: "the end of the
    // setup header can be calculated as follows: 0x0202 + byte value at offset 0x0201").
    size_t header_len = 0x202 + image[0x201] - kSetupHeaderOffset;
    VIREO_TRY(write_zero_page(memory, request, &hdr, header_len, entry));
    return entry;
}

Result<BootEntry> load_elf_kernel(const GuestMemory& memory, const BootRequest& request) {
    VIREO_ASSIGN_OR_RETURN(ElfImage elf, parse_elf(request.kernel));
    VIREO_ASSIGN_OR_RETURN(std::optional<uint32_t> pvh_entry, find_pvh_entry(elf));

    BootEntry entry;
    if (pvh_entry) {
        entry.format = elf.is_64bit ? KernelFormat::kPvhElf64 : KernelFormat::kPvhElf32;
        entry.protocol = BootProtocol::kPvh;
        entry.entry = *pvh_entry;
        entry.boot_info = boot_layout::kPvhStartInfoAddr;
    } else {
        if (!elf.is_64bit) {
            return make_error(
                "ELF32 image without a PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY): Vireo boots "
                "32-bit ELF images only through PVH");
        }
        entry.format = KernelFormat::kElfVmlinux;
        entry.protocol = BootProtocol::kLinux64;
        entry.entry = elf.entry;
        entry.boot_info = boot_layout::kZeroPageAddr;
    }

    entry.kernel_start = UINT64_MAX;
    for (size_t i = 0; i < elf.segments.size(); ++i) {
        const ElfSegment& seg = elf.segments[i];
        VIREO_TRY_CTX(check_kernel_range(memory, seg.paddr, seg.mem_size, fmt::format("segment {}", i)),
                      "ELF");
        entry.kernel_start = std::min(entry.kernel_start, seg.paddr);
        entry.kernel_end = std::max(entry.kernel_end, seg.paddr + seg.mem_size);
    }
    bool entry_loaded = std::any_of(elf.segments.begin(), elf.segments.end(), [&](const ElfSegment& s) {
        return entry.entry >= s.paddr && entry.entry < s.paddr + s.file_size;
    });
    if (!entry_loaded) {
        return make_error(
            "ELF: the entry point 0x{:x} is not inside a loaded segment (is it a virtual address?)",
            entry.entry);
    }
    for (const ElfSegment& seg : elf.segments) {
        VIREO_TRY(memory.write(seg.paddr, request.kernel.subspan(seg.file_offset, seg.file_size)));
        // The zero-filled tail (.bss): guest memory may not be fresh after a reload.
        if (seg.mem_size > seg.file_size) {
            VIREO_ASSIGN_OR_RETURN(
                auto bss, memory.checked_slice(seg.paddr + seg.file_size, seg.mem_size - seg.file_size));
            std::memset(bss.data(), 0, bss.size());
        }
    }

    VIREO_TRY(write_cmdline(memory, request.cmdline, kDefaultCmdlineMax));
    VIREO_TRY(place_initrd(memory, request, kDefaultInitrdAddrMax, entry));
    if (entry.protocol == BootProtocol::kPvh) {
        VIREO_TRY(write_pvh_start_info(memory, request, entry));
    } else {
        VIREO_TRY(write_zero_page(memory, request, nullptr, 0, entry));
    }
    return entry;
}

Result<BootEntry> load_kernel(const GuestMemory& memory, const BootRequest& request) {
    if (request.kernel.empty()) return make_error("the kernel image is empty");
    if (looks_like_elf(request.kernel)) return load_elf_kernel(memory, request);
    if (looks_like_bzimage(request.kernel)) return load_bzimage(memory, request);
    return make_error("unrecognized kernel image: neither a bzImage (no \"HdrS\" at 0x202) nor an ELF file");
}

}  // namespace vireo::arch::x86
