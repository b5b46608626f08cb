// Malformed VHDs: each problem gives an error naming it, from the opener and from the checker,
// and nothing writes to the file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <functional>

#include "base/io.hpp"
#include "disk/image.hpp"
#include "disk/image_check.hpp"
#include "disk/vhd_format.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using namespace testing;
using namespace vhd;

// Byte surgery on VHD files.
struct Surgery {
    std::string path;

    std::vector<uint8_t> bytes() const { return read_file(path); }
    void put(uint64_t offset, const void* p, size_t n) const {
        auto b = bytes();
        if (b.size() < offset + n) b.resize(offset + n);
        std::memcpy(b.data() + offset, p, n);
        write_file(path, b);
    }
    void truncate(uint64_t size) const { std::filesystem::resize_file(path, size); }
    Footer footer() const {
        auto b = bytes();
        Footer f;
        std::memcpy(&f, b.data() + b.size() - 512, 512);
        return f;
    }
    // Changes both footers (end and copy at offset 0), resealing unless told not to.
    void edit_footers(const std::function<void(Footer&)>& fn, bool reseal = true) const {
        Footer f = footer();
        fn(f);
        if (reseal) seal_footer(f);
        auto b = bytes();
        std::memcpy(b.data() + b.size() - 512, &f, 512);
        if (f.disk_type.get() != static_cast<uint32_t>(DiskType::kFixed)) std::memcpy(b.data(), &f, 512);
        write_file(path, b);
    }
    DynamicHeader header() const {
        auto b = bytes();
        DynamicHeader h;
        std::memcpy(&h, b.data() + 512, sizeof h);
        return h;
    }
    void edit_header(const std::function<void(DynamicHeader&)>& fn, bool reseal = true) const {
        DynamicHeader h = header();
        fn(h);
        if (reseal) seal_header(h);
        put(512, &h, sizeof h);
    }
    void set_bat(uint32_t index, uint32_t value) const {
        uint8_t be[4];
        store_be<uint32_t>(be, value);
        put(header().table_offset.get() + index * 4ULL, be, 4);
    }
    uint32_t bat(uint32_t index) const {
        auto b = bytes();
        return load_be<uint32_t>(b.data() + header().table_offset.get() + index * 4ULL);
    }
};

class VhdMalformedTest : public ::testing::Test {
  protected:
    void SetUp() override {
        m_path = m_dir.path("bad.vhd");
        CreateOptions o;
        o.format = ImageFormat::kVhd;
        o.size = 8 << 20;
        ASSERT_TRUE(create_image(m_path, o).ok());
        auto d = open_image(m_path);
        ASSERT_TRUE(d.ok());
        // Blocks 0, 1 and 3 allocated.
        for (uint64_t at : {0ULL, 2ULL << 20, 6ULL << 20})
            ASSERT_TRUE(write_at(**d, at + 4096, pattern(8192, static_cast<uint32_t>(at))).ok());
        ASSERT_TRUE((*d)->flush().ok());
    }

    // The opener fails naming `needle`, the checker reports corruption, and the file is untouched.
    void expect_rejected(const std::string& needle, ImageFormat format = ImageFormat::kAuto) {
        auto before = read_file(m_path);
        for (bool ro : {true, false}) {
            ImageOptions o;
            o.read_only = ro;
            o.format = format;
            auto d = open_image(m_path, o);
            ASSERT_FALSE(d.ok()) << "opened although broken (" << needle << ")";
            EXPECT_NE(d.error().message().find(needle), std::string::npos) << d.error().message();
            EXPECT_NE(d.error().message().find(m_path), std::string::npos) << d.error().message();
        }
        CheckOptions co;
        co.format = ImageFormat::kVhd;
        auto r = check_image(m_path, co);
        ASSERT_TRUE(r.ok()) << r.error().message();
        EXPECT_EQ(r->exit_code(), 2);
        bool named = false;
        for (const auto& c : r->corruptions)
            named = named || c.find(needle) != std::string::npos;
        EXPECT_TRUE(named) << "check did not name: " << needle;
        co.repair = true;  // repair refuses to touch what it cannot fix safely
        r = check_image(m_path, co);
        ASSERT_TRUE(r.ok());
        EXPECT_EQ(read_file(m_path), before) << "the file changed";
    }

    TempDir m_dir;
    std::string m_path;
    Surgery s() const { return Surgery{m_path}; }
};

TEST_F(VhdMalformedTest, ValidImageIsAccepted) {
    auto d = open_image(m_path);
    ASSERT_TRUE(d.ok());
    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    EXPECT_EQ(r->allocated_blocks, 3u);
}

TEST_F(VhdMalformedTest, BadCookie) {
    s().edit_footers([](Footer& f) { f.cookie[3] = 'X'; });
    expect_rejected("bad cookie", ImageFormat::kVhd);
    // Detection no longer sees a VHD: the file is raw to it.
    EXPECT_EQ(*detect_format(m_path), ImageFormat::kRaw);
}

TEST_F(VhdMalformedTest, FooterChecksum) {
    s().edit_footers([](Footer& f) { f.timestamp = 1; }, false);
    expect_rejected("checksum mismatch");
}

TEST_F(VhdMalformedTest, HeaderCookieAndChecksum) {
    s().edit_header([](DynamicHeader& h) { h.cookie[0] = 'X'; });
    expect_rejected("expected \"cxsparse\"");
}

TEST_F(VhdMalformedTest, HeaderChecksum) {
    s().edit_header([](DynamicHeader& h) { h.block_size = 1 << 20; }, false);
    expect_rejected("checksum mismatch");
}

TEST_F(VhdMalformedTest, BlockSizeNotPowerOfTwo) {
    s().edit_header([](DynamicHeader& h) { h.block_size = 3 << 20; });
    expect_rejected("invalid block size");
}

TEST_F(VhdMalformedTest, HeaderOffsetOutsideFile) {
    s().edit_footers([](Footer& f) { f.data_offset = 1ULL << 40; });
    expect_rejected("outside the file");
}

TEST_F(VhdMalformedTest, BatEntryPastEndOfFile) {
    s().set_bat(2, 0x00FFFFFF);
    expect_rejected("points past the end of the file");
}

TEST_F(VhdMalformedTest, BatEntriesOverlap) {
    s().set_bat(3, s().bat(1) + 8);
    expect_rejected("overlap");
}

TEST_F(VhdMalformedTest, BatEntryOverlapsMetadata) {
    s().set_bat(1, 2);  // sector 2: the dynamic header
    expect_rejected("overlaps the dynamic header");
}

TEST_F(VhdMalformedTest, TablePastEndOfFile) {
    s().edit_header([](DynamicHeader& h) { h.table_offset = 1ULL << 50; });
    expect_rejected("extends past the end of the file");
}

TEST_F(VhdMalformedTest, AbsurdTableSizeAllocatesNothing) {
    // 4 billion entries would be 16 GiB of BAT: refused against the file size, not allocated.
    s().edit_header([](DynamicHeader& h) { h.max_table_entries = 0xFFFFFFFF; });
    expect_rejected("extends past the end of the file");
}

TEST_F(VhdMalformedTest, TableTooSmallForDisk) {
    s().edit_header([](DynamicHeader& h) { h.max_table_entries = 2; });
    expect_rejected("too few");
}

TEST_F(VhdMalformedTest, AbsurdSize) {
    s().edit_footers([](Footer& f) { f.current_size = 1ULL << 50; });
    expect_rejected("larger than the VHD maximum");
}

TEST_F(VhdMalformedTest, TruncatedInsideABlock) {
    auto size = std::filesystem::file_size(m_path);
    s().truncate(size - 512 - 4096);  // footer gone, last block cut short
    expect_rejected("points past the end of the file");
}

TEST_F(VhdMalformedTest, TinyFile) {
    s().truncate(100);
    expect_rejected("too small", ImageFormat::kVhd);
}

TEST_F(VhdMalformedTest, UnsupportedDiskType) {
    s().edit_footers([](Footer& f) { f.disk_type = 6; });
    expect_rejected("unsupported disk type 6");
}

TEST_F(VhdMalformedTest, TruncatedFixedDisk) {
    std::string fixed = m_dir.path("fixed.vhd");
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.subformat = VhdSubformat::kFixed;
    o.size = 1 << 20;
    ASSERT_TRUE(create_image(fixed, o).ok());
    Surgery f{fixed};
    Footer ft = f.footer();
    f.truncate((1 << 20) - 4096);
    f.put((1 << 20) - 4096, &ft, 512);  // footer intact, data short
    m_path = fixed;
    expect_rejected("truncated");
}

TEST_F(VhdMalformedTest, ParentLoop) {
    // x <- a <- b, then b replaces x and a is told (by UUID) that b is its parent: a <-> b.
    std::string x = m_dir.path("x.vhd"), a = m_dir.path("a.vhd"), b = m_dir.path("b.vhd");
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = 1 << 20;
    ASSERT_TRUE(create_image(x, o).ok());
    CreateOptions c;
    c.parent = x;
    ASSERT_TRUE(create_image(a, c).ok());
    c.parent = a;
    ASSERT_TRUE(create_image(b, c).ok());
    std::filesystem::rename(b, x);
    Footer bf = Surgery{x}.footer();
    Surgery{a}.edit_header([&bf](DynamicHeader& h) {
        h.parent_uuid = bf.uuid;
        h.parent_timestamp = bf.timestamp;
    });
    auto d = open_image(a, {.read_only = true});
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message().find("parent loop"), std::string::npos) << d.error().message();
    d = open_image(x, {.read_only = true});
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message().find("parent loop"), std::string::npos) << d.error().message();
    auto info = inspect_image(a);
    ASSERT_TRUE(info.ok());
    EXPECT_NE(info->chain_error.find("loop"), std::string::npos) << info->chain_error;
}

TEST_F(VhdMalformedTest, DamagedEndFooterOpensReadOnlyFromTheCopy) {
    auto model = read_at(**open_image(m_path, {.read_only = true}), 0, 8 << 20);
    ASSERT_TRUE(model.ok());
    auto size = std::filesystem::file_size(m_path);
    std::vector<uint8_t> zeros(512, 0);
    s().put(size - 512, zeros.data(), 512);
    auto ro = open_image(m_path, {.read_only = true});
    ASSERT_TRUE(ro.ok()) << ro.error().message();
    EXPECT_EQ(*read_at(**ro, 0, 8 << 20), *model);
    ro->reset();
    auto rw = open_image(m_path);
    ASSERT_FALSE(rw.ok());
    EXPECT_NE(rw.error().message().find("check --repair"), std::string::npos);
    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 2);
    r = check_image(m_path, {.repair = true});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0) << (r->corruptions.empty() ? "" : r->corruptions[0]);
    EXPECT_EQ(r->corruptions_fixed, 1u);
    rw = open_image(m_path);
    ASSERT_TRUE(rw.ok()) << rw.error().message();
    EXPECT_EQ(*read_at(**rw, 0, 8 << 20), *model);
}

TEST_F(VhdMalformedTest, DamagedFooterCopyIsRepaired) {
    std::vector<uint8_t> junk(512, 0x42);
    s().put(0, junk.data(), 512);
    auto d = open_image(m_path, {.read_only = true});
    ASSERT_TRUE(d.ok());  // the end footer is the real one
    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 2);
    // Not while someone has the image open.
    r = check_image(m_path, {.repair = true});
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("in use"), std::string::npos);
    d->reset();
    r = check_image(m_path, {.repair = true});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    auto b = read_file(m_path);
    EXPECT_TRUE(std::equal(b.begin(), b.begin() + 512, b.end() - 512));
}

TEST_F(VhdMalformedTest, BadLocatorIsSkippedNotFatal) {
    std::string base = m_dir.path("base.vhd"), child = m_dir.path("child.vhd");
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = 1 << 20;
    ASSERT_TRUE(create_image(base, o).ok());
    CreateOptions c;
    c.parent = base;
    ASSERT_TRUE(create_image(child, c).ok());
    // The first locator points far past the end of the file; the others still find the parent.
    Surgery{child}.edit_header([](DynamicHeader& h) { h.locators[0].data_offset = 1ULL << 45; });
    auto d = open_image(child, {.read_only = true});
    ASSERT_TRUE(d.ok()) << d.error().message();
    auto info = inspect_image(child);
    ASSERT_TRUE(info.ok());
    ASSERT_FALSE(info->warnings.empty());
    EXPECT_NE(info->warnings[0].find("past the end"), std::string::npos);
}

}  // namespace
}  // namespace vireo::disk
