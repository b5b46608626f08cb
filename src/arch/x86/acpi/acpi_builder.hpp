// Builds the ACPI tables of a Vireo x86 VM (RSDP, XSDT, FADT, FACS, DSDT, MADT, MCFG) from a
// description of the machine, and writes them into guest memory where the guest finds them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "arch/x86/layout.hpp"
#include "base/guest_memory.hpp"
#include "base/result.hpp"

namespace vireo::arch::x86::acpi {

// The PCI Express host bridge \_SB.PCI0 describes and MCFG announces.
struct PciHostConfig {
    uint16_t segment = 0;
    uint8_t bus_start = 0;
    uint8_t bus_end = 0;
    uint64_t ecam_base = layout::kPciEcamStart;  // ECAM address of bus 0
    uint32_t mmio32_base = static_cast<uint32_t>(layout::kPciMmio32Start);
    uint32_t mmio32_size = static_cast<uint32_t>(layout::kPciMmio32Size);
    // Optional 64-bit BAR window (the VMM places it above the end of RAM); size 0: none.
    uint64_t mmio64_base = 0;
    uint64_t mmio64_size = 0;
    // ISA IRQs INTA..INTD rotate over (level-triggered, shared); see pci_intx_irq().
    std::array<uint8_t, 4> intx_irqs = {
        static_cast<uint8_t>(layout::kIrqPciIntx[0]), static_cast<uint8_t>(layout::kIrqPciIntx[1]),
        static_cast<uint8_t>(layout::kIrqPciIntx[2]), static_cast<uint8_t>(layout::kIrqPciIntx[3])};
};

struct AcpiConfig {
    uint32_t cpu_count = 1;  // 1..255: APIC IDs and processor UIDs 0..cpu_count-1
    // Legacy devices present (each adds its DSDT device and FADT boot flags).
    bool com1 = true;
    bool i8042 = true;
    bool rtc = true;
    std::optional<PciHostConfig> pci = PciHostConfig{};

    // ACPI fixed hardware (devices/legacy/acpi_pm.hpp): PM1a event (4 bytes), PM1a control
    // (2 bytes), PM timer (4 bytes), the SCI and the \_S5 sleep type the PM device acts on.
    uint16_t pm1a_event_port = layout::kAcpiPm1aEventPort;
    uint16_t pm1a_control_port = layout::kAcpiPm1aControlPort;
    uint16_t pm_timer_port = layout::kAcpiPmTimerPort;
    uint8_t sci_irq = static_cast<uint8_t>(layout::kIrqAcpiSci);
    uint8_t s5_slp_typ = 5;
    uint16_t reset_port = layout::kResetPort;
    uint8_t reset_value = 0x06;

    uint32_t ioapic_address = static_cast<uint32_t>(layout::kIoapicStart);
    uint8_t ioapic_id = 0;  // KVM's in-kernel IOAPIC resets to ID 0
    uint32_t lapic_address = static_cast<uint32_t>(layout::kLapicStart);

    // Where the tables go; the RSDP sits at tables_start (16-byte aligned, inside the BIOS area
    // Linux scans), the other tables follow it.
    uint64_t tables_start = layout::kAcpiTablesStart;
    uint64_t tables_end = layout::kAcpiTablesEnd;
};

// One table at its guest-physical address.
struct AcpiTable {
    std::string signature;  // "RSD PTR ", "XSDT", "FACP", "FACS", "DSDT", "APIC", "MCFG"
    uint64_t address = 0;
    std::vector<uint8_t> bytes;
};

struct AcpiTables {
    uint64_t rsdp_address = 0;      // for boot_params.acpi_rsdp_addr and hvm_start_info.rsdp_paddr
    uint64_t end = 0;               // first byte after the last table
    std::vector<AcpiTable> tables;  // RSDP first, in address order

    const AcpiTable* find(std::string_view signature) const;
};

// Checks the config and lays the tables out from config.tables_start. Errors name the field.
Result<AcpiTables> build_acpi_tables(const AcpiConfig& config);

// Builds the tables and writes them into guest memory (the range [tables_start, end) is
// zeroed first, so rewriting after a VM reset leaves no stale bytes).
Result<AcpiTables> write_acpi_tables(const GuestMemory& memory, const AcpiConfig& config);

// The DSDT's AML definition block (header included).
Result<std::vector<uint8_t>> build_dsdt(const AcpiConfig& config);

// The ISA IRQ that INTx `pin` (0 = INTA .. 3 = INTD) of PCI device `slot` (1..31) raises: the
// swizzle \_SB.PCI0._PRT declares, (slot + pin) mod 4 over intx_irqs. The PCI code asserts
// its INTx through the IrqLine of this IRQ.
uint8_t pci_intx_irq(const PciHostConfig& pci, uint8_t slot, uint8_t pin);

// Fills the common header and sets the checksum over `table` (whose length field must already
// be right); exposed for tests and other table producers.
void finish_table(std::vector<uint8_t>& table, std::string_view signature, uint8_t revision);

}  // namespace vireo::arch::x86::acpi
