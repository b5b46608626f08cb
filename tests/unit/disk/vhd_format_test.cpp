// Tests for VHD structures: geometry, size rules, checksums, parsing errors, text and locators.
#include "disk/vhd_format.hpp"

#include <gtest/gtest.h>

#include <cstring>

namespace vireo::disk::vhd {
namespace {

TEST(VhdGeometry, FollowsTheSpecAppendixAndRoundsDown) {
    Geometry g = chs_for_size(1ULL << 30);
    EXPECT_EQ(g.cylinders, 2080);
    EXPECT_EQ(g.heads, 16);
    EXPECT_EQ(g.sectors_per_track, 63);
    EXPECT_EQ(g.bytes(), 1073479680u);  // 1 GiB rounds down
    // Small disks use 17 sectors per track and at least 4 heads.
    Geometry small = chs_for_size(10 << 20);
    EXPECT_EQ(small.sectors_per_track, 17);
    EXPECT_EQ(small.heads, 4);
    EXPECT_LE(small.bytes(), 10u << 20);
    // From 65535 x 16 x 63 sectors on: 255 sectors per track, capped at the maximum geometry.
    Geometry big = chs_for_size(65535ULL * 16 * 63 * 512);
    EXPECT_EQ(big.sectors_per_track, 255);
    EXPECT_EQ(chs_for_size(kMaxSize).sectors(), kMaxChsSectors);
    EXPECT_TRUE(chs_for_size(kMaxSize).is_max());
    for (uint64_t size : {1ULL << 20, 7ULL << 20, 100ULL << 20, 4ULL << 30, 100ULL << 30}) {
        Geometry x = chs_for_size(size);
        EXPECT_LE(x.bytes(), size) << size;
        EXPECT_GT(x.bytes(), size - size / 50) << size;  // never far below
    }
}

Footer footer_with(const char app[4], uint64_t current, Geometry g) {
    Footer f = make_footer({DiskType::kDynamic, current, Uuid::random(), 0});
    std::memcpy(f.creator_app.data(), app, 4);
    f.cylinders = g.cylinders;
    f.heads = g.heads;
    f.sectors_per_track = g.sectors_per_track;
    seal_footer(f);
    return f;
}

TEST(VhdSizeRule, MatchesQemu72) {
    Geometry g = chs_for_size(1ULL << 30);
    // Creators QEMU 7.2 sizes by current_size.
    for (const char* app : {"win ", "qem2", "d2v ", "CTXS"}) {
        auto d = decide_size(footer_with(app, 1ULL << 30, g));
        EXPECT_EQ(d.size, 1ULL << 30) << app;
        EXPECT_EQ(d.rule, SizeRule::kCurrentSize) << app;
    }
    auto tap = decide_size(footer_with("tap\0", 1ULL << 30, g));
    EXPECT_EQ(tap.rule, SizeRule::kCurrentSize);
    // Everything else: CHS (Virtual PC, QEMU without force_size, and unknown creators).
    for (const char* app : {"vpc ", "qemu", "vbox", "wa\0\0", "tap "}) {
        auto d = decide_size(footer_with(app, 1ULL << 30, g));
        EXPECT_EQ(d.size, g.bytes()) << app;
        EXPECT_EQ(d.rule, SizeRule::kChs) << app;
        EXPECT_NE(d.reason.find("CHS"), std::string::npos);
    }
    // The maximum geometry means "use current_size" whatever the creator.
    Geometry max{65535, 16, 255};
    auto big = decide_size(footer_with("vpc ", 3ULL << 40 >> 2, max));
    EXPECT_EQ(big.rule, SizeRule::kCurrentSize);
    // Overrides.
    EXPECT_EQ(decide_size(footer_with("qemu", 1ULL << 30, g), SizeRule::kCurrentSize).size, 1ULL << 30);
    EXPECT_EQ(decide_size(footer_with("win ", 1ULL << 30, g), SizeRule::kChs).size, g.bytes());
}

TEST(VhdSizeRule, NewFootersAreReadTheSameByEveryRule) {
    // Vireo writes "win " + exact current_size + the spec's geometry: QEMU 7.2 (and 10) read current_size.
    Footer f = make_footer({DiskType::kFixed, 10ULL << 30, Uuid::random(), 0});
    EXPECT_EQ(four_cc(f.creator_app), "win");
    EXPECT_EQ(decide_size(f).size, 10ULL << 30);
    EXPECT_EQ(f.current_size.get(), 10ULL << 30);
    EXPECT_EQ(f.original_size.get(), 10ULL << 30);
    EXPECT_EQ(f.data_offset.get(), ~uint64_t{0});
    Footer d = make_footer({DiskType::kDynamic, 1 << 20, Uuid::random(), 0});
    EXPECT_EQ(d.data_offset.get(), 512u);
}

TEST(VhdFooter, ChecksumIsOnesComplementOfByteSum) {
    Footer f = make_footer({DiskType::kDynamic, 1 << 20, Uuid::random(), 12345});
    uint32_t stored = f.checksum;
    f.checksum = 0;
    uint32_t sum = 0;
    for (size_t i = 0; i < sizeof f; ++i)
        sum += reinterpret_cast<const uint8_t*>(&f)[i];
    EXPECT_EQ(stored, ~sum);
}

std::vector<uint8_t> bytes_of(const Footer& f) {
    const auto* p = reinterpret_cast<const uint8_t*>(&f);
    return {p, p + sizeof f};
}

TEST(VhdFooter, ParseErrorsNameTheProblem) {
    Footer good = make_footer({DiskType::kDynamic, 1 << 20, Uuid::random(), 0});
    EXPECT_TRUE(parse_footer(bytes_of(good), "footer").ok());

    auto b = bytes_of(good);
    b[0] = 'X';
    auto r = parse_footer(b, "footer");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("bad cookie"), std::string::npos);

    b = bytes_of(good);
    b[100] ^= 1;
    r = parse_footer(b, "footer");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("checksum mismatch"), std::string::npos);

    Footer v = good;
    v.format_version = 0x00020000;
    seal_footer(v);
    r = parse_footer(bytes_of(v), "footer");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("format version"), std::string::npos);

    Footer t = good;
    t.disk_type = 5;
    seal_footer(t);
    r = parse_footer(bytes_of(t), "footer");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("disk type 5"), std::string::npos);

    EXPECT_FALSE(parse_footer(std::vector<uint8_t>(100), "footer").ok());
}

TEST(VhdFooter, OldShortFooterParses) {
    // Very old images end with a 511-byte footer; the missing byte is reserved.
    Footer f = make_footer({DiskType::kFixed, 1 << 20, Uuid::random(), 0});
    auto b = bytes_of(f);
    b.pop_back();
    EXPECT_TRUE(parse_footer(b, "old footer").ok());
}

TEST(VhdHeader, ParseErrorsNameTheProblem) {
    DynamicHeader h{};
    h.cookie = kHeaderCookie;
    h.data_offset = ~uint64_t{0};
    h.table_offset = 1536;
    h.header_version = 0x00010000;
    h.max_table_entries = 1;
    h.block_size = 2 << 20;
    seal_header(h);
    auto bytes = [](const DynamicHeader& x) {
        const auto* p = reinterpret_cast<const uint8_t*>(&x);
        return std::vector<uint8_t>(p, p + sizeof x);
    };
    EXPECT_TRUE(parse_header(bytes(h), "header").ok());
    DynamicHeader c = h;
    c.cookie[0] = 'X';
    seal_header(c);
    EXPECT_NE(parse_header(bytes(c), "header").error().message().find("bad cookie"), std::string::npos);
    DynamicHeader s = h;
    s.block_size = 3 << 20;
    seal_header(s);
    EXPECT_NE(parse_header(bytes(s), "header").error().message().find("block size"), std::string::npos);
    s.block_size = 256;
    seal_header(s);
    EXPECT_FALSE(parse_header(bytes(s), "header").ok());
    DynamicHeader k = h;
    k.max_table_entries = 7;  // without resealing
    EXPECT_NE(parse_header(bytes(k), "header").error().message().find("checksum"), std::string::npos);
    // Every power of two from 512 bytes reads.
    for (uint32_t bs = 512; bs != 0 && bs <= kMaxBlockSize; bs <<= 1) {
        DynamicHeader p = h;
        p.block_size = bs;
        seal_header(p);
        EXPECT_TRUE(parse_header(bytes(p), "header").ok()) << bs;
    }
}

TEST(VhdBitmap, MsbFirstAndRuns) {
    std::vector<uint8_t> bm(512, 0);
    bitmap_set(bm.data(), 0);
    EXPECT_EQ(bm[0], 0x80);
    bitmap_set(bm.data(), 9);
    EXPECT_EQ(bm[1], 0x40);
    bitmap_set_range(bm.data(), 20, 30);
    EXPECT_TRUE(bitmap_all_set(bm.data(), 20, 30));
    EXPECT_FALSE(bitmap_all_set(bm.data(), 19, 30));
    EXPECT_FALSE(bitmap_test(bm.data(), 50));
    bool v;
    EXPECT_EQ(bitmap_run(bm.data(), 20, 100, &v), 30u);
    EXPECT_TRUE(v);
    EXPECT_EQ(bitmap_run(bm.data(), 50, 1000, &v), 1000u);
    EXPECT_FALSE(v);
    EXPECT_EQ(bitmap_size_for(2 << 20), 512u);
    EXPECT_EQ(bitmap_size_for(512), 512u);
    EXPECT_EQ(bitmap_size_for(32 << 20), 8192u);
    EXPECT_EQ(bat_size_for(1), 512u);
    EXPECT_EQ(bat_size_for(128), 512u);
    EXPECT_EQ(bat_size_for(129), 1024u);
}

TEST(VhdText, Utf16RoundTrips) {
    std::string s = "disk-\xc3\xa9t\xc3\xa9 \xf0\x9f\x92\xbe.vhd";  // é and a 4-byte character
    for (bool be : {true, false}) {
        auto u = utf8_to_utf16(s, be);
        EXPECT_EQ(utf16_to_utf8(u, be), s);
    }
    auto le = utf8_to_utf16("AB", false);
    EXPECT_EQ(le, (std::vector<uint8_t>{'A', 0, 'B', 0}));
    auto be = utf8_to_utf16("AB", true);
    EXPECT_EQ(be, (std::vector<uint8_t>{0, 'A', 0, 'B'}));
    // A lone surrogate and odd lengths do not break decoding.
    EXPECT_EQ(utf16_to_utf8(std::vector<uint8_t>{0xD8, 0x00, 0, 'x', 7}, true), "\xef\xbf\xbdx");
}

TEST(VhdLocators, CandidatesInTrustOrder) {
    std::vector<ParentLocator> locs;
    locs.push_back({static_cast<uint32_t>(PlatformCode::kW2ku), 0, 0, 0, "C:\\vms\\base.vhd"});
    locs.push_back({static_cast<uint32_t>(PlatformCode::kMacX), 0, 0, 0, "file:///srv/img/base%20x.vhd"});
    locs.push_back({static_cast<uint32_t>(PlatformCode::kW2ru), 0, 0, 0, ".\\sub\\base.vhd"});
    auto c = parent_candidates(locs, "base.vhd", "/data/child");
    ASSERT_EQ(c.size(), 3u);
    EXPECT_EQ(c[0], "/data/child/sub/base.vhd");  // relative first
    EXPECT_EQ(c[1], "/data/child/base.vhd");      // a Windows path: its file name next to the child
    EXPECT_EQ(c[2], "/srv/img/base x.vhd");
    // The header name duplicates candidate 1 and is not repeated; a blktap-style relative URL works.
    locs = {{static_cast<uint32_t>(PlatformCode::kMacX), 0, 0, 0, "file://./p.vhd"}};
    c = parent_candidates(locs, "", "/d");
    ASSERT_EQ(c.size(), 1u);
    EXPECT_EQ(c[0], "/d/p.vhd");
    locs = {{static_cast<uint32_t>(PlatformCode::kW2ku), 0, 0, 0, "/abs/path/p.vhd"},
            {static_cast<uint32_t>(PlatformCode::kW2ru), 0, 0, 0, ".\\..\\up\\p.vhd"}};
    c = parent_candidates(locs, "", "/d/e");
    ASSERT_EQ(c.size(), 2u);
    EXPECT_EQ(c[0], "/d/up/p.vhd");
    EXPECT_EQ(c[1], "/abs/path/p.vhd");
    EXPECT_TRUE(parent_candidates({}, "", "/d").empty());
}

TEST(VhdLocators, DecodeByPlatform) {
    auto w = utf8_to_utf16(".\\a.vhd", false);
    w.push_back(0);
    w.push_back(0);
    EXPECT_EQ(decode_locator(static_cast<uint32_t>(PlatformCode::kW2ru), w), ".\\a.vhd");
    std::string url = "file:///x.vhd";
    EXPECT_EQ(decode_locator(static_cast<uint32_t>(PlatformCode::kMacX),
                             std::vector<uint8_t>(url.begin(), url.end())),
              url);
    EXPECT_FALSE(decode_locator(static_cast<uint32_t>(PlatformCode::kMac), w).has_value());
    EXPECT_FALSE(decode_locator(0x12345678, w).has_value());
    EXPECT_EQ(platform_code_name(static_cast<uint32_t>(PlatformCode::kW2ku)), "W2ku");
}

}  // namespace
}  // namespace vireo::disk::vhd
