// The ELF reader: headers, segments, notes and the PVH entry note.
#include "arch/x86/elf.hpp"

#include <gtest/gtest.h>

#include "fakes/kernel_images.hpp"

namespace vireo::arch::x86 {
namespace {

using testing::ElfSpec;
using testing::make_elf;

TEST(Elf, ParsesSegmentsEntryAndNotes) {
    ElfSpec spec;
    spec.entry = 0x100010;
    spec.segments = {{0x100000, std::vector<uint8_t>(64, 1), 128}};
    spec.pvh_entry = 0x100020;
    auto file = make_elf(spec);
    auto elf = parse_elf(file);
    ASSERT_TRUE(elf.ok()) << elf.error().message();
    EXPECT_TRUE(elf->is_64bit);
    EXPECT_EQ(elf->entry, 0x100010u);
    ASSERT_EQ(elf->segments.size(), 1u);
    EXPECT_EQ(elf->segments[0].paddr, 0x100000u);
    EXPECT_EQ(elf->segments[0].file_size, 64u);
    EXPECT_EQ(elf->segments[0].mem_size, 128u);
    ASSERT_EQ(elf->notes.size(), 1u);
    EXPECT_EQ(std::string(elf->notes[0].name.begin(), elf->notes[0].name.end()), "Xen");
    auto pvh = find_pvh_entry(*elf);
    ASSERT_TRUE(pvh.ok());
    EXPECT_EQ(pvh->value(), 0x100020u);
}

TEST(Elf, NoPvhNoteMeansNoEntry) {
    ElfSpec spec;
    spec.segments = {{0x100000, std::vector<uint8_t>(16, 1), 16}};
    auto elf = parse_elf(make_elf(spec));
    ASSERT_TRUE(elf.ok());
    auto pvh = find_pvh_entry(*elf);
    ASSERT_TRUE(pvh.ok());
    EXPECT_FALSE(pvh->has_value());
}

TEST(Elf, Elf32) {
    ElfSpec spec;
    spec.is_64bit = false;
    spec.machine = 3;
    spec.segments = {{0x100000, std::vector<uint8_t>(16, 1), 32}};
    auto elf = parse_elf(make_elf(spec));
    ASSERT_TRUE(elf.ok()) << elf.error().message();
    EXPECT_FALSE(elf->is_64bit);
    EXPECT_EQ(elf->segments[0].mem_size, 32u);
}

TEST(Elf, RejectsNonElfAndEmptySegments) {
    std::vector<uint8_t> junk = {1, 2, 3};
    EXPECT_FALSE(looks_like_elf(junk));
    EXPECT_FALSE(parse_elf(junk).ok());
    ElfSpec spec;
    spec.segments = {{0x100000, {}, 0}};
    auto r = parse_elf(make_elf(spec));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("no loadable segments"), std::string::npos);
}

TEST(Elf, TooManyProgramHeaders) {
    ElfSpec spec;
    spec.segments = {{0x100000, std::vector<uint8_t>(16, 1), 16}};
    auto f = make_elf(spec);
    testing::put16(f, 56, 0xffff);
    auto r = parse_elf(f);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("program headers"), std::string::npos);
}

}  // namespace
}  // namespace vireo::arch::x86
