// Kernel loaders: bzImage, ELF vmlinux and PVH (ELF32/ELF64), good images and broken ones, the
// zero page and hvm_start_info they write, command line and initrd placement.
#include "arch/x86/kernel_loader.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "arch/x86/boot_layout.hpp"
#include "arch/x86/boot_params.hpp"
#include "arch/x86/e820.hpp"
#include "arch/x86/pvh.hpp"
#include "fakes/kernel_images.hpp"
#include "fakes/test_memory.hpp"

namespace vireo::arch::x86 {
namespace {

using testing::BzImageSpec;
using testing::ElfSegmentSpec;
using testing::ElfSpec;
using testing::make_bzimage;
using testing::make_elf;
using testing::TestMemory;

constexpr uint64_t kRam = 32 << 20;

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
    std::vector<uint8_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = static_cast<uint8_t>(seed + i * 7);
    return v;
}

BootRequest request_for(const std::vector<uint8_t>& kernel, std::string cmdline = "console=ttyS0") {
    BootRequest r;
    r.kernel = kernel;
    r.cmdline = std::move(cmdline);
    r.e820 = build_e820(kRam);
    r.acpi_rsdp = 0xe0000;
    return r;
}

std::string error_of(const Result<BootEntry>& r) {
    return r.ok() ? std::string("(no error)") : r.error().message();
}

const BootParams& zero_page(TestMemory& mem) {
    return *reinterpret_cast<const BootParams*>(mem.host(boot_layout::kZeroPageAddr));
}

// ---- bzImage ----------------------------------------------------------------------------------

TEST(BzImage, LoadsPayloadAtOneMibAndEntersAtStartup64) {
    TestMemory mem(kRam);
    BzImageSpec spec;
    spec.payload = pattern(0x3000, 1);
    auto image = make_bzimage(spec);
    auto entry = load_kernel(mem.memory(), request_for(image));
    ASSERT_TRUE(entry.ok()) << entry.error().message();
    EXPECT_EQ(entry->format, KernelFormat::kBzImage);
    EXPECT_EQ(entry->protocol, BootProtocol::kLinux64);
    EXPECT_EQ(entry->entry, 0x100200u);
    EXPECT_EQ(entry->boot_info, boot_layout::kZeroPageAddr);
    EXPECT_EQ(entry->version, "test-kernel 1.0");
    EXPECT_EQ(std::memcmp(mem.host(0x100000), spec.payload.data(), spec.payload.size()), 0);
    EXPECT_EQ(entry->kernel_end, 0x100000u + 0x3000 + 0x10000);  // init_size
}

TEST(BzImage, ZeroPageCarriesHeaderCmdlineE820AndRsdp) {
    TestMemory mem(kRam);
    auto image = make_bzimage({});
    auto req = request_for(image, "console=ttyS0 root=/dev/vda");
    ASSERT_TRUE(load_kernel(mem.memory(), req).ok());
    const BootParams& bp = zero_page(mem);
    EXPECT_EQ(bp.hdr.header, kHdrSMagic);
    EXPECT_EQ(bp.hdr.boot_flag, kBootFlag);
    EXPECT_EQ(bp.hdr.version, 0x020f);
    EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
    EXPECT_EQ(bp.hdr.vid_mode, 0xffff);
    EXPECT_EQ(bp.hdr.cmd_line_ptr, boot_layout::kCmdlineAddr);
    EXPECT_STREQ(reinterpret_cast<const char*>(mem.host(boot_layout::kCmdlineAddr)),
                 "console=ttyS0 root=/dev/vda");
    EXPECT_EQ(bp.acpi_rsdp_addr, 0xe0000u);
    ASSERT_EQ(bp.e820_entries, req.e820.size());
    for (size_t i = 0; i < req.e820.size(); ++i) {
        EXPECT_EQ(bp.e820_table[i].addr, req.e820[i].addr) << i;
        EXPECT_EQ(bp.e820_table[i].size, req.e820[i].size) << i;
        EXPECT_EQ(bp.e820_table[i].type, static_cast<uint32_t>(req.e820[i].type)) << i;
    }
    EXPECT_EQ(bp.hdr.ramdisk_image, 0u);
    EXPECT_EQ(bp.hdr.ramdisk_size, 0u);
}

TEST(BzImage, InitrdGoesHighestBelowInitrdAddrMaxAndRamEnd) {
    TestMemory mem(kRam);
    auto initrd = pattern(10000, 3);
    // Below the end of RAM.
    {
        auto image = make_bzimage({});
        auto req = request_for(image);
        req.initrd = initrd;
        auto entry = load_kernel(mem.memory(), req);
        ASSERT_TRUE(entry.ok()) << entry.error().message();
        EXPECT_EQ(entry->initrd_addr, (kRam - 10000) & ~0xfffull);
        EXPECT_EQ(entry->initrd_addr % 4096, 0u);
        EXPECT_LE(entry->initrd_addr + 10000, kRam);
        EXPECT_EQ(std::memcmp(mem.host(entry->initrd_addr), initrd.data(), initrd.size()), 0);
        EXPECT_EQ(zero_page(mem).hdr.ramdisk_image, entry->initrd_addr);
        EXPECT_EQ(zero_page(mem).hdr.ramdisk_size, 10000u);
    }
    // Below initrd_addr_max when that is lower (the last byte may sit at initrd_addr_max).
    {
        BzImageSpec spec;
        spec.initrd_addr_max = 0x7fffff;  // 8 MiB - 1
        auto image = make_bzimage(spec);
        auto req = request_for(image);
        req.initrd = initrd;
        auto entry = load_kernel(mem.memory(), req);
        ASSERT_TRUE(entry.ok()) << entry.error().message();
        EXPECT_EQ(entry->initrd_addr, (0x800000 - 10000) & ~0xfffull);
        EXPECT_LE(entry->initrd_addr + 10000 - 1, 0x7fffffu);
    }
}

TEST(BzImage, InitrdThatDoesNotFitIsRefused) {
    TestMemory mem(kRam);
    BzImageSpec spec;
    spec.initrd_addr_max = 0x120000;  // barely above the kernel
    auto image = make_bzimage(spec);
    auto req = request_for(image);
    auto initrd = pattern(0x40000, 1);
    req.initrd = initrd;
    auto r = load_kernel(mem.memory(), req);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(error_of(r).find("initrd"), std::string::npos) << error_of(r);
    EXPECT_NE(error_of(r).find("does not fit"), std::string::npos) << error_of(r);
}

TEST(BzImage, CommandLineLongerThanCmdlineSizeIsRefused) {
    TestMemory mem(kRam);
    BzImageSpec spec;
    spec.cmdline_size = 16;
    auto image = make_bzimage(spec);
    EXPECT_TRUE(load_kernel(mem.memory(), request_for(image, std::string(16, 'a'))).ok());
    auto r = load_kernel(mem.memory(), request_for(image, std::string(17, 'a')));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(error_of(r).find("at most 16"), std::string::npos) << error_of(r);
    auto nul = load_kernel(mem.memory(), request_for(image, std::string("a\0b", 3)));
    EXPECT_FALSE(nul.ok());
}

TEST(BzImage, MalformedHeadersGetClearErrors) {
    TestMemory mem(kRam);
    struct Case {
        const char* name;
        std::function<void(std::vector<uint8_t>&)> corrupt;
        const char* expect;
    };
    const Case cases[] = {
        {"old protocol", [](auto& f) { testing::put16(f, 0x206, 0x0205); }, "2.05 is too old"},
        {"bad boot flag", [](auto& f) { testing::put16(f, 0x1fe, 0x1234); }, "boot flag"},
        {"zImage", [](auto& f) { f[0x211] = 0; }, "zImage"},
        {"32-bit kernel", [](auto& f) { testing::put16(f, 0x236, 0); }, "64-bit entry"},
        {"syssize too large", [](auto& f) { testing::put32(f, 0x1f4, 0x100000); }, "truncated"},
        {"setup past end", [](auto& f) { f[0x1f1] = 200; }, "truncated"},
        {"init_size beyond RAM", [](auto& f) { testing::put32(f, 0x260, 0x4000000); }, "outside guest RAM"},
    };
    for (const auto& c : cases) {
        auto image = make_bzimage({});
        c.corrupt(image);
        auto r = load_kernel(mem.memory(), request_for(image));
        ASSERT_FALSE(r.ok()) << c.name;
        EXPECT_NE(error_of(r).find(c.expect), std::string::npos) << c.name << ": " << error_of(r);
        EXPECT_EQ(error_of(r).rfind("bzImage", 0), 0u) << c.name << ": " << error_of(r);
    }
}

TEST(BzImage, TruncatedFilesAreRefusedAtEveryLength) {
    TestMemory mem(kRam);
    auto image = make_bzimage({});
    for (size_t len :
         {size_t{0x206}, size_t{0x210}, size_t{0x26b}, size_t{0x300}, size_t{1024}, size_t{1024 + 0x100}}) {
        std::vector<uint8_t> cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(len));
        auto r = load_kernel(mem.memory(), request_for(cut));
        EXPECT_FALSE(r.ok()) << len;
    }
}

TEST(BzImage, OldProtocolsWithoutXloadflagsStillLoad) {
    TestMemory mem(kRam);
    BzImageSpec spec;
    spec.version = 0x0206;
    spec.xloadflags = 0;  // the field did not exist before 2.12
    auto r = load_kernel(mem.memory(), request_for(make_bzimage(spec)));
    ASSERT_TRUE(r.ok()) << error_of(r);
    EXPECT_EQ(r->entry, 0x100200u);
}

// ---- ELF vmlinux ------------------------------------------------------------------------------

ElfSpec vmlinux_spec() {
    ElfSpec spec;
    spec.entry = 0x200000;
    spec.segments = {{0x200000, pattern(0x2000, 5), 0x2000}, {0x202000, pattern(0x100, 9), 0x3000}};
    return spec;
}

TEST(ElfVmlinux, LoadsSegmentsAtPhysicalAddressesAndZeroFillsBss) {
    TestMemory mem(kRam);
    std::memset(mem.host(0x202100), 0xcc, 0x100);  // stale bytes where .bss goes
    auto spec = vmlinux_spec();
    auto image = make_elf(spec);
    auto entry = load_kernel(mem.memory(), request_for(image));
    ASSERT_TRUE(entry.ok()) << error_of(entry);
    EXPECT_EQ(entry->format, KernelFormat::kElfVmlinux);
    EXPECT_EQ(entry->protocol, BootProtocol::kLinux64);
    EXPECT_EQ(entry->entry, 0x200000u);
    EXPECT_EQ(entry->boot_info, boot_layout::kZeroPageAddr);
    EXPECT_EQ(entry->kernel_start, 0x200000u);
    EXPECT_EQ(entry->kernel_end, 0x205000u);
    EXPECT_EQ(std::memcmp(mem.host(0x200000), spec.segments[0].data.data(), 0x2000), 0);
    EXPECT_EQ(std::memcmp(mem.host(0x202000), spec.segments[1].data.data(), 0x100), 0);
    for (uint64_t a = 0x202100; a < 0x205000; ++a)
        ASSERT_EQ(*mem.host(a), 0) << std::hex << a;
}

TEST(ElfVmlinux, GetsTheSameZeroPageFields) {
    TestMemory mem(kRam);
    auto image = make_elf(vmlinux_spec());
    auto req = request_for(image, "quiet");
    auto initrd = pattern(5000, 2);
    req.initrd = initrd;
    auto entry = load_kernel(mem.memory(), req);
    ASSERT_TRUE(entry.ok()) << error_of(entry);
    const BootParams& bp = zero_page(mem);
    EXPECT_EQ(bp.hdr.boot_flag, kBootFlag);
    EXPECT_EQ(bp.hdr.header, kHdrSMagic);
    EXPECT_EQ(bp.hdr.type_of_loader, 0xff);
    EXPECT_EQ(bp.hdr.cmd_line_ptr, boot_layout::kCmdlineAddr);
    EXPECT_STREQ(reinterpret_cast<const char*>(mem.host(boot_layout::kCmdlineAddr)), "quiet");
    EXPECT_EQ(bp.hdr.ramdisk_image, entry->initrd_addr);
    EXPECT_EQ(bp.hdr.ramdisk_size, 5000u);
    EXPECT_EQ(bp.e820_entries, req.e820.size());
    EXPECT_EQ(bp.acpi_rsdp_addr, 0xe0000u);
}

TEST(ElfVmlinux, Elf32WithoutPvhNoteIsRefused) {
    TestMemory mem(kRam);
    ElfSpec spec = vmlinux_spec();
    spec.is_64bit = false;
    spec.machine = 3;
    auto r = load_kernel(mem.memory(), request_for(make_elf(spec)));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(error_of(r).find("PVH"), std::string::npos) << error_of(r);
}

TEST(ElfVmlinux, EntryOutsideSegmentsIsRefused) {
    TestMemory mem(kRam);
    ElfSpec spec = vmlinux_spec();
    spec.entry = 0xffffffff81000000ull;  // a virtual address
    auto r = load_kernel(mem.memory(), request_for(make_elf(spec)));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(error_of(r).find("entry point"), std::string::npos) << error_of(r);
}

TEST(ElfVmlinux, MalformedFilesGetClearErrors) {
    TestMemory mem(kRam);
    struct Case {
        const char* name;
        std::function<void(std::vector<uint8_t>&)> corrupt;
        const char* expect;
    };
    const size_t ph0 = testing::elf_phdr_offset(true, 0);
    const Case cases[] = {
        {"class", [](auto& f) { f[4] = 3; }, "ELF class"},
        {"big-endian", [](auto& f) { f[5] = 2; }, "little-endian"},
        {"machine", [](auto& f) { testing::put16(f, 18, 40); }, "machine 40"},
        {"type", [](auto& f) { testing::put16(f, 16, 1); }, "not an executable"},
        {"no phdrs", [](auto& f) { testing::put16(f, 56, 0); }, "no program headers"},
        {"phdrs past end", [](auto& f) { testing::put64(f, 32, f.size() - 8); }, "extend past the end"},
        {"phentsize", [](auto& f) { testing::put16(f, 54, 20); }, "program header size"},
        {"segment past end", [ph0](auto& f) { testing::put64(f, ph0 + 32, f.size()); },
         "past the end of the file"},
        {"filesz > memsz", [ph0](auto& f) { testing::put64(f, ph0 + 40, 0x10); }, "larger than memory size"},
        {"address overflow", [ph0](auto& f) { testing::put64(f, ph0 + 24, ~0ull - 0x10); }, "overflows"},
        {"below 1 MiB", [ph0](auto& f) { testing::put64(f, ph0 + 24, 0x8000); }, "below 1 MiB"},
        {"beyond RAM", [ph0](auto& f) { testing::put64(f, ph0 + 24, 0x10000000); }, "outside guest RAM"},
    };
    for (const auto& c : cases) {
        auto image = make_elf(vmlinux_spec());
        c.corrupt(image);
        auto r = load_kernel(mem.memory(), request_for(image));
        ASSERT_FALSE(r.ok()) << c.name;
        EXPECT_NE(error_of(r).find(c.expect), std::string::npos) << c.name << ": " << error_of(r);
    }
}

TEST(ElfVmlinux, TruncatedFilesAreRefusedAtEveryLength) {
    TestMemory mem(kRam);
    auto image = make_elf(vmlinux_spec());
    for (size_t len = 0; len < image.size(); len += (len < 200 ? 1 : 97)) {
        std::vector<uint8_t> cut(image.begin(), image.begin() + static_cast<std::ptrdiff_t>(len));
        EXPECT_FALSE(load_kernel(mem.memory(), request_for(cut)).ok()) << len;
    }
}

// ---- PVH --------------------------------------------------------------------------------------

TEST(Pvh, Elf32AndElf64WithPhys32EntryNoteBootThroughPvh) {
    for (bool b64 : {false, true}) {
        for (uint32_t desc : {4u, 8u}) {
            TestMemory mem(kRam);
            ElfSpec spec = vmlinux_spec();
            spec.is_64bit = b64;
            spec.machine = b64 ? 62 : 3;
            spec.entry = 0x200000;
            spec.pvh_entry = 0x200040;
            spec.pvh_desc_size = desc;
            auto image = make_elf(spec);
            auto req = request_for(image, "console=hvc0");
            auto initrd = pattern(3000, 4);
            req.initrd = initrd;
            auto entry = load_kernel(mem.memory(), req);
            ASSERT_TRUE(entry.ok()) << error_of(entry);
            EXPECT_EQ(entry->format, b64 ? KernelFormat::kPvhElf64 : KernelFormat::kPvhElf32);
            EXPECT_EQ(entry->protocol, BootProtocol::kPvh);
            EXPECT_EQ(entry->entry, 0x200040u);
            EXPECT_EQ(entry->boot_info, boot_layout::kPvhStartInfoAddr);

            HvmStartInfo info;
            std::memcpy(static_cast<void*>(&info), mem.host(boot_layout::kPvhStartInfoAddr), sizeof info);
            EXPECT_EQ(info.magic, kHvmStartMagic);
            EXPECT_EQ(info.version, 1u);
            EXPECT_EQ(info.cmdline_paddr, boot_layout::kCmdlineAddr);
            EXPECT_STREQ(reinterpret_cast<const char*>(mem.host(info.cmdline_paddr)), "console=hvc0");
            EXPECT_EQ(info.rsdp_paddr, 0xe0000u);
            ASSERT_EQ(info.nr_modules, 1u);
            HvmModlistEntry mod;
            std::memcpy(static_cast<void*>(&mod), mem.host(info.modlist_paddr), sizeof mod);
            EXPECT_EQ(mod.paddr, entry->initrd_addr);
            EXPECT_EQ(mod.size, 3000u);
            EXPECT_EQ(std::memcmp(mem.host(mod.paddr), initrd.data(), initrd.size()), 0);
            ASSERT_EQ(info.memmap_entries, req.e820.size());
            for (size_t i = 0; i < req.e820.size(); ++i) {
                HvmMemmapEntry e;
                std::memcpy(static_cast<void*>(&e), mem.host(info.memmap_paddr + i * sizeof e), sizeof e);
                EXPECT_EQ(e.addr, req.e820[i].addr);
                EXPECT_EQ(e.size, req.e820[i].size);
                EXPECT_EQ(e.type, static_cast<uint32_t>(req.e820[i].type));
            }
        }
    }
}

TEST(Pvh, NoInitrdMeansNoModules) {
    TestMemory mem(kRam);
    ElfSpec spec = vmlinux_spec();
    spec.pvh_entry = 0x200000;
    ASSERT_TRUE(load_kernel(mem.memory(), request_for(make_elf(spec))).ok());
    HvmStartInfo info;
    std::memcpy(static_cast<void*>(&info), mem.host(boot_layout::kPvhStartInfoAddr), sizeof info);
    EXPECT_EQ(info.nr_modules, 0u);
    EXPECT_EQ(info.modlist_paddr, 0u);
}

TEST(Pvh, BadNotesAreRefused) {
    TestMemory mem(kRam);
    {
        ElfSpec spec = vmlinux_spec();
        spec.pvh_entry = 0x200000;
        spec.pvh_desc_size = 2;
        auto r = load_kernel(mem.memory(), request_for(make_elf(spec)));
        ASSERT_FALSE(r.ok());
        EXPECT_NE(error_of(r).find("2-byte descriptor"), std::string::npos) << error_of(r);
    }
    {
        ElfSpec spec = vmlinux_spec();
        spec.pvh_entry = 0x1'0000'0000ull;
        spec.pvh_desc_size = 8;
        auto r = load_kernel(mem.memory(), request_for(make_elf(spec)));
        ASSERT_FALSE(r.ok());
        EXPECT_NE(error_of(r).find("above 4 GiB"), std::string::npos) << error_of(r);
    }
    {
        // A note whose descriptor runs past its segment.
        ElfSpec spec = vmlinux_spec();
        spec.pvh_entry = 0x200000;
        auto image = make_elf(spec);
        size_t note_ph = testing::elf_phdr_offset(true, spec.segments.size());
        uint64_t note_off;
        std::memcpy(&note_off, image.data() + note_ph + 8, 8);
        testing::put32(image, note_off + 4, 0x1000);
        auto r = load_kernel(mem.memory(), request_for(image));
        ASSERT_FALSE(r.ok());
        EXPECT_NE(error_of(r).find("extends past"), std::string::npos) << error_of(r);
    }
}

TEST(KernelLoader, UnknownFormatsAndEmptyFilesAreRefused) {
    TestMemory mem(kRam);
    std::vector<uint8_t> empty;
    EXPECT_FALSE(load_kernel(mem.memory(), request_for(empty)).ok());
    std::vector<uint8_t> junk(4096, 0x42);
    auto r = load_kernel(mem.memory(), request_for(junk));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(error_of(r).find("unrecognized kernel image"), std::string::npos);
}

// The test guests built by CMake are real images of each format.
std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(KernelLoader, BuiltTestGuestsAreRecognized) {
    struct Guest {
        const char* file;
        KernelFormat format;
    };
    for (const Guest& g :
         {Guest{"pvh32.elf", KernelFormat::kPvhElf32}, Guest{"pvh64.elf", KernelFormat::kPvhElf64},
          Guest{"vmlinux64.elf", KernelFormat::kElfVmlinux}, Guest{"bzImage", KernelFormat::kBzImage}}) {
        auto image = read_file(std::string(VIREO_BINARY_DIR) + "/guests/" + g.file);
        if (image.empty()) GTEST_SKIP() << "test guests were not built (no host gcc)";
        TestMemory mem(kRam);
        auto entry = load_kernel(mem.memory(), request_for(image));
        ASSERT_TRUE(entry.ok()) << g.file << ": " << error_of(entry);
        EXPECT_EQ(entry->format, g.format) << g.file;
        EXPECT_GE(entry->entry, 0x100000u) << g.file;
    }
}

}  // namespace
}  // namespace vireo::arch::x86
