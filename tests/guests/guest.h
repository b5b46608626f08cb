/* Shared declarations of the tiny test guests: how each entry stub calls into guest.c. */
#ifndef VIREO_GUEST_H
#define VIREO_GUEST_H

#include <stdint.h>

/* The boot protocol a guest was entered through (first argument of guest_main). */
enum guest_boot {
    GUEST_PVH32 = 1,   /* ELF32, XEN_ELFNOTE_PHYS32_ENTRY, %ebx = hvm_start_info */
    GUEST_PVH64 = 2,   /* ELF64 with the same 32-bit PVH entry; the stub enters long mode */
    GUEST_VMLINUX = 3, /* ELF64 entered at its 64-bit entry point, %rsi = boot_params */
    GUEST_BZIMAGE = 4, /* bzImage entered at startup_64 (+0x200), %rsi = boot_params */
};

void guest_main(uint32_t boot, uintptr_t info);

/* The real-mode code application processors start in (ap_trampoline.S), copied below 1 MiB. */
extern const uint8_t ap_trampoline_start[];
extern const uint8_t ap_trampoline_end[];

#define AP_TRAMPOLINE_ADDR 0x1000u /* SIPI vector 0x01 */
#define AP_MAILBOX_ADDR 0x1800u    /* u32 count of APs up, then u32 APIC ID per AP */

#endif
