// The DSDT: \_S5, the processors, COM1, the i8042 keyboard and mouse, the RTC and the PCI
// Express host bridge with its resources, interrupt routing and _OSC, written in AML.
#include <fmt/format.h>

#include "arch/x86/acpi/acpi_builder.hpp"
#include "arch/x86/acpi/aml.hpp"
#include "arch/x86/acpi/tables.hpp"

namespace vireo::arch::x86::acpi {
namespace {

using aml::AddressUsage;
using aml::Bytes;
using aml::Cacheability;
using aml::ResourceTemplate;
using aml::TermList;

// PCI Firmware Specification 3.3 §4.5.1: the _OSC UUID of PCI host bridges.
constexpr std::string_view kPciHostBridgeOscUuid = "33DB4D5B-1FF7-401C-9657-7441C03DD766";
// Controls granted to the OS (§4.5.1 Table 4-5): native PCIe hot plug, SHPC hot plug, PME,
// AER and the PCIe capability structure. There is no firmware that would want them.
constexpr uint64_t kOscGrantedControls = 0x1F;

Bytes processor_device(uint32_t index) {
    // ACPI 6.5 §8.4: processors are Device(ACPI0007) objects whose _UID matches the MADT's
    // processor UID.
    return aml::device(fmt::format("C{:03X}", index), {
                                                          aml::name("_HID", aml::string("ACPI0007")),
                                                          aml::name("_UID", aml::integer(index)),
                                                      });
}

Bytes com1_device() {
    ResourceTemplate crs;
    crs.io(layout::kCom1Port, layout::kCom1Port, 1, 8).irq_no_flags(static_cast<uint8_t>(layout::kIrqCom1));
    return aml::device("COM1", {
                                   aml::name("_HID", aml::eisa_id("PNP0501")),
                                   aml::name("_UID", aml::integer(1)),
                                   aml::name("_CRS", crs.to_buffer()),
                               });
}

TermList i8042_devices() {
    ResourceTemplate kbd;
    kbd.io(layout::kI8042DataPort, layout::kI8042DataPort, 1, 1)
        .io(layout::kI8042CommandPort, layout::kI8042CommandPort, 1, 1)
        .irq_no_flags(static_cast<uint8_t>(layout::kIrqKeyboard));
    ResourceTemplate mouse;
    mouse.irq_no_flags(static_cast<uint8_t>(layout::kIrqMouse));
    return {
        aml::device("KBD", {aml::name("_HID", aml::eisa_id("PNP0303")), aml::name("_CRS", kbd.to_buffer())}),
        aml::device("MOU",
                    {aml::name("_HID", aml::eisa_id("PNP0F13")), aml::name("_CRS", mouse.to_buffer())}),
    };
}

Bytes rtc_device() {
    ResourceTemplate crs;
    crs.io(layout::kCmosPort, layout::kCmosPort, 1, 2).irq_no_flags(static_cast<uint8_t>(layout::kIrqRtc));
    return aml::device("RTC",
                       {aml::name("_HID", aml::eisa_id("PNP0B00")), aml::name("_CRS", crs.to_buffer())});
}

Bytes pci_routing_table(const PciHostConfig& pci) {
    // ACPI 6.5 §6.2.13: Package{Address (device << 16 | 0xFFFF), Pin, Source, Source Index};
    // Source 0 means Source Index is a global system interrupt (IOAPIC input = ISA IRQ here).
    TermList entries;
    for (uint8_t slot = 1; slot < 32; ++slot) {
        for (uint8_t pin = 0; pin < 4; ++pin) {
            entries.push_back(aml::package({
                aml::integer((uint64_t{slot} << 16) | 0xFFFF),
                aml::integer(pin),
                aml::integer(0),
                aml::integer(pci_intx_irq(pci, slot, pin)),
            }));
        }
    }
    return aml::package(entries);
}

Bytes pci_osc_method() {
    // PCI Firmware Specification 3.3 §4.5: grant the requested controls we allow; set
    // "unrecognized UUID" (bit 2 of the first capabilities DWord) for any other UUID.
    return aml::method(
        "_OSC", 4, true,
        {
            aml::create_dword_field(aml::arg(3), aml::integer(0), "CDW1"),
            aml::if_(aml::lequal(aml::arg(0), aml::uuid(kPciHostBridgeOscUuid)),
                     {
                         aml::create_dword_field(aml::arg(3), aml::integer(8), "CDW3"),
                         aml::and_(aml::name_string("CDW3"), aml::integer(kOscGrantedControls),
                                   aml::name_string("CDW3")),
                     }),
            aml::else_({aml::or_(aml::name_string("CDW1"), aml::integer(4), aml::name_string("CDW1"))}),
            aml::ret(aml::arg(3)),
        });
}

TermList pci_devices(const PciHostConfig& pci) {
    ResourceTemplate crs;
    crs.word_bus_number(AddressUsage::kProducer, pci.bus_start, pci.bus_end)
        // All I/O ports but the configuration mechanism #1 registers 0xCF8-0xCFF.
        .word_io(AddressUsage::kProducer, 0x0000, layout::kPciConfigAddressPort - 1)
        .word_io(AddressUsage::kProducer, layout::kPciConfigAddressPort + 8, 0xFFFF)
        .dword_memory(AddressUsage::kProducer, Cacheability::kNonCacheable, true, pci.mmio32_base,
                      pci.mmio32_base + (pci.mmio32_size - 1));
    if (pci.mmio64_size != 0) {
        crs.qword_memory(AddressUsage::kProducer, Cacheability::kCacheable, true, pci.mmio64_base,
                         pci.mmio64_base + (pci.mmio64_size - 1));
    }
    Bytes host_bridge = aml::device("PCI0", {
                                                aml::name("_HID", aml::eisa_id("PNP0A08")),
                                                aml::name("_CID", aml::eisa_id("PNP0A03")),
                                                aml::name("_SEG", aml::integer(pci.segment)),
                                                aml::name("_UID", aml::integer(pci.segment)),
                                                aml::name("_BBN", aml::integer(pci.bus_start)),
                                                aml::name("_CRS", crs.to_buffer()),
                                                aml::name("_PRT", pci_routing_table(pci)),
                                                pci_osc_method(),
                                            });

    // Linux uses ECAM only if its range is reserved by a motherboard resource (PNP0C02);
    // otherwise it falls back to port I/O config access and warns.
    uint64_t ecam_start = pci.ecam_base + (uint64_t{pci.bus_start} << 20);
    uint64_t ecam_size = (uint64_t{pci.bus_end} - pci.bus_start + 1) << 20;
    ResourceTemplate reserved;
    if (ecam_start + ecam_size <= (uint64_t{1} << 32)) {
        reserved.memory32_fixed(true, static_cast<uint32_t>(ecam_start), static_cast<uint32_t>(ecam_size));
    } else {
        reserved.qword_memory(AddressUsage::kConsumer, Cacheability::kNonCacheable, true, ecam_start,
                              ecam_start + ecam_size - 1);
    }
    Bytes motherboard = aml::device("MBRD", {
                                                aml::name("_HID", aml::eisa_id("PNP0C02")),
                                                aml::name("_UID", aml::integer(0)),
                                                aml::name("_CRS", reserved.to_buffer()),
                                            });
    return {host_bridge, motherboard};
}

}  // namespace

Result<std::vector<uint8_t>> build_dsdt(const AcpiConfig& config) {
    TermList sb;
    for (uint32_t i = 0; i < config.cpu_count; ++i)
        sb.push_back(processor_device(i));
    if (config.com1) sb.push_back(com1_device());
    if (config.i8042) {
        for (auto& d : i8042_devices())
            sb.push_back(std::move(d));
    }
    if (config.rtc) sb.push_back(rtc_device());
    if (config.pci) {
        for (auto& d : pci_devices(*config.pci))
            sb.push_back(std::move(d));
    }

    // ACPI 6.5 §7.4.2: \_S5 = Package{SLP_TYPa, SLP_TYPb, reserved, reserved}.
    Bytes s5 =
        aml::name("\\_S5", aml::package({aml::integer(config.s5_slp_typ), aml::integer(config.s5_slp_typ),
                                         aml::integer(0), aml::integer(0)}));
    Bytes sb_scope = aml::scope("\\_SB", sb);

    std::vector<uint8_t> table(sizeof(TableHeader));
    table.insert(table.end(), s5.begin(), s5.end());
    table.insert(table.end(), sb_scope.begin(), sb_scope.end());
    // Revision 2: integers are 64 bits wide (§5.2.11.1).
    finish_table(table, "DSDT", 2);
    return table;
}

}  // namespace vireo::arch::x86::acpi
