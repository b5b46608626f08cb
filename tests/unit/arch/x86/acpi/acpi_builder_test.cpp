// Tests for the ACPI tables: every table parsed back field by field, checksums, placement,
// config errors, writing into guest memory, and ACPICA's iasl decompiling (and recompiling)
// every table without a complaint.
#include "arch/x86/acpi/acpi_builder.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <random>

#include "arch/x86/acpi/aml.hpp"
#include "arch/x86/acpi/tables.hpp"
#include "devices/legacy/acpi_pm.hpp"
#include "devices/legacy/reset_control.hpp"
#include "iasl.hpp"

namespace vireo::arch::x86::acpi {
namespace {

template <typename T>
T load(const std::vector<uint8_t>& bytes, size_t offset = 0) {
    T value;
    EXPECT_LE(offset + sizeof(T), bytes.size());
    std::memcpy(&value, bytes.data() + offset, sizeof(T));
    return value;
}

uint8_t byte_sum(const std::vector<uint8_t>& bytes, size_t n) {
    uint8_t sum = 0;
    for (size_t i = 0; i < n; ++i)
        sum = static_cast<uint8_t>(sum + bytes[i]);
    return sum;
}

bool contains(const std::vector<uint8_t>& haystack, const aml::Bytes& needle) {
    return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) != haystack.end();
}

AcpiTables build_ok(const AcpiConfig& config) {
    auto t = build_acpi_tables(config);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message());
    return t.ok() ? std::move(t).value() : AcpiTables{};
}

struct MadtEntries {
    std::vector<MadtLocalApic> lapics;
    std::vector<MadtIoApic> ioapics;
    std::vector<MadtInterruptOverride> overrides;
    std::vector<MadtLocalApicNmi> nmis;
    bool well_formed = true;
};

MadtEntries parse_madt(const std::vector<uint8_t>& madt) {
    MadtEntries out;
    size_t off = sizeof(MadtHeader);
    while (off < madt.size()) {
        if (off + 2 > madt.size() || madt[off + 1] < 2 || off + madt[off + 1] > madt.size()) {
            out.well_formed = false;
            break;
        }
        switch (madt[off]) {
            case kMadtLocalApic:
                out.well_formed &= madt[off + 1] == sizeof(MadtLocalApic);
                out.lapics.push_back(load<MadtLocalApic>(madt, off));
                break;
            case kMadtIoApic:
                out.well_formed &= madt[off + 1] == sizeof(MadtIoApic);
                out.ioapics.push_back(load<MadtIoApic>(madt, off));
                break;
            case kMadtInterruptOverride:
                out.well_formed &= madt[off + 1] == sizeof(MadtInterruptOverride);
                out.overrides.push_back(load<MadtInterruptOverride>(madt, off));
                break;
            case kMadtLocalApicNmi:
                out.well_formed &= madt[off + 1] == sizeof(MadtLocalApicNmi);
                out.nmis.push_back(load<MadtLocalApicNmi>(madt, off));
                break;
            default:
                out.well_formed = false;
        }
        off += madt[off + 1];
    }
    return out;
}

TEST(AcpiTables, LayoutAndChecksums) {
    AcpiConfig config;
    config.cpu_count = 4;
    AcpiTables t = build_ok(config);
    ASSERT_EQ(t.tables.size(), 7u);
    EXPECT_EQ(t.rsdp_address, layout::kAcpiTablesStart);
    EXPECT_EQ(t.tables[0].signature, "RSD PTR ");
    EXPECT_EQ(t.tables[0].address, layout::kAcpiTablesStart);
    uint64_t prev_end = layout::kAcpiTablesStart;
    for (const auto& table : t.tables) {
        SCOPED_TRACE(table.signature);
        EXPECT_GE(table.address, prev_end) << "overlap";
        EXPECT_EQ(table.address % (table.signature == "FACS" ? 64 : 16), 0u);
        prev_end = table.address + table.bytes.size();
        if (table.signature == "RSD PTR " || table.signature == "FACS") continue;
        auto h = load<TableHeader>(table.bytes);
        EXPECT_EQ(std::string(h.signature, 4), table.signature);
        EXPECT_EQ(h.length, table.bytes.size());
        EXPECT_EQ(byte_sum(table.bytes, table.bytes.size()), 0) << "checksum";
        EXPECT_EQ(std::string(h.oem_id, 6), "VIREO ");
    }
    EXPECT_EQ(t.end, prev_end);
    EXPECT_LE(t.end, layout::kAcpiTablesEnd);
}

TEST(AcpiTables, RsdpAndXsdt) {
    AcpiTables t = build_ok(AcpiConfig{});
    const auto& rsdp_bytes = t.find("RSD PTR ")->bytes;
    auto rsdp = load<Rsdp>(rsdp_bytes);
    EXPECT_EQ(std::string(rsdp.signature, 8), "RSD PTR ");
    EXPECT_EQ(rsdp.revision, 2);
    EXPECT_EQ(rsdp.length, 36u);
    EXPECT_EQ(rsdp.rsdt_address, 0u);
    EXPECT_EQ(byte_sum(rsdp_bytes, 20), 0);
    EXPECT_EQ(byte_sum(rsdp_bytes, 36), 0);
    EXPECT_EQ(rsdp.xsdt_address, t.find("XSDT")->address);

    const auto& xsdt = t.find("XSDT")->bytes;
    ASSERT_EQ(xsdt.size(), 36u + 3 * 8);
    EXPECT_EQ(load<Le<uint64_t>>(xsdt, 36), t.find("FACP")->address);
    EXPECT_EQ(load<Le<uint64_t>>(xsdt, 44), t.find("APIC")->address);
    EXPECT_EQ(load<Le<uint64_t>>(xsdt, 52), t.find("MCFG")->address);
}

TEST(AcpiTables, Fadt) {
    AcpiTables t = build_ok(AcpiConfig{});
    auto f = load<Fadt>(t.find("FACP")->bytes);
    EXPECT_EQ(f.header.revision, 6);
    EXPECT_EQ(f.fadt_minor_version, 5);
    EXPECT_EQ(f.header.length, 276u);
    EXPECT_EQ(f.dsdt, t.find("DSDT")->address);
    EXPECT_EQ(f.x_dsdt, t.find("DSDT")->address);
    EXPECT_EQ(f.firmware_ctrl, t.find("FACS")->address);
    EXPECT_EQ(f.x_firmware_ctrl, 0u) << "one FACS pointer: an OS reading both installs the FACS twice";
    EXPECT_EQ(f.sci_int, 9);
    EXPECT_EQ(f.smi_cmd, 0u);
    EXPECT_EQ(f.pm1a_evt_blk, 0x600u);
    EXPECT_EQ(f.pm1a_cnt_blk, 0x604u);
    EXPECT_EQ(f.pm_tmr_blk, 0x608u);
    EXPECT_EQ(f.pm1_evt_len, 4);
    EXPECT_EQ(f.pm1_cnt_len, 2);
    EXPECT_EQ(f.pm_tmr_len, 4);
    EXPECT_EQ(f.gpe0_blk_len, 0);
    EXPECT_EQ(f.x_pm1a_evt_blk.space_id, kGasSystemIo);
    EXPECT_EQ(f.x_pm1a_evt_blk.address, 0x600u);
    EXPECT_EQ(f.x_pm1a_evt_blk.bit_width, 32);
    EXPECT_EQ(f.x_pm1a_cnt_blk.address, 0x604u);
    EXPECT_EQ(f.x_pm1a_cnt_blk.bit_width, 16);
    EXPECT_EQ(f.x_pm_tmr_blk.address, 0x608u);
    EXPECT_EQ(f.x_pm_tmr_blk.bit_width, 32);
    uint32_t flags = f.flags;
    EXPECT_EQ(flags & kFadtPwrButton, 0u) << "power button must be a fixed feature";
    EXPECT_NE(flags & kFadtSlpButton, 0u);
    EXPECT_NE(flags & kFadtResetRegSup, 0u);
    EXPECT_EQ(flags & kFadtHwReducedAcpi, 0u);
    EXPECT_EQ(flags & kFadtTmrValExt, 0u) << "the PM timer is 24 bits";
    EXPECT_EQ(f.reset_reg.space_id, kGasSystemIo);
    EXPECT_EQ(f.reset_reg.bit_width, 8);
    EXPECT_EQ(f.reset_reg.address, 0xCF9u);
    EXPECT_EQ(f.reset_value, 0x06);
    uint16_t arch = f.iapc_boot_arch;
    EXPECT_NE(arch & kBootArch8042, 0);
    EXPECT_NE(arch & kBootArchLegacyDevices, 0);
    EXPECT_EQ(arch & kBootArchCmosRtcNotPresent, 0);
    EXPECT_EQ(f.century, 0x32);

    auto facs = load<Facs>(t.find("FACS")->bytes);
    EXPECT_EQ(std::string(facs.signature, 4), "FACS");
    EXPECT_EQ(facs.length, 64u);
}

TEST(AcpiTables, Madt) {
    AcpiConfig config;
    config.cpu_count = 3;
    AcpiTables t = build_ok(config);
    const auto& madt = t.find("APIC")->bytes;
    auto h = load<MadtHeader>(madt);
    EXPECT_EQ(h.local_apic_address, 0xFEE0'0000u);
    EXPECT_EQ(h.flags, 1u);
    MadtEntries e = parse_madt(madt);
    ASSERT_TRUE(e.well_formed);
    ASSERT_EQ(e.lapics.size(), 3u);
    for (uint8_t i = 0; i < 3; ++i) {
        EXPECT_EQ(e.lapics[i].processor_uid, i);
        EXPECT_EQ(e.lapics[i].apic_id, i);
        EXPECT_EQ(e.lapics[i].flags, 1u);
    }
    ASSERT_EQ(e.ioapics.size(), 1u);
    EXPECT_EQ(e.ioapics[0].address, 0xFEC0'0000u);
    EXPECT_EQ(e.ioapics[0].gsi_base, 0u);
    std::map<uint8_t, MadtInterruptOverride> iso;
    for (const auto& o : e.overrides) {
        EXPECT_EQ(o.bus, 0);
        EXPECT_TRUE(iso.emplace(o.source, o).second) << "duplicate override for IRQ " << int(o.source);
    }
    ASSERT_TRUE(iso.count(0));
    EXPECT_EQ(iso[0].gsi, 2u);
    ASSERT_TRUE(iso.count(9));
    EXPECT_EQ(iso[9].gsi, 9u);
    EXPECT_EQ(iso[9].flags, kMpsLevel | kMpsActiveHigh);
    for (uint32_t irq : layout::kIrqPciIntx) {
        ASSERT_TRUE(iso.count(static_cast<uint8_t>(irq))) << irq;
        EXPECT_EQ(iso[static_cast<uint8_t>(irq)].flags, kMpsLevel | kMpsActiveHigh);
    }
    ASSERT_EQ(e.nmis.size(), 1u);
    EXPECT_EQ(e.nmis[0].processor_uid, 0xFF);
    EXPECT_EQ(e.nmis[0].lint, 1);
}

TEST(AcpiTables, Mcfg) {
    AcpiConfig config;
    config.pci->bus_end = 3;
    AcpiTables t = build_ok(config);
    const auto& mcfg = t.find("MCFG")->bytes;
    ASSERT_EQ(mcfg.size(), 44u + 16u);
    auto a = load<McfgAllocation>(mcfg, 44);
    EXPECT_EQ(a.base_address, layout::kPciEcamStart);
    EXPECT_EQ(a.segment, 0);
    EXPECT_EQ(a.start_bus, 0);
    EXPECT_EQ(a.end_bus, 3);
}

TEST(AcpiTables, DsdtNamesTheDevices) {
    AcpiConfig config;
    config.cpu_count = 2;
    AcpiTables t = build_ok(config);
    const auto& dsdt = t.find("DSDT")->bytes;
    EXPECT_EQ(load<TableHeader>(dsdt).revision, 2);
    for (const char* name :
         {"COM1", "KBD_", "MOU_", "RTC_", "PCI0", "MBRD", "C000", "C001", "_S5_", "_PRT", "_OSC"})
        EXPECT_TRUE(contains(dsdt, aml::Bytes(name, name + 4))) << name;
    EXPECT_FALSE(contains(dsdt, aml::Bytes{'C', '0', '0', '2'}));
    for (const char* id : {"PNP0501", "PNP0303", "PNP0F13", "PNP0B00", "PNP0A08", "PNP0A03", "PNP0C02"})
        EXPECT_TRUE(contains(dsdt, aml::eisa_id(id))) << id;
    // \_S5 carries the SLP_TYP the PM device powers off on.
    EXPECT_TRUE(contains(dsdt, aml::name("\\_S5", aml::package({aml::integer(5), aml::integer(5),
                                                                aml::integer(0), aml::integer(0)}))));
}

TEST(AcpiTables, DevicesFollowTheConfig) {
    AcpiConfig config;
    config.pci.reset();
    config.i8042 = false;
    config.rtc = false;
    AcpiTables t = build_ok(config);
    EXPECT_EQ(t.find("MCFG"), nullptr);
    EXPECT_EQ(t.find("XSDT")->bytes.size(), 36u + 2 * 8);
    const auto& dsdt = t.find("DSDT")->bytes;
    EXPECT_FALSE(contains(dsdt, aml::eisa_id("PNP0A08")));
    EXPECT_FALSE(contains(dsdt, aml::eisa_id("PNP0303")));
    EXPECT_FALSE(contains(dsdt, aml::eisa_id("PNP0B00")));
    EXPECT_TRUE(contains(dsdt, aml::eisa_id("PNP0501")));
    auto f = load<Fadt>(t.find("FACP")->bytes);
    uint16_t arch = f.iapc_boot_arch;
    EXPECT_EQ(arch & kBootArch8042, 0);
    EXPECT_NE(arch & kBootArchCmosRtcNotPresent, 0);
    EXPECT_EQ(f.century, 0);
    MadtEntries e = parse_madt(t.find("APIC")->bytes);
    EXPECT_EQ(e.overrides.size(), 2u);  // IRQ0 and the SCI only

    config.com1 = false;
    t = build_ok(config);
    EXPECT_EQ(load<Fadt>(t.find("FACP")->bytes).iapc_boot_arch & kBootArchLegacyDevices, 0);
}

TEST(AcpiTables, PciRoutingSwizzle) {
    PciHostConfig pci;
    EXPECT_EQ(pci_intx_irq(pci, 1, 0), layout::kIrqPciIntx[1]);
    EXPECT_EQ(pci_intx_irq(pci, 1, 3), layout::kIrqPciIntx[0]);
    EXPECT_EQ(pci_intx_irq(pci, 4, 0), layout::kIrqPciIntx[0]);
    EXPECT_EQ(pci_intx_irq(pci, 31, 2), layout::kIrqPciIntx[1]);
    // Every _PRT entry of the DSDT says the same.
    AcpiTables t = build_ok(AcpiConfig{});
    const auto& dsdt = t.find("DSDT")->bytes;
    for (uint8_t slot = 1; slot < 32; ++slot) {
        for (uint8_t pin = 0; pin < 4; ++pin) {
            aml::Bytes entry = aml::package({aml::integer((uint64_t{slot} << 16) | 0xFFFF), aml::integer(pin),
                                             aml::integer(0), aml::integer(pci_intx_irq(pci, slot, pin))});
            EXPECT_TRUE(contains(dsdt, entry)) << int(slot) << "." << int(pin);
        }
    }
}

TEST(AcpiTables, LargestMachineFits) {
    AcpiConfig config;
    config.cpu_count = 255;
    config.pci->mmio64_base = 0x100'0000'0000;
    config.pci->mmio64_size = 0x40'0000'0000;
    AcpiTables t = build_ok(config);
    EXPECT_EQ(parse_madt(t.find("APIC")->bytes).lapics.size(), 255u);
    EXPECT_TRUE(contains(t.find("DSDT")->bytes, aml::Bytes{'C', '0', 'F', 'E'}));
    EXPECT_LE(t.end, layout::kAcpiTablesEnd);
}

TEST(AcpiTables, ConfigErrorsNameTheProblem) {
    auto error_of = [](AcpiConfig c) -> std::string {
        auto t = build_acpi_tables(c);
        return t.ok() ? "" : t.error().message();
    };
    AcpiConfig c;
    c.cpu_count = 0;
    EXPECT_NE(error_of(c).find("cpu_count"), std::string::npos);
    c = {};
    c.cpu_count = 256;
    EXPECT_NE(error_of(c).find("256 vCPUs"), std::string::npos);
    c = {};
    c.sci_irq = 20;
    EXPECT_NE(error_of(c).find("SCI IRQ 20"), std::string::npos);
    c = {};
    c.tables_start = 0xE0008;
    EXPECT_NE(error_of(c).find("aligned"), std::string::npos);
    c = {};
    c.tables_end = c.tables_start + 256;
    EXPECT_NE(error_of(c).find("holds only"), std::string::npos);
    c = {};
    c.pci->bus_start = 2;
    c.pci->bus_end = 1;
    EXPECT_NE(error_of(c).find("bus range"), std::string::npos);
    c = {};
    c.pci->mmio32_base = 0xF000'0000;
    c.pci->mmio32_size = 0x2000'0000;
    EXPECT_NE(error_of(c).find("crosses 4 GiB"), std::string::npos);
    c = {};
    c.sci_irq = 2;
    EXPECT_NE(error_of(c).find("SCI IRQ 2"), std::string::npos);
    c = {};
    c.pci->intx_irqs[1] = 0;
    EXPECT_NE(error_of(c).find("INTx IRQ 0"), std::string::npos);
    c = {};
    c.pci->intx_irqs[2] = 16;
    EXPECT_NE(error_of(c).find("INTx IRQ 16"), std::string::npos);
    c = {};
    c.pci->ecam_base = 0xE008'0000;
    EXPECT_NE(error_of(c).find("ECAM"), std::string::npos);
    c = {};
    c.s5_slp_typ = 8;
    EXPECT_NE(error_of(c).find("SLP_TYP"), std::string::npos);
}

TEST(AcpiTables, WritesIntoGuestMemory) {
    std::vector<uint8_t> ram(2 << 20, 0xAA);
    GuestMemory memory({GuestRegion{0, ram.size(), ram.data()}});
    AcpiConfig config;
    config.cpu_count = 2;
    auto placed = write_acpi_tables(memory, config);
    ASSERT_TRUE(placed.ok()) << placed.error().message();
    EXPECT_EQ(placed->rsdp_address, 0xE0000u);
    for (const auto& t : placed->tables) {
        EXPECT_EQ(0, std::memcmp(ram.data() + t.address, t.bytes.data(), t.bytes.size())) << t.signature;
    }
    // Padding between tables is zeroed, bytes outside the area are untouched.
    EXPECT_EQ(ram[placed->tables[0].address + 36], 0);
    EXPECT_EQ(ram[layout::kAcpiTablesStart - 1], 0xAA);
    EXPECT_EQ(ram[placed->end], 0xAA);
    // The guest finds the RSDP the way Linux does: a 16-byte aligned scan of 0xE0000-0xFFFFF.
    uint64_t found = 0;
    for (uint64_t a = 0xE0000; a < 0x100000; a += 16) {
        if (std::memcmp(ram.data() + a, "RSD PTR ", 8) == 0) {
            found = a;
            break;
        }
    }
    EXPECT_EQ(found, placed->rsdp_address);
}

TEST(AcpiTables, RefusesGuestMemoryWithoutTheArea) {
    std::vector<uint8_t> ram(0xE0000);
    GuestMemory memory({GuestRegion{0, ram.size(), ram.data()}});
    auto placed = write_acpi_tables(memory, AcpiConfig{});
    ASSERT_FALSE(placed.ok());
    EXPECT_NE(placed.error().message().find("table area"), std::string::npos);
}

// Property test: any config the builder accepts yields consistent tables.
TEST(AcpiTables, RandomConfigsStayConsistent) {
    std::mt19937_64 rng(12345);
    for (int round = 0; round < 300; ++round) {
        AcpiConfig c;
        c.cpu_count = static_cast<uint32_t>(rng() % 260);
        c.com1 = rng() & 1;
        c.i8042 = rng() & 1;
        c.rtc = rng() & 1;
        if (rng() % 4 == 0) {
            c.pci.reset();
        } else {
            c.pci->bus_start = static_cast<uint8_t>(rng() % 4);
            c.pci->bus_end = static_cast<uint8_t>(c.pci->bus_start + rng() % 8);
            c.pci->segment = static_cast<uint16_t>(rng() % 2);
            if (rng() & 1) {
                c.pci->mmio64_base = (rng() % 64 + 1) << 32;
                c.pci->mmio64_size = (rng() % 16 + 1) << 30;
            }
            for (auto& irq : c.pci->intx_irqs)
                irq = static_cast<uint8_t>(rng() % 16);
        }
        c.sci_irq = static_cast<uint8_t>(rng() % 16);
        auto t = build_acpi_tables(c);
        auto isa_ok = [](uint8_t irq) { return irq != 0 && irq != 2; };
        bool valid = c.cpu_count >= 1 && c.cpu_count <= 255 && isa_ok(c.sci_irq);
        if (c.pci) {
            for (uint8_t irq : c.pci->intx_irqs)
                valid &= isa_ok(irq);
        }
        ASSERT_EQ(t.ok(), valid) << (t.ok() ? "" : t.error().message());
        if (!valid) continue;
        for (const auto& table : t->tables) {
            if (table.signature == "RSD PTR ") {
                ASSERT_EQ(byte_sum(table.bytes, 36), 0);
            } else if (table.signature != "FACS") {
                ASSERT_EQ(byte_sum(table.bytes, table.bytes.size()), 0) << table.signature;
                ASSERT_EQ(load<TableHeader>(table.bytes).length, table.bytes.size());
            }
        }
        MadtEntries e = parse_madt(t->find("APIC")->bytes);
        ASSERT_TRUE(e.well_formed);
        ASSERT_EQ(e.lapics.size(), c.cpu_count);
        std::map<uint8_t, int> sources;
        for (const auto& o : e.overrides)
            ASSERT_EQ(++sources[o.source], 1) << "duplicate IRQ override";
        ASSERT_EQ(t->find("MCFG") != nullptr, c.pci.has_value());
    }
}

// The tables describe the devices in devices/legacy: same S5 sleep type, block sizes, ports
// and reset value.
TEST(AcpiTables, AgreeWithTheLegacyDevices) {
    AcpiConfig c;
    EXPECT_EQ(c.s5_slp_typ, devices::AcpiPm::kSlpTypS5);
    EXPECT_EQ(c.pm1a_control_port - c.pm1a_event_port, devices::AcpiPm::kPm1ControlOffset);
    EXPECT_EQ(c.pm_timer_port - c.pm1a_event_port, devices::AcpiPm::kPmTimerOffset);
    EXPECT_EQ(c.reset_value, devices::ResetControl::kResetValue);
    auto f = load<Fadt>(build_ok(c).find("FACP")->bytes);
    EXPECT_EQ(f.pm1_evt_len, devices::AcpiPm::kPm1EventLength);
    EXPECT_EQ(f.pm1_cnt_len, devices::AcpiPm::kPm1ControlLength);
    EXPECT_EQ(f.pm_tmr_len, devices::AcpiPm::kPmTimerLength);
}

class IaslDecompile : public ::testing::TestWithParam<int> {};

AcpiConfig decompile_config(int which) {
    AcpiConfig c;
    switch (which) {
        case 0:
            c.cpu_count = 2;
            break;
        case 1:
            c.cpu_count = 1;
            c.pci.reset();
            c.i8042 = false;
            break;
        default:
            c.cpu_count = 255;
            c.pci->bus_end = 255;
            c.pci->mmio64_base = 0x100'0000'0000;
            c.pci->mmio64_size = 0x40'0000'0000;
            break;
    }
    return c;
}

// iasl -d must decompile every table without a warning or error, and the data table compiler
// must turn the decompiled text back into the same bytes (so every field was understood).
TEST_P(IaslDecompile, EveryTableDecompilesAndRecompiles) {
    if (!testing::have_iasl()) GTEST_SKIP() << "iasl (acpica-tools) is not installed";
    AcpiConfig config = decompile_config(GetParam());
    AcpiTables t = build_ok(config);
    testing::ScratchDir dir;
    ASSERT_FALSE(dir.path().empty());
    for (const auto& table : t.tables) {
        // iasl cannot take a lone RSDP as a file; it is checked field by field above.
        if (table.signature == "RSD PTR ") continue;
        SCOPED_TRACE(table.signature);
        std::string base = table.signature;
        dir.write(base + ".dat", table.bytes);
        auto r = testing::run_iasl(dir, "-d " + base + ".dat");
        ASSERT_EQ(r.status, 0) << r.output;
        for (const char* bad : {"Error", "Warning", "Incorrect", "Invalid", "Unknown"})
            EXPECT_EQ(r.output.find(bad), std::string::npos) << r.output;
        auto dsl = dir.read_text(base + ".dsl");
        ASSERT_TRUE(dsl.has_value());
        EXPECT_EQ(dsl->find("Incorrect checksum"), std::string::npos);

        // Recompile (without iasl's optimizations, which would shorten names).
        std::string rt = "rt" + base;
        dir.write_text(rt + ".dsl", *dsl);
        r = testing::run_iasl(dir, "-oa -p " + rt + " " + rt + ".dsl");
        ASSERT_EQ(r.status, 0) << r.output;
        EXPECT_NE(r.output.find("0 Errors, 0 Warnings"), std::string::npos) << r.output;
        auto again = dir.read_bytes(rt + ".aml");
        ASSERT_TRUE(again.has_value());
        ASSERT_EQ(again->size(), table.bytes.size());
        // Same bytes but for the checksum and the compiler ID/revision iasl stamps itself.
        for (size_t i = 0; i < table.bytes.size(); ++i) {
            if (table.signature != "FACS" && (i == 9 || (i >= 28 && i < 36))) continue;
            ASSERT_EQ((*again)[i], table.bytes[i]) << "byte " << i;
        }

        if (table.signature == "DSDT") {
            for (const char* expect : {"Device (C000)", "Name (\\_S5, Package (0x04)", "Scope (\\_SB)"})
                EXPECT_NE(dsl->find(expect), std::string::npos) << expect;
            if (config.com1) {
                EXPECT_NE(dsl->find("Device (COM1)"), std::string::npos);
                EXPECT_NE(dsl->find("EisaId (\"PNP0501\")"), std::string::npos);
                EXPECT_NE(dsl->find("0x03F8,             // Range Minimum"), std::string::npos);
                EXPECT_NE(dsl->find("{4}"), std::string::npos);
            }
            if (config.i8042) {
                EXPECT_NE(dsl->find("Device (KBD)"), std::string::npos);
                EXPECT_NE(dsl->find("EisaId (\"PNP0303\")"), std::string::npos);
                EXPECT_NE(dsl->find("Device (MOU)"), std::string::npos);
                EXPECT_NE(dsl->find("EisaId (\"PNP0F13\")"), std::string::npos);
            } else {
                EXPECT_EQ(dsl->find("PNP0303"), std::string::npos);
            }
            EXPECT_NE(dsl->find("EisaId (\"PNP0B00\")"), std::string::npos);
            if (config.pci) {
                EXPECT_NE(dsl->find("Device (PCI0)"), std::string::npos);
                EXPECT_NE(dsl->find("EisaId (\"PNP0A08\")"), std::string::npos);
                EXPECT_NE(dsl->find("Name (_CID, EisaId (\"PNP0A03\")"), std::string::npos);
                EXPECT_NE(dsl->find("Name (_PRT, Package (0x7C)"), std::string::npos);
                EXPECT_NE(dsl->find("Method (_OSC, 4, Serialized)"), std::string::npos);
                EXPECT_NE(dsl->find("0xC0000000,         // Range Minimum"), std::string::npos);
                EXPECT_NE(dsl->find("0x0CF7,             // Range Maximum"), std::string::npos);
                EXPECT_NE(dsl->find("0x0D00,             // Range Minimum"), std::string::npos);
                EXPECT_NE(dsl->find("EisaId (\"PNP0C02\")"), std::string::npos);
                if (config.pci->mmio64_size) {
                    EXPECT_NE(dsl->find("QWordMemory"), std::string::npos);
                }
            } else {
                EXPECT_EQ(dsl->find("PCI0"), std::string::npos);
            }
        }
    }
}

INSTANTIATE_TEST_SUITE_P(Configs, IaslDecompile, ::testing::Values(0, 1, 2));

}  // namespace
}  // namespace vireo::arch::x86::acpi
