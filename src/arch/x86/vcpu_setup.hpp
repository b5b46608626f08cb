// The boot vCPU's state at a kernel's entry point, as the boot protocols define it: segments,
// control registers and paging for the 64-bit Linux entry or the 32-bit PVH entry, the
// general registers, the FPU, the MSRs firmware leaves behind, and the local APIC's LINT pins.
// Plain functions over KVM's structs, so tests check them without KVM.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <vector>

#include "arch/x86/kernel_loader.hpp"
#include "base/guest_memory.hpp"
#include "base/result.hpp"

namespace vireo::arch::x86 {

// Control register and EFER bits (Intel SDM Vol. 3A §2.5, §2.2.1).
inline constexpr uint64_t kCr0Pe = 1ULL << 0;
inline constexpr uint64_t kCr0Mp = 1ULL << 1;
inline constexpr uint64_t kCr0Et = 1ULL << 4;
inline constexpr uint64_t kCr0Ne = 1ULL << 5;
inline constexpr uint64_t kCr0Pg = 1ULL << 31;
inline constexpr uint64_t kCr4Pae = 1ULL << 5;
inline constexpr uint64_t kEferLme = 1ULL << 8;
inline constexpr uint64_t kEferLma = 1ULL << 10;

// Writes the boot GDT (code segment for the protocol's mode) and an empty IDT.
Status write_boot_gdt(const GuestMemory& memory, BootProtocol protocol);
// Identity-maps the first 4 GiB with 2 MiB pages (the 64-bit entry needs paging; 4 GiB so the
// local APIC and IOAPIC are reachable before the kernel builds its own tables).
Status write_identity_page_tables(const GuestMemory& memory);

// The special registers at entry, starting from KVM's reset values in `sregs`.
kvm_sregs boot_sregs(const kvm_sregs& sregs, BootProtocol protocol);
kvm_regs boot_regs(const BootEntry& entry);
// x87 control word 0x37f and MXCSR 0x1f80: the values after FNINIT and reset.
kvm_fpu boot_fpu();
// MSRs firmware leaves set: SYSENTER/SYSCALL zeroed, fast strings on, MTRRs enabled with
// write-back as the default memory type.
std::vector<kvm_msr_entry> boot_msrs();
// LINT0 as ExtINT (the 8259 PIC's output) and LINT1 as NMI, as a PC BIOS programs them
// (MultiProcessor Specification 1.4 §3.6.2.2 "virtual wire" mode).
void set_lapic_lint(kvm_lapic_state& lapic);

// MSR indices used above.
inline constexpr uint32_t kMsrSysenterCs = 0x174;
inline constexpr uint32_t kMsrSysenterEsp = 0x175;
inline constexpr uint32_t kMsrSysenterEip = 0x176;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrCstar = 0xc0000083;
inline constexpr uint32_t kMsrSyscallMask = 0xc0000084;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint32_t kMsrIa32MiscEnable = 0x1a0;
inline constexpr uint32_t kMsrMtrrDefType = 0x2ff;

// Local APIC register offsets (Intel SDM Vol. 3A Table 11-1).
inline constexpr uint32_t kApicLvtLint0 = 0x350;
inline constexpr uint32_t kApicLvtLint1 = 0x360;
inline constexpr uint32_t kApicDeliveryModeExtInt = 7;
inline constexpr uint32_t kApicDeliveryModeNmi = 4;

}  // namespace vireo::arch::x86
