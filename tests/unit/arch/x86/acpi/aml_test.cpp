// Tests for the AML builder: encodings from ACPI 6.5 §20 and §6.4, and byte-for-byte agreement
// with what ACPICA's iasl compiles from the equivalent ASL.
#include "arch/x86/acpi/aml.hpp"

#include <gtest/gtest.h>

#include "arch/x86/acpi/acpi_builder.hpp"
#include "iasl.hpp"

namespace vireo::arch::x86::acpi {
namespace {

using aml::Bytes;

TEST(Aml, PkgLengthBoundaries) {
    EXPECT_EQ(aml::pkg_length(0), (Bytes{0x01}));
    EXPECT_EQ(aml::pkg_length(62), (Bytes{0x3F}));
    // 63 + 2 = 65 = 0x41: two bytes, low nibble 1 in the lead byte, 0x04 next.
    EXPECT_EQ(aml::pkg_length(63), (Bytes{0x41, 0x04}));
    EXPECT_EQ(aml::pkg_length(0xFFD), (Bytes{0x4F, 0xFF}));        // total 0xFFF
    EXPECT_EQ(aml::pkg_length(0xFFE), (Bytes{0x81, 0x00, 0x01}));  // total 0x1001
    EXPECT_EQ(aml::pkg_length(0xFFFFC), (Bytes{0x8F, 0xFF, 0xFF}));
    EXPECT_EQ(aml::pkg_length(0xFFFFD), (Bytes{0xC1, 0x00, 0x00, 0x01}));
}

TEST(Aml, NameStrings) {
    EXPECT_EQ(aml::name_string("_HID"), (Bytes{'_', 'H', 'I', 'D'}));
    EXPECT_EQ(aml::name_string("KBD"), (Bytes{'K', 'B', 'D', '_'}));
    EXPECT_EQ(aml::name_string("\\_SB"), (Bytes{'\\', '_', 'S', 'B', '_'}));
    EXPECT_EQ(aml::name_string("\\_SB.PCI0"), (Bytes{'\\', 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0'}));
    EXPECT_EQ(aml::name_string("^^C1.X"), (Bytes{'^', '^', 0x2E, 'C', '1', '_', '_', 'X', '_', '_', '_'}));
    Bytes multi = aml::name_string("\\A.B.C");
    EXPECT_EQ(multi.size(), 1u + 2u + 12u);
    EXPECT_EQ(multi[1], 0x2F);
    EXPECT_EQ(multi[2], 3);
    EXPECT_EQ(aml::name_string(""), (Bytes{0x00}));
}

TEST(AmlDeathTest, BadNamesAreHostBugs) {
    EXPECT_DEATH(aml::name_string("1ABC"), "bad AML name");
    EXPECT_DEATH(aml::name_string("ABCDE"), "bad AML name");
    EXPECT_DEATH(aml::name_string("AB.."), "bad AML name");
    EXPECT_DEATH(aml::name_string("ab"), "bad AML name");
    EXPECT_DEATH(aml::eisa_id("PNP05"), "bad EISA ID");
    EXPECT_DEATH(aml::eisa_id("pnp0501"), "bad EISA ID");
    EXPECT_DEATH(aml::uuid("not-a-uuid"), "bad UUID");
}

TEST(Aml, Integers) {
    EXPECT_EQ(aml::integer(0), (Bytes{0x00}));
    EXPECT_EQ(aml::integer(1), (Bytes{0x01}));
    EXPECT_EQ(aml::integer(~uint64_t{0}), (Bytes{0xFF}));
    EXPECT_EQ(aml::integer(2), (Bytes{0x0A, 0x02}));
    EXPECT_EQ(aml::integer(0xFF), (Bytes{0x0A, 0xFF}));
    EXPECT_EQ(aml::integer(0x100), (Bytes{0x0B, 0x00, 0x01}));
    EXPECT_EQ(aml::integer(0x10000), (Bytes{0x0C, 0x00, 0x00, 0x01, 0x00}));
    EXPECT_EQ(aml::integer(0x1'0000'0000), (Bytes{0x0E, 0, 0, 0, 0, 1, 0, 0, 0}));
}

TEST(Aml, StringsAndIds) {
    EXPECT_EQ(aml::string("AB"), (Bytes{0x0D, 'A', 'B', 0x00}));
    EXPECT_EQ(aml::eisa_id_value("PNP0A03"), 0x030AD041u);
    EXPECT_EQ(aml::eisa_id_value("PNP0501"), 0x0105D041u);
    EXPECT_EQ(aml::eisa_id("PNP0B00"), (Bytes{0x0C, 0x41, 0xD0, 0x0B, 0x00}));
    Bytes u = aml::uuid("33DB4D5B-1FF7-401C-9657-7441C03DD766");
    Bytes expected_tail = {0x5B, 0x4D, 0xDB, 0x33, 0xF7, 0x1F, 0x1C, 0x40,
                           0x96, 0x57, 0x74, 0x41, 0xC0, 0x3D, 0xD7, 0x66};
    ASSERT_EQ(u.size(), 2u + 2u + 16u);
    EXPECT_EQ(Bytes(u.end() - 16, u.end()), expected_tail);
}

TEST(Aml, ResourceDescriptors) {
    aml::ResourceTemplate rt;
    rt.io(0x3F8, 0x3F8, 1, 8).irq_no_flags(4);
    EXPECT_EQ(rt.descriptors(),
              (Bytes{0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, 0x22, 0x10, 0x00, 0x79, 0x00}));
    aml::ResourceTemplate bus;
    bus.word_bus_number(aml::AddressUsage::kProducer, 0, 0x3F);
    Bytes d = bus.descriptors();
    ASSERT_EQ(d.size(), 16u + 2u);
    EXPECT_EQ(d[0], 0x88);
    EXPECT_EQ(d[3], 2);      // bus number range
    EXPECT_EQ(d[4], 0x0C);   // producer, min/max fixed
    EXPECT_EQ(d[14], 0x40);  // length
}

// Builds the same definition block as the ASL below and compares every AML byte after the
// header with iasl's output.
TEST(Aml, MatchesIaslCompilerOutput) {
    if (!testing::have_iasl()) GTEST_SKIP() << "iasl (acpica-tools) is not installed";
    const char* asl = R"(DefinitionBlock ("", "SSDT", 2, "VIREO ", "VIREOVM ", 1)
{
    Name (\_S5, Package () { 5, 5, 0, 0 })
    Scope (\_SB)
    {
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))
            Name (_UID, 1)
            Name (STR0, "Vireo COM1")
            Name (_CRS, ResourceTemplate () {
                IO (Decode16, 0x3F8, 0x3F8, 0x01, 0x08)
                IRQNoFlags () {4}
            })
        }
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CRS, ResourceTemplate () {
                WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode, 0, 0, 0x3F, 0, 0x40)
                WordIO (ResourceProducer, MinFixed, MaxFixed, PosDecode, EntireRange, 0, 0x0D00, 0xFFFF, 0, 0xF300)
                DWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite, 0, 0xC0000000, 0xDFFFFFFF, 0, 0x20000000)
                QWordMemory (ResourceProducer, PosDecode, MinFixed, MaxFixed, Cacheable, ReadWrite, 0, 0x800000000, 0xFFFFFFFFF, 0, 0x800000000)
                Memory32Fixed (ReadWrite, 0xE0000000, 0x100000)
                Interrupt (ResourceConsumer, Level, ActiveHigh, Shared) {5, 10}
                Interrupt (ResourceConsumer, Edge, ActiveLow, Exclusive) {33}
            })
            Method (_OSC, 4, Serialized)
            {
                CreateDWordField (Arg3, 0, CDW1)
                If (LEqual (Arg0, ToUUID ("33DB4D5B-1FF7-401C-9657-7441C03DD766")))
                {
                    CreateDWordField (Arg3, 8, CDW3)
                    And (CDW3, 0x1F, CDW3)
                }
                Else
                {
                    Or (CDW1, 4, CDW1)
                }
                Store (0x12345678, Local0)
                Store (0x123456789A, Local1)
                Return (Arg3)
            }
        }
    }
    Name (\_SB.PCI0.BIGN, 0xFFFFFFFFFFFFFFFF)
    Name (\_SB.PCI0.WRD, 0x1234)
}
)";
    testing::ScratchDir dir;
    ASSERT_FALSE(dir.path().empty());
    dir.write_text("t.asl", asl);
    auto r = testing::run_iasl(dir, "-p t t.asl");
    ASSERT_EQ(r.status, 0) << r.output;
    auto compiled = dir.read_bytes("t.aml");
    ASSERT_TRUE(compiled.has_value());

    using namespace aml;
    ResourceTemplate com1_crs;
    com1_crs.io(0x3F8, 0x3F8, 1, 8).irq_no_flags(4);
    ResourceTemplate pci_crs;
    const uint32_t gsis1[] = {5, 10};
    const uint32_t gsis2[] = {33};
    pci_crs.word_bus_number(AddressUsage::kProducer, 0, 0x3F)
        .word_io(AddressUsage::kProducer, 0x0D00, 0xFFFF)
        .dword_memory(AddressUsage::kProducer, Cacheability::kNonCacheable, true, 0xC000'0000, 0xDFFF'FFFF)
        .qword_memory(AddressUsage::kProducer, Cacheability::kCacheable, true, 0x8'0000'0000, 0xF'FFFF'FFFF)
        .memory32_fixed(true, 0xE000'0000, 0x10'0000)
        .interrupt(AddressUsage::kConsumer, Trigger::kLevel, Polarity::kActiveHigh, true, gsis1)
        .interrupt(AddressUsage::kConsumer, Trigger::kEdge, Polarity::kActiveLow, false, gsis2);
    Bytes osc = method("_OSC", 4, true,
                       {
                           create_dword_field(arg(3), integer(0), "CDW1"),
                           if_(lequal(arg(0), uuid("33DB4D5B-1FF7-401C-9657-7441C03DD766")),
                               {
                                   create_dword_field(arg(3), integer(8), "CDW3"),
                                   and_(name_string("CDW3"), integer(0x1F), name_string("CDW3")),
                               }),
                           else_({or_(name_string("CDW1"), integer(4), name_string("CDW1"))}),
                           store(integer(0x12345678), local(0)),
                           store(integer(0x12'3456'789A), local(1)),
                           ret(arg(3)),
                       });
    std::vector<Bytes> body = {
        name("\\_S5", package({integer(5), integer(5), integer(0), integer(0)})),
        scope("\\_SB",
              {device("COM1", {name("_HID", eisa_id("PNP0501")), name("_UID", integer(1)),
                               name("STR0", string("Vireo COM1")), name("_CRS", com1_crs.to_buffer())}),
               device("PCI0", {name("_HID", eisa_id("PNP0A08")), name("_CRS", pci_crs.to_buffer()), osc})}),
        name("\\_SB.PCI0.BIGN", integer(~uint64_t{0})),
        name("\\_SB.PCI0.WRD", integer(0x1234)),
    };
    Bytes ours;
    for (const auto& b : body)
        ours.insert(ours.end(), b.begin(), b.end());
    ASSERT_GT(compiled->size(), 36u);
    Bytes theirs(compiled->begin() + 36, compiled->end());
    EXPECT_EQ(ours, theirs);
}

}  // namespace
}  // namespace vireo::arch::x86::acpi
