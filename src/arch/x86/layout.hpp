// The x86-64 guest address map Vireo builds: RAM, the 32-bit MMIO hole, fixed platform
// devices, and the I/O ports and IRQs of the legacy devices. One place, so the VMM, the ACPI
// tables and the PCI code agree.
#pragma once

#include <cstdint>

namespace vireo::arch::x86::layout {

// ---- Guest-physical memory ------------------------------------------------------------------
// RAM starts at 0. Guests with more than kMmioHoleStart bytes of RAM get the rest above 4 GiB.
inline constexpr uint64_t kMmioHoleStart = 0xC000'0000;  // 3 GiB
inline constexpr uint64_t kMmioHoleEnd = 0x1'0000'0000;  // 4 GiB
inline constexpr uint64_t kRamHighStart = kMmioHoleEnd;

// Inside the hole (nothing else may be placed here):
inline constexpr uint64_t kPciMmio32Start = 0xC000'0000;  // 32-bit PCI BARs, assigned by the VMM
inline constexpr uint64_t kPciMmio32Size = 0x2000'0000;   // 512 MiB
inline constexpr uint64_t kPciEcamStart = 0xE000'0000;    // PCI Express ECAM (ACPI MCFG)
inline constexpr uint64_t kPciEcamSize = 0x1000'0000;     // buses 0..255, 1 MiB each
inline constexpr uint64_t kIoapicStart = 0xFEC0'0000;     // in-kernel IOAPIC
inline constexpr uint64_t kIoapicSize = 0x1000;
inline constexpr uint64_t kBootTimerAddr = 0xD000'0000;  // unused gap: boot-time marker (write 123)
inline constexpr uint64_t kLapicStart = 0xFEE0'0000;     // local APICs
inline constexpr uint64_t kLapicSize = 0x1000;
inline constexpr uint64_t kKvmTssAddr = 0xFFFB'D000;          // KVM_SET_TSS_ADDR (3 pages)
inline constexpr uint64_t kKvmIdentityMapAddr = 0xFFFB'C000;  // KVM_SET_IDENTITY_MAP_ADDR (1 page)

// Low memory below 1 MiB:
inline constexpr uint64_t kEbdaStart = 0x9'FC00;  // e820: RAM below, reserved from here to 1 MiB
inline constexpr uint64_t kBiosAreaStart = 0xA'0000;
inline constexpr uint64_t kAcpiTablesStart = 0xE'0000;  // RSDP first (Linux scans 0xE0000-0xFFFFF)
inline constexpr uint64_t kAcpiTablesEnd = 0x10'0000;
inline constexpr uint64_t kHighMemoryStart = 0x10'0000;  // 1 MiB: kernels load here

// ---- I/O ports and ISA IRQs --------------------------------------------------------------------
inline constexpr uint16_t kI8042DataPort = 0x60;  // and command/status at 0x64
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr uint16_t kCmosPort = 0x70;     // index 0x70, data 0x71
inline constexpr uint16_t kCom1Port = 0x3F8;    // 8 ports
inline constexpr uint16_t kAcpiPmPort = 0x600;  // PM1a event (4), PM1a control (2), PM timer (4)
inline constexpr uint16_t kAcpiPm1aEventPort = 0x600;
inline constexpr uint16_t kAcpiPm1aControlPort = 0x604;
inline constexpr uint16_t kAcpiPmTimerPort = 0x608;
inline constexpr uint16_t kResetPort = 0xCF9;             // FADT RESET_REG
inline constexpr uint16_t kPciConfigAddressPort = 0xCF8;  // mechanism #1, data at 0xCFC
inline constexpr uint16_t kPciConfigDataPort = 0xCFC;

inline constexpr uint32_t kIrqKeyboard = 1;
inline constexpr uint32_t kIrqCom1 = 4;
inline constexpr uint32_t kIrqRtc = 8;
inline constexpr uint32_t kIrqAcpiSci = 9;
inline constexpr uint32_t kIrqMouse = 12;
// PCI INTx fallback lines (INTA..INTD of slot N rotate over these), level-triggered.
inline constexpr uint32_t kIrqPciIntx[4] = {5, 10, 11, 7};

}  // namespace vireo::arch::x86::layout
