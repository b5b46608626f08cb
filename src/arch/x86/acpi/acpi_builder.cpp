// ACPI table construction and placement in guest memory.
#include "arch/x86/acpi/acpi_builder.hpp"

#include <algorithm>
#include <cstring>

#include "arch/x86/acpi/tables.hpp"
#include "base/checksum.hpp"

namespace vireo::arch::x86::acpi {
namespace {

constexpr char kOemId[6] = {'V', 'I', 'R', 'E', 'O', ' '};
constexpr char kOemTableId[8] = {'V', 'I', 'R', 'E', 'O', 'V', 'M', ' '};
constexpr char kCreatorId[4] = {'V', 'I', 'R', 'E'};
constexpr uint32_t kOemRevision = 1;
constexpr uint32_t kCreatorRevision = 1;
constexpr uint64_t kTableAlignment = 16;
constexpr uint64_t kFacsAlignment = 64;  // §5.2.10
// "VIREOVMM" read as a little-endian u64: the FADT's Hypervisor Vendor Identity.
constexpr uint64_t kHypervisorId = 0x4D4D'564F'4552'4956;

template <typename T>
T* at(std::vector<uint8_t>& bytes, size_t offset = 0) {
    return reinterpret_cast<T*>(bytes.data() + offset);
}

template <typename T>
void append_struct(std::vector<uint8_t>& bytes, const T& value) {
    const auto* p = reinterpret_cast<const uint8_t*>(&value);
    bytes.insert(bytes.end(), p, p + sizeof(T));
}

GenericAddress io_register(uint16_t port, uint8_t bytes, uint8_t access_size) {
    GenericAddress gas{};
    gas.space_id = kGasSystemIo;
    gas.bit_width = static_cast<uint8_t>(bytes * 8);
    gas.bit_offset = 0;
    gas.access_size = access_size;
    gas.address = port;
    return gas;
}

// IRQ 0 (PIT, rerouted to GSI 2) and IRQ 2 (the 8259 cascade) cannot carry other interrupts.
bool usable_isa_irq(uint8_t irq) {
    return irq <= 15 && irq != 0 && irq != 2;
}

Status validate(const AcpiConfig& c) {
    if (c.cpu_count == 0) return make_error("acpi: cpu_count is 0");
    // xAPIC IDs are 8 bits and 0xFF is the broadcast ID (§5.2.12.2).
    if (c.cpu_count > 255)
        return make_error("acpi: {} vCPUs exceed the 255 the MADT can describe", c.cpu_count);
    if (!usable_isa_irq(c.sci_irq))
        return make_error("acpi: SCI IRQ {} is not a free ISA IRQ (1, 3-15; 0 is the PIT, 2 the cascade)",
                          c.sci_irq);
    if (c.s5_slp_typ > 7) return make_error("acpi: SLP_TYP {} does not fit in 3 bits", c.s5_slp_typ);
    if (c.tables_start % kTableAlignment != 0)
        return make_error("acpi: tables_start 0x{:x} is not 16-byte aligned (the RSDP must be)",
                          c.tables_start);
    if (c.tables_end <= c.tables_start)
        return make_error("acpi: empty table area 0x{:x}-0x{:x}", c.tables_start, c.tables_end);
    if (c.pci) {
        const PciHostConfig& p = *c.pci;
        if (p.bus_end < p.bus_start)
            return make_error("acpi: PCI bus range {}-{} ends before it starts", p.bus_start, p.bus_end);
        if (p.ecam_base % (1 << 20) != 0)
            return make_error("acpi: ECAM base 0x{:x} is not 1 MiB aligned", p.ecam_base);
        if (p.ecam_base + ((uint64_t{p.bus_end} + 1) << 20) < p.ecam_base)
            return make_error("acpi: ECAM range at 0x{:x} wraps around", p.ecam_base);
        if (p.mmio32_size == 0) return make_error("acpi: PCI 32-bit MMIO window is empty");
        if (uint64_t{p.mmio32_base} + p.mmio32_size > (uint64_t{1} << 32))
            return make_error("acpi: PCI 32-bit MMIO window 0x{:x}+0x{:x} crosses 4 GiB", p.mmio32_base,
                              p.mmio32_size);
        if (p.mmio64_size != 0 && p.mmio64_base + p.mmio64_size - 1 < p.mmio64_base)
            return make_error("acpi: PCI 64-bit MMIO window 0x{:x}+0x{:x} wraps around", p.mmio64_base,
                              p.mmio64_size);
        for (uint8_t irq : p.intx_irqs) {
            if (!usable_isa_irq(irq))
                return make_error(
                    "acpi: PCI INTx IRQ {} is not a free ISA IRQ (1, 3-15; 0 is the PIT, 2 the cascade)",
                    irq);
        }
    }
    return {};
}

std::vector<uint8_t> build_fadt(const AcpiConfig& c, uint64_t facs, uint64_t dsdt) {
    std::vector<uint8_t> table(sizeof(Fadt));
    Fadt* f = at<Fadt>(table);
    // One FACS pointer, not both: ACPI 5.0 §5.2.9 wants FIRMWARE_CTRL zero when X_FIRMWARE_CTRL
    // is set, and an OS that reads both (ACPICA) installs the FACS twice. The 32-bit field, as
    // QEMU fills it, is the one every OS reads; the tables are below 4 GiB.
    f->firmware_ctrl = static_cast<uint32_t>(facs);
    f->x_firmware_ctrl = 0;
    f->dsdt = static_cast<uint32_t>(dsdt);
    f->x_dsdt = dsdt;
    f->sci_int = c.sci_irq;
    // SMI_CMD 0: no transition to ACPI mode needed; SCI_EN is always set (§5.2.9).
    f->smi_cmd = 0;
    f->pm1a_evt_blk = c.pm1a_event_port;
    f->pm1a_cnt_blk = c.pm1a_control_port;
    f->pm_tmr_blk = c.pm_timer_port;
    f->pm1_evt_len = 4;
    f->pm1_cnt_len = 2;
    f->pm_tmr_len = 4;
    f->x_pm1a_evt_blk = io_register(c.pm1a_event_port, 4, 2);
    f->x_pm1a_cnt_blk = io_register(c.pm1a_control_port, 2, 2);
    f->x_pm_tmr_blk = io_register(c.pm_timer_port, 4, 3);
    // No C2/C3 states (latencies above 100 / 1000 us mean "not supported").
    f->p_lvl2_lat = 101;
    f->p_lvl3_lat = 1001;
    f->century = c.rtc ? 0x32 : 0;
    uint16_t boot_arch = kBootArchVgaNotPresent | kBootArchPcieAspmControls;
    if (c.com1 || c.i8042 || c.rtc) boot_arch |= kBootArchLegacyDevices;
    if (c.i8042) boot_arch |= kBootArch8042;
    if (!c.rtc) boot_arch |= kBootArchCmosRtcNotPresent;
    f->iapc_boot_arch = boot_arch;
    // Power button as a fixed feature (PWR_BUTTON clear) so PWRBTN_STS reaches the OS; no sleep
    // button; no RTC wake status in PM1 (FIX_RTC); 24-bit PM timer; RESET_REG supported.
    f->flags = kFadtWbinvd | kFadtProcC1 | kFadtSlpButton | kFadtFixRtc | kFadtResetRegSup;
    f->reset_reg = io_register(c.reset_port, 1, 1);
    f->reset_value = c.reset_value;
    f->fadt_minor_version = 5;
    f->hypervisor_vendor_identity = kHypervisorId;
    finish_table(table, "FACP", 6);
    return table;
}

std::vector<uint8_t> build_facs() {
    std::vector<uint8_t> table(sizeof(Facs));
    Facs* f = at<Facs>(table);
    std::memcpy(f->signature, "FACS", 4);
    f->length = sizeof(Facs);
    f->version = 2;
    return table;
}

std::vector<uint8_t> build_madt(const AcpiConfig& c) {
    std::vector<uint8_t> table(sizeof(MadtHeader));
    MadtHeader* h = at<MadtHeader>(table);
    h->local_apic_address = c.lapic_address;
    h->flags = 1;  // PCAT_COMPAT: the in-kernel irqchip has the dual 8259s too
    for (uint32_t i = 0; i < c.cpu_count; ++i) {
        MadtLocalApic lapic{};
        lapic.type = kMadtLocalApic;
        lapic.length = sizeof(MadtLocalApic);
        lapic.processor_uid = static_cast<uint8_t>(i);
        lapic.apic_id = static_cast<uint8_t>(i);
        lapic.flags = 1;  // enabled
        append_struct(table, lapic);
    }
    MadtIoApic ioapic{};
    ioapic.type = kMadtIoApic;
    ioapic.length = sizeof(MadtIoApic);
    ioapic.io_apic_id = c.ioapic_id;
    ioapic.address = c.ioapic_address;
    ioapic.gsi_base = 0;
    append_struct(table, ioapic);

    auto override_irq = [&](uint8_t source, uint32_t gsi, uint16_t flags) {
        MadtInterruptOverride iso{};
        iso.type = kMadtInterruptOverride;
        iso.length = sizeof(MadtInterruptOverride);
        iso.bus = 0;
        iso.source = source;
        iso.gsi = gsi;
        iso.flags = flags;
        append_struct(table, iso);
    };
    // The PIT's IRQ 0 is wired to IOAPIC input 2 (§5.2.12.5); the SCI is level-triggered and
    // active high (§5.2.9, SCI_INT); PCI INTx lines are level-triggered. KVM's irqchip treats
    // an asserted line as 1, so every level interrupt is declared active high.
    override_irq(0, 2, kMpsConforms);
    override_irq(c.sci_irq, c.sci_irq, kMpsLevel | kMpsActiveHigh);
    if (c.pci) {
        std::vector<uint8_t> done = {c.sci_irq};
        for (uint8_t irq : c.pci->intx_irqs) {
            if (std::find(done.begin(), done.end(), irq) != done.end()) continue;
            done.push_back(irq);
            override_irq(irq, irq, kMpsLevel | kMpsActiveHigh);
        }
    }
    // LINT1 of every processor is the NMI input (§5.2.12.7).
    MadtLocalApicNmi nmi{};
    nmi.type = kMadtLocalApicNmi;
    nmi.length = sizeof(MadtLocalApicNmi);
    nmi.processor_uid = 0xFF;
    nmi.flags = kMpsConforms;
    nmi.lint = 1;
    append_struct(table, nmi);
    // Revision 5 (ACPI 6.2+ MADT layout; the entries used here are unchanged since 1.0).
    finish_table(table, "APIC", 5);
    return table;
}

std::vector<uint8_t> build_mcfg(const PciHostConfig& pci) {
    std::vector<uint8_t> table(sizeof(McfgHeader));
    McfgAllocation alloc{};
    alloc.base_address = pci.ecam_base;
    alloc.segment = pci.segment;
    alloc.start_bus = pci.bus_start;
    alloc.end_bus = pci.bus_end;
    append_struct(table, alloc);
    finish_table(table, "MCFG", 1);
    return table;
}

std::vector<uint8_t> build_xsdt(const std::vector<uint64_t>& entries) {
    std::vector<uint8_t> table(sizeof(TableHeader));
    for (uint64_t address : entries) {
        Le<uint64_t> le = address;
        append_struct(table, le);
    }
    finish_table(table, "XSDT", 1);
    return table;
}

std::vector<uint8_t> build_rsdp(uint64_t xsdt) {
    std::vector<uint8_t> bytes(sizeof(Rsdp));
    Rsdp* r = at<Rsdp>(bytes);
    std::memcpy(r->signature, "RSD PTR ", 8);
    std::memcpy(r->oem_id, kOemId, 6);
    r->revision = 2;
    r->rsdt_address = 0;  // XSDT only (§5.2.5.3; Linux uses the XSDT when revision >= 2)
    r->length = sizeof(Rsdp);
    r->xsdt_address = xsdt;
    r->checksum = acpi_checksum({bytes.data(), 20});
    r->extended_checksum = acpi_checksum(bytes);
    return bytes;
}

uint64_t align_up(uint64_t value, uint64_t alignment) {
    return (value + alignment - 1) / alignment * alignment;
}

}  // namespace

const AcpiTable* AcpiTables::find(std::string_view signature) const {
    for (const auto& t : tables) {
        if (t.signature == signature) return &t;
    }
    return nullptr;
}

uint8_t pci_intx_irq(const PciHostConfig& pci, uint8_t slot, uint8_t pin) {
    return pci.intx_irqs[(slot + pin) % 4];
}

void finish_table(std::vector<uint8_t>& table, std::string_view signature, uint8_t revision) {
    TableHeader* h = at<TableHeader>(table);
    std::memcpy(h->signature, signature.data(), 4);
    h->length = static_cast<uint32_t>(table.size());
    h->revision = revision;
    h->checksum = 0;
    std::memcpy(h->oem_id, kOemId, 6);
    std::memcpy(h->oem_table_id, kOemTableId, 8);
    h->oem_revision = kOemRevision;
    std::memcpy(h->creator_id, kCreatorId, 4);
    h->creator_revision = kCreatorRevision;
    h->checksum = acpi_checksum(table);
}

Result<AcpiTables> build_acpi_tables(const AcpiConfig& config) {
    VIREO_TRY(validate(config));

    // Layout: RSDP, XSDT, FADT, FACS, DSDT, MADT, MCFG. Sizes first (the XSDT's depends only on
    // the number of entries), then addresses, then contents that point at each other.
    VIREO_ASSIGN_OR_RETURN(std::vector<uint8_t> dsdt, build_dsdt(config));
    std::vector<uint8_t> madt = build_madt(config);
    std::vector<uint8_t> mcfg;
    if (config.pci) mcfg = build_mcfg(*config.pci);
    size_t xsdt_entries = config.pci ? 3 : 2;

    uint64_t cursor = config.tables_start;
    auto place = [&](uint64_t size, uint64_t alignment) {
        uint64_t address = align_up(cursor, alignment);
        cursor = address + size;
        return address;
    };
    uint64_t rsdp_at = place(sizeof(Rsdp), kTableAlignment);
    uint64_t xsdt_at = place(sizeof(TableHeader) + 8 * xsdt_entries, kTableAlignment);
    uint64_t fadt_at = place(sizeof(Fadt), kTableAlignment);
    uint64_t facs_at = place(sizeof(Facs), kFacsAlignment);
    uint64_t dsdt_at = place(dsdt.size(), kTableAlignment);
    uint64_t madt_at = place(madt.size(), kTableAlignment);
    uint64_t mcfg_at = config.pci ? place(mcfg.size(), kTableAlignment) : 0;
    if (cursor > config.tables_end) {
        return make_error("acpi: tables need 0x{:x} bytes but 0x{:x}-0x{:x} holds only 0x{:x}",
                          cursor - config.tables_start, config.tables_start, config.tables_end,
                          config.tables_end - config.tables_start);
    }
    // The FADT's 32-bit FACS and DSDT fields must hold the addresses too.
    if (dsdt_at + dsdt.size() > (uint64_t{1} << 32))
        return make_error("acpi: table area 0x{:x} is not below 4 GiB", config.tables_start);

    std::vector<uint64_t> xsdt_list = {fadt_at, madt_at};
    if (config.pci) xsdt_list.push_back(mcfg_at);

    AcpiTables out;
    out.rsdp_address = rsdp_at;
    out.end = cursor;
    out.tables.push_back({"RSD PTR ", rsdp_at, build_rsdp(xsdt_at)});
    out.tables.push_back({"XSDT", xsdt_at, build_xsdt(xsdt_list)});
    out.tables.push_back({"FACP", fadt_at, build_fadt(config, facs_at, dsdt_at)});
    out.tables.push_back({"FACS", facs_at, build_facs()});
    out.tables.push_back({"DSDT", dsdt_at, std::move(dsdt)});
    out.tables.push_back({"APIC", madt_at, std::move(madt)});
    if (config.pci) out.tables.push_back({"MCFG", mcfg_at, std::move(mcfg)});
    return out;
}

Result<AcpiTables> write_acpi_tables(const GuestMemory& memory, const AcpiConfig& config) {
    VIREO_ASSIGN_OR_RETURN(AcpiTables tables, build_acpi_tables(config));
    uint64_t span = tables.end - config.tables_start;
    auto area = memory.checked_slice(config.tables_start, span);
    if (!area.ok()) {
        return make_error("acpi: guest RAM does not hold the table area 0x{:x}-0x{:x}: {}",
                          config.tables_start, tables.end, area.error().message());
    }
    std::fill(area->begin(), area->end(), uint8_t{0});
    for (const auto& t : tables.tables) {
        std::memcpy(area->data() + (t.address - config.tables_start), t.bytes.data(), t.bytes.size());
    }
    return tables;
}

}  // namespace vireo::arch::x86::acpi
