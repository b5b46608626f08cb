// Tests for convert, commit, resize, compare and map.
#include "disk/image_ops.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "disk/image_check.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using namespace testing;

CreateOptions opts(ImageFormat f, uint64_t size, VhdSubformat sub = VhdSubformat::kDynamic,
                   uint32_t block = vhd::kDefaultBlockSize) {
    CreateOptions o;
    o.format = f;
    o.size = size;
    o.subformat = sub;
    o.block_size = block;
    o.block_size_given = true;
    return o;
}

std::vector<uint8_t> contents(const std::string& path) {
    auto d = open_image(path, {.read_only = true});
    EXPECT_TRUE(d.ok()) << d.error().message();
    if (!d.ok()) return {};
    auto b = read_at(**d, 0, (*d)->size());
    EXPECT_TRUE(b.ok());
    return b.ok() ? *b : std::vector<uint8_t>{};
}

void fill(const std::string& path, std::vector<uint8_t>& model, uint64_t at, size_t n, uint32_t seed) {
    auto d = open_image(path);
    ASSERT_TRUE(d.ok()) << d.error().message();
    auto data = pattern(n, seed);
    ASSERT_TRUE(write_at(**d, at, data).ok());
    std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(at));
}

TEST(Convert, AnyToAnyKeepsContentsAndSparseness) {
    TempDir dir;
    const uint64_t size = 12 << 20;
    std::vector<uint8_t> model(size, 0);
    std::string raw = dir.path("src.raw");
    ASSERT_TRUE(create_image(raw, opts(ImageFormat::kRaw, size)).ok());
    fill(raw, model, 100, 70000, 1);
    fill(raw, model, 9 << 20, 4096, 2);

    std::string dyn = dir.path("d.vhd"), fixed = dir.path("f.vhd"), back = dir.path("back.raw");
    ConvertOptions c;
    c.format = ImageFormat::kVhd;
    ASSERT_TRUE(convert_image(raw, dyn, c).ok());
    EXPECT_EQ(contents(dyn), model);
    auto info = inspect_image(dyn);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->allocated_blocks, 2u);  // zero blocks stay unallocated
    c.subformat = VhdSubformat::kFixed;
    ASSERT_TRUE(convert_image(dyn, fixed, c).ok());
    EXPECT_EQ(contents(fixed), model);
    EXPECT_LT(std::filesystem::file_size(fixed) - size, 1024u);
    c.format = ImageFormat::kRaw;
    uint64_t progress_calls = 0;
    c.progress = [&progress_calls](uint64_t done, uint64_t total) {
        EXPECT_LE(done, total);
        ++progress_calls;
    };
    ASSERT_TRUE(convert_image(fixed, back, c).ok());
    EXPECT_GT(progress_calls, 1u);
    EXPECT_EQ(contents(back), model);
    struct stat st {};
    ::stat(back.c_str(), &st);
    EXPECT_LT(static_cast<uint64_t>(st.st_blocks) * 512, 1u << 20);  // sparse
    for (const auto& e : std::filesystem::directory_iterator(dir.dir()))
        EXPECT_EQ(e.path().string().find("vireo-tmp"), std::string::npos) << e.path();
}

TEST(Convert, OddRawSizeRoundsUpToWholeSectors) {
    TempDir dir;
    std::string raw = dir.path("odd.raw");
    std::vector<uint8_t> model(1000 * 1000, 0);
    ASSERT_TRUE(create_image(raw, opts(ImageFormat::kRaw, model.size())).ok());
    fill(raw, model, model.size() - 10, 10, 3);
    ConvertOptions c;
    c.format = ImageFormat::kVhd;
    ASSERT_TRUE(convert_image(raw, dir.path("o.vhd"), c).ok());
    auto got = contents(dir.path("o.vhd"));
    ASSERT_EQ(got.size(), 1000448u);
    EXPECT_TRUE(std::equal(model.begin(), model.end(), got.begin()));
    c.align_1m = true;
    c.subformat = VhdSubformat::kFixed;
    ASSERT_TRUE(convert_image(raw, dir.path("azure.vhd"), c).ok());
    EXPECT_EQ(std::filesystem::file_size(dir.path("azure.vhd")), (1u << 20) + 512);
}

TEST(Convert, FailureLeavesNothingBehind) {
    TempDir dir;
    std::string dst = dir.path("out.vhd");
    write_file(dst, {1, 2, 3});
    ConvertOptions c;
    c.format = ImageFormat::kVhd;
    auto s = convert_image(dir.path("missing.raw"), dst, c);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("missing.raw"), std::string::npos);
    EXPECT_EQ(read_file(dst), (std::vector<uint8_t>{1, 2, 3}));  // untouched
    size_t files = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir.dir()))
        ++files;
    EXPECT_EQ(files, 1u);
}

TEST(Commit, ChildDataLandsInParent) {
    TempDir dir;
    const uint64_t size = 6 << 20;
    std::string base = dir.path("base.vhd"), child = dir.path("child.vhd");
    std::vector<uint8_t> model(size, 0);
    ASSERT_TRUE(create_image(base, opts(ImageFormat::kVhd, size)).ok());
    fill(base, model, 0, 3 << 20, 1);
    CreateOptions c;
    c.parent = base;
    ASSERT_TRUE(create_image(child, c).ok());
    fill(child, model, 1 << 20, 5000, 2);       // over parent data
    fill(child, model, (4 << 20) + 3, 100, 3);  // unaligned, where the parent has nothing
    auto parent = commit_image(child);
    ASSERT_TRUE(parent.ok()) << parent.error().message();
    EXPECT_EQ(*parent, base);
    EXPECT_EQ(contents(base), model);
    EXPECT_EQ(contents(child), model);  // the child still reads the same
    EXPECT_EQ(check_image(base)->exit_code(), 0);
    auto bad = commit_image(base);
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.error().message().find("not a differencing"), std::string::npos);
}

TEST(Resize, DynamicGrowsBatMovingBlocks) {
    TempDir dir;
    std::string path = dir.path("d.vhd");
    // 64 KiB blocks: 128 entries fill one BAT sector, so growing past them moves blocks.
    const uint64_t size = 8 << 20;
    std::vector<uint8_t> model(size, 0);
    ASSERT_TRUE(create_image(path, opts(ImageFormat::kVhd, size, VhdSubformat::kDynamic, 64 << 10)).ok());
    fill(path, model, 0, 200000, 1);
    fill(path, model, 5 << 20, 70000, 2);
    auto r = resize_image(path, 40 << 20);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->old_size, size);
    EXPECT_EQ(r->new_size, 40u << 20);
    EXPECT_GT(r->blocks_moved, 0u);
    model.resize(40 << 20, 0);
    EXPECT_EQ(contents(path), model);
    auto chk = check_image(path);
    ASSERT_TRUE(chk.ok());
    EXPECT_EQ(chk->exit_code(), 0) << (chk->corruptions.empty() ? "" : chk->corruptions[0]);
    fill(path, model, 39 << 20, 4096, 3);  // the new area takes writes
    EXPECT_EQ(contents(path), model);
    auto info = inspect_image(path);
    ASSERT_TRUE(info.ok());
    EXPECT_EQ(info->original_size, 40u << 20);
    EXPECT_EQ(info->max_table_entries, 640u);
}

TEST(Resize, DifferencingMovesLocatorsAndKeepsParent) {
    TempDir dir;
    std::string base = dir.path("base.vhd"), child = dir.path("child.vhd");
    std::vector<uint8_t> model(2 << 20, 0);
    ASSERT_TRUE(create_image(base, opts(ImageFormat::kVhd, 2 << 20, VhdSubformat::kDynamic, 64 << 10)).ok());
    fill(base, model, 0, 100000, 1);
    CreateOptions c;
    c.parent = base;
    ASSERT_TRUE(create_image(child, c).ok());
    fill(child, model, 50000, 3000, 2);
    ASSERT_TRUE(resize_image(child, 16 << 20).ok());
    model.resize(16 << 20, 0);
    EXPECT_EQ(contents(child), model);
    EXPECT_EQ(check_image(child)->exit_code(), 0);
}

TEST(Resize, FixedAndRawGrowAndNeverShrink) {
    TempDir dir;
    std::string fixed = dir.path("f.vhd"), raw = dir.path("r.raw");
    std::vector<uint8_t> model(1 << 20, 0);
    ASSERT_TRUE(create_image(fixed, opts(ImageFormat::kVhd, 1 << 20, VhdSubformat::kFixed)).ok());
    fill(fixed, model, 1000, 5000, 1);
    ASSERT_TRUE(resize_image(fixed, 3 << 20).ok());
    model.resize(3 << 20, 0);
    EXPECT_EQ(contents(fixed), model);
    EXPECT_EQ(std::filesystem::file_size(fixed), (3u << 20) + 512);
    auto shrink = resize_image(fixed, 1 << 20);
    ASSERT_FALSE(shrink.ok());
    EXPECT_NE(shrink.error().message().find("shrinking"), std::string::npos);
    EXPECT_FALSE(resize_image(fixed, (4 << 20) + 100).ok());  // not whole sectors
    ASSERT_TRUE(create_image(raw, opts(ImageFormat::kRaw, 1000)).ok());
    ASSERT_TRUE(resize_image(raw, 5000).ok());
    EXPECT_EQ(std::filesystem::file_size(raw), 5000u);
}

TEST(Compare, ByContentAcrossFormats) {
    TempDir dir;
    std::string a = dir.path("a.raw"), b = dir.path("b.vhd"), c = dir.path("c.vhd");
    std::vector<uint8_t> model(4 << 20, 0);
    ASSERT_TRUE(create_image(a, opts(ImageFormat::kRaw, 4 << 20)).ok());
    fill(a, model, 12345, 54321, 1);
    ConvertOptions co;
    co.format = ImageFormat::kVhd;
    ASSERT_TRUE(convert_image(a, b, co).ok());
    auto r = compare_images(a, b, ImageFormat::kAuto, ImageFormat::kAuto);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->identical);
    // One byte changed.
    ASSERT_TRUE(convert_image(a, c, co).ok());
    {
        auto d = open_image(c);
        ASSERT_TRUE(d.ok());
        ASSERT_TRUE(write_at(**d, 40000, {static_cast<uint8_t>(model[40000] ^ 1)}).ok());
    }
    r = compare_images(b, c, ImageFormat::kAuto, ImageFormat::kAuto);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->identical);
    EXPECT_EQ(r->first_difference, 40000u);
    // Different sizes: identical when the extra part is zeros, as qemu-img compare.
    ASSERT_TRUE(resize_image(c, 6 << 20).ok());
    ASSERT_TRUE(resize_image(b, 6 << 20).ok());
    auto big = dir.path("big.raw");
    ASSERT_TRUE(create_image(big, opts(ImageFormat::kRaw, 5 << 20)).ok());
    std::vector<uint8_t> m2(5 << 20, 0);
    std::copy(model.begin(), model.end(), m2.begin());
    {
        auto d = open_image(big);
        ASSERT_TRUE(write_at(**d, 0, model).ok());
    }
    r = compare_images(a, big, ImageFormat::kAuto, ImageFormat::kAuto);
    ASSERT_TRUE(r.ok());
    EXPECT_TRUE(r->identical);
    EXPECT_TRUE(r->size_mismatch);
    fill(big, m2, (5 << 20) - 1, 1, 9);
    r = compare_images(a, big, ImageFormat::kAuto, ImageFormat::kAuto);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->identical);
    EXPECT_GE(r->first_difference, 4u << 20);
    EXPECT_FALSE(compare_images(a, dir.path("none"), ImageFormat::kAuto, ImageFormat::kAuto).ok());
}

TEST(Map, ListsAllocatedRanges) {
    TempDir dir;
    std::string p = dir.path("m.vhd");
    std::vector<uint8_t> model(10 << 20, 0);
    ASSERT_TRUE(create_image(p, opts(ImageFormat::kVhd, 10 << 20)).ok());
    fill(p, model, (4 << 20) + 5, 10, 1);
    auto m = map_image(p);
    ASSERT_TRUE(m.ok());
    uint64_t covered = 0;
    int allocated = 0;
    for (const auto& e : *m) {
        EXPECT_EQ(e.offset, covered);
        covered += e.length;
        if (e.allocated) {
            ++allocated;
            EXPECT_EQ(e.offset, 4u << 20);
            EXPECT_EQ(e.length, 2u << 20);
        }
    }
    EXPECT_EQ(covered, 10u << 20);
    EXPECT_EQ(allocated, 1);
}

}  // namespace
}  // namespace vireo::disk
