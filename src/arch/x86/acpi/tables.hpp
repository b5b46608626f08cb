// ACPI table layouts Vireo emits (ACPI 6.5 §5.2): RSDP, the common header, XSDT, FADT, FACS,
// MADT and its entries, MCFG (PCI Firmware Specification 3.3 §4.1.2). Packed, little-endian.
#pragma once

#include <cstdint>

#include "base/endian.hpp"

namespace vireo::arch::x86::acpi {

// §5.2.5.3 Root System Description Pointer (revision 2).
struct [[gnu::packed]] Rsdp {
    char signature[8];  // "RSD PTR "
    uint8_t checksum;   // over the first 20 bytes
    char oem_id[6];
    uint8_t revision;  // 2
    Le<uint32_t> rsdt_address;
    Le<uint32_t> length;  // 36
    Le<uint64_t> xsdt_address;
    uint8_t extended_checksum;  // over all 36 bytes
    uint8_t reserved[3];
};
static_assert(sizeof(Rsdp) == 36);

// §5.2.6 System Description Table Header.
struct [[gnu::packed]] TableHeader {
    char signature[4];
    Le<uint32_t> length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    Le<uint32_t> oem_revision;
    char creator_id[4];
    Le<uint32_t> creator_revision;
};
static_assert(sizeof(TableHeader) == 36);

// §5.2.3.2 Generic Address Structure.
struct [[gnu::packed]] GenericAddress {
    uint8_t space_id;  // 0 system memory, 1 system I/O
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;  // 0 undefined, 1 byte, 2 word, 3 dword, 4 qword
    Le<uint64_t> address;
};
static_assert(sizeof(GenericAddress) == 12);
inline constexpr uint8_t kGasSystemMemory = 0;
inline constexpr uint8_t kGasSystemIo = 1;

// §5.2.9 Fixed ACPI Description Table, revision 6 (ACPI 6.5: major 6, minor 5).
struct [[gnu::packed]] Fadt {
    TableHeader header;  // "FACP"
    Le<uint32_t> firmware_ctrl;
    Le<uint32_t> dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    Le<uint16_t> sci_int;
    Le<uint32_t> smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    Le<uint32_t> pm1a_evt_blk;
    Le<uint32_t> pm1b_evt_blk;
    Le<uint32_t> pm1a_cnt_blk;
    Le<uint32_t> pm1b_cnt_blk;
    Le<uint32_t> pm2_cnt_blk;
    Le<uint32_t> pm_tmr_blk;
    Le<uint32_t> gpe0_blk;
    Le<uint32_t> gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    Le<uint16_t> p_lvl2_lat;
    Le<uint16_t> p_lvl3_lat;
    Le<uint16_t> flush_size;
    Le<uint16_t> flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    Le<uint16_t> iapc_boot_arch;
    uint8_t reserved1;
    Le<uint32_t> flags;
    GenericAddress reset_reg;
    uint8_t reset_value;
    Le<uint16_t> arm_boot_arch;
    uint8_t fadt_minor_version;
    Le<uint64_t> x_firmware_ctrl;
    Le<uint64_t> x_dsdt;
    GenericAddress x_pm1a_evt_blk;
    GenericAddress x_pm1b_evt_blk;
    GenericAddress x_pm1a_cnt_blk;
    GenericAddress x_pm1b_cnt_blk;
    GenericAddress x_pm2_cnt_blk;
    GenericAddress x_pm_tmr_blk;
    GenericAddress x_gpe0_blk;
    GenericAddress x_gpe1_blk;
    GenericAddress sleep_control_reg;
    GenericAddress sleep_status_reg;
    Le<uint64_t> hypervisor_vendor_identity;
};
static_assert(sizeof(Fadt) == 276);

// FADT Fixed Feature Flags (Table 5.10).
inline constexpr uint32_t kFadtWbinvd = 1u << 0;
inline constexpr uint32_t kFadtProcC1 = 1u << 2;
inline constexpr uint32_t kFadtPwrButton = 1u << 4;  // set: control-method power button
inline constexpr uint32_t kFadtSlpButton = 1u << 5;  // set: control-method or absent sleep button
inline constexpr uint32_t kFadtFixRtc = 1u << 6;     // set: no RTC wake status in fixed space
inline constexpr uint32_t kFadtTmrValExt = 1u << 8;
inline constexpr uint32_t kFadtResetRegSup = 1u << 10;
inline constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;
// IA-PC Boot Architecture Flags (Table 5.11).
inline constexpr uint16_t kBootArchLegacyDevices = 1u << 0;
inline constexpr uint16_t kBootArch8042 = 1u << 1;
inline constexpr uint16_t kBootArchVgaNotPresent = 1u << 2;
inline constexpr uint16_t kBootArchPcieAspmControls = 1u << 4;
inline constexpr uint16_t kBootArchCmosRtcNotPresent = 1u << 5;

// §5.2.10 Firmware ACPI Control Structure (no checksum; 64-byte aligned).
struct [[gnu::packed]] Facs {
    char signature[4];  // "FACS"
    Le<uint32_t> length;
    Le<uint32_t> hardware_signature;
    Le<uint32_t> firmware_waking_vector;
    Le<uint32_t> global_lock;
    Le<uint32_t> flags;
    Le<uint64_t> x_firmware_waking_vector;
    uint8_t version;
    uint8_t reserved0[3];
    Le<uint32_t> ospm_flags;
    uint8_t reserved1[24];
};
static_assert(sizeof(Facs) == 64);

// §5.2.12 Multiple APIC Description Table.
struct [[gnu::packed]] MadtHeader {
    TableHeader header;  // "APIC"
    Le<uint32_t> local_apic_address;
    Le<uint32_t> flags;  // bit 0 PCAT_COMPAT: dual 8259s present
};
static_assert(sizeof(MadtHeader) == 44);
inline constexpr uint8_t kMadtLocalApic = 0;
inline constexpr uint8_t kMadtIoApic = 1;
inline constexpr uint8_t kMadtInterruptOverride = 2;
inline constexpr uint8_t kMadtLocalApicNmi = 4;

struct [[gnu::packed]] MadtLocalApic {  // §5.2.12.2
    uint8_t type;
    uint8_t length;  // 8
    uint8_t processor_uid;
    uint8_t apic_id;
    Le<uint32_t> flags;  // bit 0 enabled, bit 1 online capable
};
static_assert(sizeof(MadtLocalApic) == 8);

struct [[gnu::packed]] MadtIoApic {  // §5.2.12.3
    uint8_t type;
    uint8_t length;  // 12
    uint8_t io_apic_id;
    uint8_t reserved;
    Le<uint32_t> address;
    Le<uint32_t> gsi_base;
};
static_assert(sizeof(MadtIoApic) == 12);

struct [[gnu::packed]] MadtInterruptOverride {  // §5.2.12.5
    uint8_t type;
    uint8_t length;  // 10
    uint8_t bus;     // 0: ISA
    uint8_t source;  // ISA IRQ
    Le<uint32_t> gsi;
    Le<uint16_t> flags;  // MPS INTI flags (Table 5.26)
};
static_assert(sizeof(MadtInterruptOverride) == 10);
// MPS INTI flags: polarity bits 1:0, trigger mode bits 3:2.
inline constexpr uint16_t kMpsConforms = 0x0;
inline constexpr uint16_t kMpsActiveHigh = 0x1;
inline constexpr uint16_t kMpsActiveLow = 0x3;
inline constexpr uint16_t kMpsEdge = 0x1 << 2;
inline constexpr uint16_t kMpsLevel = 0x3 << 2;

struct [[gnu::packed]] MadtLocalApicNmi {  // §5.2.12.7
    uint8_t type;
    uint8_t length;         // 6
    uint8_t processor_uid;  // 0xFF: all processors
    Le<uint16_t> flags;
    uint8_t lint;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);

// PCI Firmware Specification 3.3 §4.1.2: MCFG.
struct [[gnu::packed]] McfgHeader {
    TableHeader header;  // "MCFG"
    uint8_t reserved[8];
};
static_assert(sizeof(McfgHeader) == 44);

struct [[gnu::packed]] McfgAllocation {
    Le<uint64_t> base_address;  // ECAM base for bus 0 (even if start_bus > 0)
    Le<uint16_t> segment;
    uint8_t start_bus;
    uint8_t end_bus;
    Le<uint32_t> reserved;
};
static_assert(sizeof(McfgAllocation) == 16);

}  // namespace vireo::arch::x86::acpi
