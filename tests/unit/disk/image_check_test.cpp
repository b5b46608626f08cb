// Tests for check and repair: leaks from interrupted allocations, at the end and in the middle,
// are reported (exit 3) and reclaimed without touching data.
#include "disk/image_check.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "base/io.hpp"
#include "disk/image.hpp"
#include "disk/vhd_format.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using namespace testing;
using namespace vhd;

constexpr uint64_t kSize = 16 << 20;
constexpr uint64_t kBlockTotal = 512 + (2 << 20);

class ImageCheckTest : public ::testing::Test {
  protected:
    void SetUp() override {
        m_path = m_dir.path("d.vhd");
        CreateOptions o;
        o.format = ImageFormat::kVhd;
        o.size = kSize;
        ASSERT_TRUE(create_image(m_path, o).ok());
        auto d = open_image(m_path);
        ASSERT_TRUE(d.ok());
        m_model.assign(kSize, 0);
        for (uint64_t block : {1, 3, 4, 6}) {
            auto data = pattern(300000, static_cast<uint32_t>(block));
            ASSERT_TRUE(write_at(**d, block * (2 << 20) + 1000, data).ok());
            std::copy(data.begin(), data.end(),
                      m_model.begin() + static_cast<ptrdiff_t>(block * (2 << 20) + 1000));
        }
    }

    std::vector<uint8_t> contents() {
        auto d = open_image(m_path, {.read_only = true});
        EXPECT_TRUE(d.ok()) << d.error().message();
        if (!d.ok()) return {};
        auto b = read_at(**d, 0, kSize);
        EXPECT_TRUE(b.ok());
        return b.ok() ? *b : std::vector<uint8_t>{};
    }

    uint32_t bat(uint32_t i) {
        auto b = read_file(m_path);
        return load_be<uint32_t>(b.data() + 1536 + i * 4);
    }

    TempDir m_dir;
    std::string m_path;
    std::vector<uint8_t> m_model;
};

TEST_F(ImageCheckTest, CleanImage) {
    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    EXPECT_EQ(r->allocated_blocks, 4u);
    EXPECT_EQ(r->total_blocks, 8u);
    EXPECT_EQ(r->image_end_offset, std::filesystem::file_size(m_path));
    EXPECT_EQ(contents(), m_model);
}

TEST_F(ImageCheckTest, InterruptedAllocationAtTheEndIsALeak) {
    // What a writer killed between moving the footer and publishing the BAT entry leaves:
    // a new footer further on, a bitmap where the old footer was, no BAT entry.
    auto b = read_file(m_path);
    uint64_t old_end = b.size() - 512;
    std::vector<uint8_t> footer(b.end() - 512, b.end());
    b.resize(old_end + kBlockTotal + 512, 0);
    std::memset(b.data() + old_end, 0xFF, 512);
    std::copy(footer.begin(), footer.end(), b.end() - 512);
    write_file(m_path, b);

    EXPECT_EQ(contents(), m_model);  // readers see nothing of it
    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 3);
    EXPECT_EQ(r->leaked_bytes, kBlockTotal);
    r = check_image(m_path, {.repair = true});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    EXPECT_EQ(r->leaks_fixed, 1u);
    EXPECT_EQ(std::filesystem::file_size(m_path), old_end + 512);
    EXPECT_EQ(contents(), m_model);
}

TEST_F(ImageCheckTest, LeakInTheMiddleIsReclaimedByMovingTheLastBlock) {
    // Forget block 3: its space becomes a hole between blocks 1 and 4.
    uint32_t last_entry = bat(6);
    auto b = read_file(m_path);
    store_be<uint32_t>(b.data() + 1536 + 3 * 4, kUnallocated);
    write_file(m_path, b);
    std::fill_n(m_model.begin() + 3 * (2 << 20), 2 << 20, 0);
    auto size_before = std::filesystem::file_size(m_path);

    auto r = check_image(m_path);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 3);
    ASSERT_EQ(r->leaks.size(), 1u);
    EXPECT_GE(r->leaked_bytes, kBlockTotal);  // the block and the alignment padding next to it
    EXPECT_LT(r->leaked_bytes, kBlockTotal + 8192);
    r = check_image(m_path, {.repair = true});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0) << (r->leaks.empty() ? "" : r->leaks[0]);
    EXPECT_EQ(r->leaks_fixed, 1u);
    EXPECT_NE(bat(6), last_entry);  // the last block moved into the hole
    EXPECT_LE(std::filesystem::file_size(m_path), size_before - kBlockTotal);
    EXPECT_EQ(contents(), m_model);
    // And the image still takes writes.
    auto d = open_image(m_path);
    ASSERT_TRUE(d.ok());
    auto data = pattern(5000, 77);
    ASSERT_TRUE(write_at(**d, 7 * (2 << 20), data).ok());
    d->reset();
    std::copy(data.begin(), data.end(), m_model.begin() + 7 * (2 << 20));
    EXPECT_EQ(contents(), m_model);
    EXPECT_EQ(check_image(m_path)->exit_code(), 0);
}

TEST_F(ImageCheckTest, RawImagesHaveNothingToCheck) {
    std::string raw = m_dir.path("r.img");
    CreateOptions o;
    o.format = ImageFormat::kRaw;
    o.size = 1 << 20;
    ASSERT_TRUE(create_image(raw, o).ok());
    auto r = check_image(raw);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    EXPECT_EQ(r->format, ImageFormat::kRaw);
}

TEST_F(ImageCheckTest, MissingFileIsAnError) {
    auto r = check_image(m_dir.path("nope.vhd"));
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("nope.vhd"), std::string::npos);
}

TEST(ImageCheckFd, GarbageNeverCrashes) {
    TempDir dir;
    std::string p = dir.path("g");
    for (uint32_t seed = 0; seed < 50; ++seed) {
        auto junk = pattern(512 * (1 + seed % 9), seed);
        std::memcpy(junk.data() + junk.size() - 512, "conectix", 8);
        write_file(p, junk);
        auto fd = open_file(p, O_RDONLY);
        ASSERT_TRUE(fd.ok());
        auto r = check_vhd_fd(fd->get(), p);
        EXPECT_EQ(r.exit_code(), 2);
    }
}

}  // namespace
}  // namespace vireo::disk
