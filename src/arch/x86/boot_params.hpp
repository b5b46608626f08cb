// The Linux x86 boot protocol's zero page (struct boot_params) and setup header, as the kernel
// defines them (Documentation/arch/x86/boot.rst, arch/x86/include/uapi/asm/bootparam.h).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/endian.hpp"

namespace vireo::arch::x86 {

// boot.rst "The real-mode kernel header": offsets are from the start of the bzImage file and of
// boot_params alike (the header sits at 0x1f1 in both).
struct [[gnu::packed]] SetupHeader {
    uint8_t setup_sects;                 // 0x1f1: 512-byte setup sectors after the boot sector (0 means 4)
    Le<uint16_t> root_flags;             // 0x1f2
    Le<uint32_t> syssize;                // 0x1f4: protected-mode code size in 16-byte paragraphs
    Le<uint16_t> ram_size;               // 0x1f8: obsolete
    Le<uint16_t> vid_mode;               // 0x1fa
    Le<uint16_t> root_dev;               // 0x1fc
    Le<uint16_t> boot_flag;              // 0x1fe: 0xAA55
    Le<uint16_t> jump;                   // 0x200: jmp; its second byte + 0x202 is the header's end
    Le<uint32_t> header;                 // 0x202: "HdrS"
    Le<uint16_t> version;                // 0x206: protocol version (0x020f = 2.15)
    Le<uint32_t> realmode_swtch;         // 0x208
    Le<uint16_t> start_sys_seg;          // 0x20c
    Le<uint16_t> kernel_version;         // 0x20e: offset of the version string - 0x200
    uint8_t type_of_loader;              // 0x210
    uint8_t loadflags;                   // 0x211
    Le<uint16_t> setup_move_size;        // 0x212
    Le<uint32_t> code32_start;           // 0x214
    Le<uint32_t> ramdisk_image;          // 0x218
    Le<uint32_t> ramdisk_size;           // 0x21c
    Le<uint32_t> bootsect_kludge;        // 0x220
    Le<uint16_t> heap_end_ptr;           // 0x224
    uint8_t ext_loader_ver;              // 0x226
    uint8_t ext_loader_type;             // 0x227
    Le<uint32_t> cmd_line_ptr;           // 0x228
    Le<uint32_t> initrd_addr_max;        // 0x22c: highest address the initrd's last byte may have
    Le<uint32_t> kernel_alignment;       // 0x230
    uint8_t relocatable_kernel;          // 0x234
    uint8_t min_alignment;               // 0x235
    Le<uint16_t> xloadflags;             // 0x236
    Le<uint32_t> cmdline_size;           // 0x238: longest command line, without the NUL
    Le<uint32_t> hardware_subarch;       // 0x23c
    Le<uint64_t> hardware_subarch_data;  // 0x240
    Le<uint32_t> payload_offset;         // 0x248: compressed payload, from the protected-mode code
    Le<uint32_t> payload_length;         // 0x24c
    Le<uint64_t> setup_data;             // 0x250
    Le<uint64_t> pref_address;           // 0x258
    Le<uint32_t> init_size;              // 0x260: memory the kernel needs from its load address
    Le<uint32_t> handover_offset;        // 0x264
    Le<uint32_t> kernel_info_offset;     // 0x268
};
static_assert(sizeof(SetupHeader) == 0x26c - 0x1f1);

inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint16_t kBootFlag = 0xAA55;
inline constexpr uint32_t kHdrSMagic = 0x53726448;  // "HdrS"
inline constexpr uint8_t kLoadedHigh = 1 << 0;      // loadflags: protected-mode code at 1 MiB
inline constexpr uint8_t kCanUseHeap = 1 << 7;
inline constexpr uint16_t kXlfKernel64 = 1 << 0;  // xloadflags: 64-bit entry at +0x200
inline constexpr uint16_t kXlfCanBeLoadedAbove4g = 1 << 1;
inline constexpr uint64_t kStartup64Offset = 0x200;  // boot.rst "64-bit boot protocol"
inline constexpr uint8_t kLoaderTypeUndefined = 0xFF;

// One e820 entry as the zero page carries it.
struct [[gnu::packed]] BootE820Entry {
    Le<uint64_t> addr;
    Le<uint64_t> size;
    Le<uint32_t> type;
};
static_assert(sizeof(BootE820Entry) == 20);

inline constexpr size_t kZeroPageE820Max = 128;  // E820_MAX_ENTRIES_ZEROPAGE

// struct boot_params ("zero page"), 4096 bytes; only the fields a loader fills are named.
struct [[gnu::packed]] BootParams {
    uint8_t screen_info[0x40];        // 0x000
    uint8_t apm_bios_info[0x14];      // 0x040
    uint8_t pad2[4];                  // 0x054
    Le<uint64_t> tboot_addr;          // 0x058
    uint8_t ist_info[0x10];           // 0x060
    Le<uint64_t> acpi_rsdp_addr;      // 0x070
    uint8_t pad3[8];                  // 0x078
    uint8_t hd0_info[16];             // 0x080
    uint8_t hd1_info[16];             // 0x090
    uint8_t sys_desc_table[0x10];     // 0x0a0
    uint8_t olpc_ofw_header[0x10];    // 0x0b0
    Le<uint32_t> ext_ramdisk_image;   // 0x0c0
    Le<uint32_t> ext_ramdisk_size;    // 0x0c4
    Le<uint32_t> ext_cmd_line_ptr;    // 0x0c8
    uint8_t pad4[112];                // 0x0cc
    Le<uint32_t> cc_blob_address;     // 0x13c
    uint8_t edid_info[0x80];          // 0x140
    uint8_t efi_info[0x20];           // 0x1c0
    Le<uint32_t> alt_mem_k;           // 0x1e0
    Le<uint32_t> scratch;             // 0x1e4
    uint8_t e820_entries;             // 0x1e8
    uint8_t eddbuf_entries;           // 0x1e9
    uint8_t edd_mbr_sig_buf_entries;  // 0x1ea
    uint8_t kbd_status;               // 0x1eb
    uint8_t secure_boot;              // 0x1ec
    uint8_t pad5[2];                  // 0x1ed
    uint8_t sentinel;                 // 0x1ef
    uint8_t pad6[1];                  // 0x1f0
    SetupHeader hdr;                  // 0x1f1
    uint8_t pad7[0x290 - 0x1f1 - sizeof(SetupHeader)];
    Le<uint32_t> edd_mbr_sig_buffer[16];         // 0x290
    BootE820Entry e820_table[kZeroPageE820Max];  // 0x2d0
    uint8_t pad8[48];                            // 0xcd0
    uint8_t eddbuf[0xeec - 0xd00];               // 0xd00
    uint8_t pad9[276];                           // 0xeec
};
static_assert(sizeof(BootParams) == 4096);
static_assert(offsetof(BootParams, acpi_rsdp_addr) == 0x070);
static_assert(offsetof(BootParams, ext_cmd_line_ptr) == 0x0c8);
static_assert(offsetof(BootParams, e820_entries) == 0x1e8);
static_assert(offsetof(BootParams, hdr) == 0x1f1);
static_assert(offsetof(BootParams, e820_table) == 0x2d0);

}  // namespace vireo::arch::x86
