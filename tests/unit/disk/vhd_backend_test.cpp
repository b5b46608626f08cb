// Tests for the VHD backends (fixed, dynamic, differencing) against an in-memory model of the
// disk, through the synchronous calls, the asynchronous path (io_uring and its fallback) and
// several threads at once.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <random>
#include <thread>

#include "disk/image.hpp"
#include "disk/image_check.hpp"
#include "disk/io_context.hpp"
#include "disk/iov.hpp"
#include "disk/vhd_dynamic_backend.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using namespace testing;

enum class Kind { kFixed, kDynamic, kDifferencing };

struct Param {
    Kind kind;
    uint32_t block_size;
};

CreateOptions vhd_options(uint64_t size, ImageFormat format = ImageFormat::kVhd) {
    CreateOptions o;
    o.format = format;
    o.size = size;
    return o;
}

CreateOptions child_of(const std::string& parent) {
    CreateOptions o;
    o.parent = parent;
    return o;
}

std::string name_of(const ::testing::TestParamInfo<Param>& p) {
    const char* k = p.param.kind == Kind::kFixed     ? "Fixed"
                    : p.param.kind == Kind::kDynamic ? "Dynamic"
                                                     : "Diff";
    return std::string(k) + std::to_string(p.param.block_size >> 10) + "K";
}

// A disk of an odd size (not a multiple of the block size) with its expected contents.
class VhdBackendTest : public ::testing::TestWithParam<Param> {
  protected:
    static constexpr uint64_t kSize = (5ULL << 20) + 512 * 7;

    void SetUp() override {
        m_path = m_dir.path("disk.vhd");
        m_model.assign(kSize, 0);
        CreateOptions o;
        o.format = ImageFormat::kVhd;
        o.size = kSize;
        o.block_size = GetParam().block_size;
        o.block_size_given = true;
        if (GetParam().kind == Kind::kFixed) o.subformat = VhdSubformat::kFixed;
        if (GetParam().kind == Kind::kDifferencing) {
            // The parent holds data the child must show through.
            std::string parent = m_dir.path("parent.vhd");
            CreateOptions po = o;
            ASSERT_TRUE(create_image(parent, po).ok());
            auto p = open_image(parent);
            ASSERT_TRUE(p.ok()) << p.error().message();
            auto data = pattern(kSize / 3, 99);
            ASSERT_TRUE(write_at(**p, 4096 + 100, data).ok());
            std::copy(data.begin(), data.end(), m_model.begin() + 4096 + 100);
            o.parent = parent;
            o.size = 0;
        }
        auto s = create_image(m_path, o);
        ASSERT_TRUE(s.ok()) << s.error().message();
        reopen();
    }

    void reopen() {
        m_disk.reset();
        auto d = open_image(m_path);
        ASSERT_TRUE(d.ok()) << d.error().message();
        m_disk = std::move(*d);
        ASSERT_EQ(m_disk->size(), kSize);
    }

    void verify_all(const char* when) {
        auto back = read_at(*m_disk, 0, kSize);
        ASSERT_TRUE(back.ok()) << back.error().message();
        for (size_t i = 0; i < kSize; ++i) {
            if ((*back)[i] != m_model[i]) {
                FAIL() << when << ": first difference at byte " << i;
            }
        }
    }

    bool discard_zeroes() const { return GetParam().kind != Kind::kDifferencing; }

    TempDir m_dir;
    std::string m_path;
    std::vector<uint8_t> m_model;
    std::unique_ptr<BlockBackend> m_disk;
};

TEST_P(VhdBackendTest, FreshDiskReadsAsModel) {
    verify_all("fresh");
}

TEST_P(VhdBackendTest, RandomSyncOperationsMatchModel) {
    std::mt19937_64 rng(GetParam().block_size + static_cast<int>(GetParam().kind));
    for (int op = 0; op < 250; ++op) {
        uint64_t off = rng() % kSize;
        uint64_t max_len = std::min<uint64_t>(kSize - off, 3 << 20);
        uint64_t len = 1 + rng() % max_len;
        if (rng() % 3 != 0) {  // mostly sector-aligned, like guests
            off &= ~uint64_t{511};
            len = std::max<uint64_t>(512, len & ~uint64_t{511});
            if (off + len > kSize) len = kSize - off;
        }
        int what = static_cast<int>(rng() % 10);
        if (what < 6) {
            auto data = pattern(len, static_cast<uint32_t>(op));
            auto s = write_at(*m_disk, off, data);
            ASSERT_TRUE(s.ok()) << s.error().message();
            std::copy(data.begin(), data.end(), m_model.begin() + static_cast<ptrdiff_t>(off));
        } else if (what < 8) {
            auto back = read_at(*m_disk, off, len);
            ASSERT_TRUE(back.ok()) << back.error().message();
            ASSERT_TRUE(std::equal(back->begin(), back->end(), m_model.begin() + static_cast<ptrdiff_t>(off)))
                << "op " << op << " read at " << off << " len " << len;
        } else if (what == 8) {
            ASSERT_TRUE(m_disk->write_zeroes(off, len).ok());
            std::fill_n(m_model.begin() + static_cast<ptrdiff_t>(off), len, 0);
        } else {
            ASSERT_TRUE(m_disk->discard(off, len).ok());
            if (discard_zeroes()) std::fill_n(m_model.begin() + static_cast<ptrdiff_t>(off), len, 0);
        }
        if (op % 50 == 49) {
            ASSERT_TRUE(m_disk->flush().ok());
        }
        if (getenv("VERIFY_EACH")) {
            verify_all(("op " + std::to_string(op) + " what " + std::to_string(what) + " off " +
                        std::to_string(off) + " len " + std::to_string(len))
                           .c_str());
            if (HasFailure()) return;
        }
    }
    verify_all("after operations");
    ASSERT_TRUE(m_disk->flush().ok());
    reopen();
    verify_all("after reopening");
}

TEST_P(VhdBackendTest, AsyncRequestsMatchModel) {
    for (bool uring : {true, false}) {
        auto ctx = uring ? IoContext::create(64, false) : IoContext::create_for_testing_without_io_uring();
        if (!ctx.ok()) continue;  // no io_uring here: the fallback round still runs
        std::mt19937_64 rng(uring ? 1 : 2);
        for (int round = 0; round < 12; ++round) {
            // A batch of non-overlapping requests in flight together, in random order.
            std::vector<uint64_t> starts;
            for (uint64_t at = rng() % 8192; at + 65536 < kSize; at += 65536 + rng() % 300000)
                starts.push_back(at);
            std::shuffle(starts.begin(), starts.end(), rng);
            std::vector<std::vector<uint8_t>> bufs(starts.size());
            std::vector<iovec> iovs(starts.size() * 2);
            std::vector<IoRequest> reqs(starts.size());
            int done = 0;
            bool writing = round % 3 != 2;
            for (size_t i = 0; i < starts.size(); ++i) {
                uint64_t len = 512 + (rng() % 64) * 1024 + (rng() % 2 ? 0 : rng() % 512);
                bufs[i] = writing ? pattern(len, static_cast<uint32_t>(round * 1000 + i))
                                  : std::vector<uint8_t>(len);
                // Two iovecs per request, split at an odd place.
                size_t cut = len / 3;
                iovs[i * 2] = {bufs[i].data(), cut};
                iovs[i * 2 + 1] = {bufs[i].data() + cut, len - cut};
                reqs[i].op = writing ? IoOp::kWrite : IoOp::kRead;
                reqs[i].offset = starts[i];
                reqs[i].length = len;
                reqs[i].iov = {&iovs[i * 2], 2};
                reqs[i].complete = [&done](IoRequest&, Status s) {
                    EXPECT_TRUE(s.ok()) << s.error().message();
                    ++done;
                };
                m_disk->submit(**ctx, reqs[i]);
                if (writing) {
                    std::copy(bufs[i].begin(), bufs[i].end(),
                              m_model.begin() + static_cast<ptrdiff_t>(starts[i]));
                }
            }
            EXPECT_EQ(done, 0);  // nothing completes inside submit()
            ASSERT_TRUE((*ctx)->drain().ok());
            ASSERT_EQ(done, static_cast<int>(starts.size()));
            if (!writing) {
                for (size_t i = 0; i < starts.size(); ++i) {
                    ASSERT_TRUE(std::equal(bufs[i].begin(), bufs[i].end(),
                                           m_model.begin() + static_cast<ptrdiff_t>(starts[i])))
                        << "async read at " << starts[i];
                }
            }
            if (round % 4 == 3) {
                int flushed = 0;
                IoRequest f{IoOp::kFlush, 0, 0, {}, [&flushed](IoRequest&, Status s) {
                                EXPECT_TRUE(s.ok());
                                ++flushed;
                            }};
                m_disk->submit(**ctx, f);
                ASSERT_TRUE((*ctx)->drain().ok());
                EXPECT_EQ(flushed, 1);
            }
        }
        // Errors come back through the callback too.
        std::vector<uint8_t> buf(4096);
        iovec v{buf.data(), buf.size()};
        Status got;
        IoRequest bad{
            IoOp::kRead, kSize - 100, 4096, {&v, 1}, [&got](IoRequest&, Status s) { got = std::move(s); }};
        m_disk->submit(**ctx, bad);
        ASSERT_TRUE((*ctx)->drain().ok());
        EXPECT_FALSE(got.ok());
    }
    verify_all("after async batches");
    reopen();
    verify_all("after reopening");
}

TEST_P(VhdBackendTest, ConcurrentThreadsAllocatingBlocks) {
    constexpr int kThreads = 4;
    std::vector<std::thread> threads;
    uint64_t stripe = kSize / kThreads / 512 * 512;
    for (int t = 0; t < kThreads; ++t) {
        auto data = pattern(stripe, static_cast<uint32_t>(t + 7));
        std::copy(data.begin(), data.end(), m_model.begin() + static_cast<ptrdiff_t>(t * stripe));
        threads.emplace_back([this, t, stripe, data = std::move(data)] {
            // Interleaved small writes, so the threads race for the same blocks' allocation.
            for (uint64_t at = 0; at < stripe; at += 8192) {
                std::vector<uint8_t> piece(
                    data.begin() + static_cast<ptrdiff_t>(at),
                    data.begin() + static_cast<ptrdiff_t>(std::min(stripe, at + 8192)));
                EXPECT_TRUE(write_at(*m_disk, t * stripe + at, piece).ok());
                if (at % (1 << 20) == 0) {
                    EXPECT_TRUE(m_disk->flush().ok());
                }
            }
        });
    }
    for (auto& th : threads)
        th.join();
    verify_all("after threads");
    reopen();
    verify_all("after reopening");
}

TEST_P(VhdBackendTest, BlockStatusDescribesWhatIsStored) {
    if (GetParam().kind == Kind::kFixed) {
        auto e = m_disk->block_status(0, kSize);
        ASSERT_TRUE(e.ok());
        EXPECT_TRUE(e->allocated);
        EXPECT_EQ(e->length, kSize);
        return;
    }
    uint32_t bs = GetParam().block_size;
    auto data = pattern(4096, 5);
    ASSERT_TRUE(write_at(*m_disk, bs + 1024, data).ok());
    if (GetParam().kind == Kind::kDynamic) {
        auto e = m_disk->block_status(bs, bs);
        ASSERT_TRUE(e.ok());
        EXPECT_TRUE(e->allocated);
        EXPECT_EQ(e->depth, 0);
        EXPECT_TRUE(e->file_offset.has_value());
        EXPECT_EQ(e->length, bs);  // dynamic blocks are whole
        auto z = m_disk->block_status(2ULL * bs, kSize - 2ULL * bs);
        ASSERT_TRUE(z.ok());
        EXPECT_FALSE(z->allocated);
        EXPECT_TRUE(z->zero);
        EXPECT_EQ(z->offset + z->length, kSize);  // unallocated blocks merge
        return;
    }
    // Differencing: written sectors are in the child (depth 0), the parent's data at depth 1,
    // and what neither holds is unallocated.
    auto w = m_disk->block_status(bs + 1024, bs);
    ASSERT_TRUE(w.ok());
    EXPECT_EQ(w->depth, 0);
    EXPECT_TRUE(w->file_offset.has_value());
    EXPECT_EQ(w->length, 4096u);
    auto p = m_disk->block_status(8192, 512);
    ASSERT_TRUE(p.ok());
    EXPECT_TRUE(p->allocated);
    EXPECT_EQ(p->depth, 1);
    auto n = m_disk->block_status(kSize - 512, 512);
    ASSERT_TRUE(n.ok());
    EXPECT_FALSE(n->allocated);
    EXPECT_EQ(n->depth, -1);
}

INSTANTIATE_TEST_SUITE_P(Kinds, VhdBackendTest,
                         ::testing::Values(Param{Kind::kFixed, 2 << 20}, Param{Kind::kDynamic, 2 << 20},
                                           Param{Kind::kDynamic, 64 << 10}, Param{Kind::kDynamic, 1 << 20},
                                           Param{Kind::kDifferencing, 2 << 20},
                                           Param{Kind::kDifferencing, 256 << 10}),
                         name_of);

TEST(VhdChain, ThreeLevelsReadThrough) {
    TempDir dir;
    const uint64_t size = 8 << 20;
    std::vector<uint8_t> model(size, 0);
    std::vector<std::string> paths = {dir.path("base.vhd"), dir.path("mid.vhd"), dir.path("top.vhd"),
                                      dir.path("leaf.vhd")};
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = size;
    ASSERT_TRUE(create_image(paths[0], o).ok());
    for (size_t level = 0; level < paths.size(); ++level) {
        if (level > 0) {
            CreateOptions c;
            c.parent = paths[level - 1];
            auto s = create_image(paths[level], c);
            ASSERT_TRUE(s.ok()) << s.error().message();
        }
        auto d = open_image(paths[level]);
        ASSERT_TRUE(d.ok()) << d.error().message();
        auto data = pattern(300000, static_cast<uint32_t>(level));
        uint64_t at = level * 1500000 + 777;
        ASSERT_TRUE(write_at(**d, at, data).ok());
        std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(at));
    }
    auto leaf = open_image(paths.back(), {.read_only = true});
    ASSERT_TRUE(leaf.ok()) << leaf.error().message();
    auto back = read_at(**leaf, 0, size);
    ASSERT_TRUE(back.ok());
    EXPECT_TRUE(*back == model);
    auto info = inspect_image(paths.back());
    ASSERT_TRUE(info.ok());
    ASSERT_EQ(info->backing_chain.size(), 3u);
    EXPECT_EQ(info->backing_chain[0], paths[2]);
    EXPECT_EQ(info->backing_chain[2], paths[0]);
    EXPECT_TRUE(info->chain_error.empty());
    // The depth of each range names the level that holds it.
    auto e = (*leaf)->block_status(777 + 10, 100);
    ASSERT_TRUE(e.ok());
    EXPECT_EQ(e->depth, 3);
}

TEST(VhdChain, MovedChainFindsParentThroughRelativeLocator) {
    TempDir a, b;
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = 1 << 20;
    ASSERT_TRUE(create_image(a.path("base.vhd"), o).ok());
    ASSERT_TRUE(create_image(a.path("child.vhd"), child_of(a.path("base.vhd"))).ok());
    // Move both: the absolute locator is stale, the relative one still works.
    std::filesystem::rename(a.path("base.vhd"), b.path("base.vhd"));
    std::filesystem::rename(a.path("child.vhd"), b.path("child.vhd"));
    auto d = open_image(b.path("child.vhd"));
    ASSERT_TRUE(d.ok()) << d.error().message();
}

TEST(VhdChain, MissingOrReplacedParentIsAClearError) {
    TempDir dir;
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = 1 << 20;
    std::string base = dir.path("base.vhd"), child = dir.path("child.vhd");
    ASSERT_TRUE(create_image(base, o).ok());
    ASSERT_TRUE(create_image(child, child_of(base)).ok());
    std::filesystem::rename(base, dir.path("elsewhere.vhd"));
    auto d = open_image(child);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message().find("not found"), std::string::npos) << d.error().message();
    EXPECT_NE(d.error().message().find("base.vhd"), std::string::npos);
    // A different disk under the parent's name: refused by UUID.
    ASSERT_TRUE(create_image(base, o).ok());
    d = open_image(child);
    ASSERT_FALSE(d.ok());
    EXPECT_NE(d.error().message().find("different or replaced"), std::string::npos) << d.error().message();
    // info still describes the child and says why the chain stops.
    auto info = inspect_image(child);
    ASSERT_TRUE(info.ok());
    EXPECT_FALSE(info->chain_error.empty());
}

TEST(VhdChain, ParentMustBeVhd) {
    TempDir dir;
    ASSERT_TRUE(create_image(dir.path("base.raw"), vhd_options(1 << 20, ImageFormat::kRaw)).ok());
    auto s = create_image(dir.path("child.vhd"), child_of(dir.path("base.raw")));
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("raw"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir.path("child.vhd")));
}

TEST(VhdBackend, ReadOnlyRefusesWritesAndFlushIsDurable) {
    TempDir dir;
    std::string path = dir.path("d.vhd");
    ASSERT_TRUE(create_image(path, vhd_options(4 << 20)).ok());
    auto ro = open_image(path, {.read_only = true});
    ASSERT_TRUE(ro.ok());
    auto s = write_at(**ro, 0, pattern(512, 1));
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().os_error(), EROFS);
    ro->reset();

    // Metadata reaches the file at flush: another reader sees the data afterwards.
    auto rw = open_image(path);
    ASSERT_TRUE(rw.ok());
    auto data = pattern(10000, 3);
    ASSERT_TRUE(write_at(**rw, 3 << 20, data).ok());
    ASSERT_TRUE((*rw)->flush().ok());
    auto other = open_image(path, {.read_only = true});
    ASSERT_TRUE(other.ok());
    auto back = read_at(**other, 3 << 20, data.size());
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, data);
}

TEST(VhdBackend, DirectIo) {
    TempDir dir;
    std::string path = dir.path("d.vhd");
    ASSERT_TRUE(create_image(path, vhd_options(4 << 20)).ok());
    auto d = open_image(path, {.direct = true});
    if (!d.ok()) GTEST_SKIP() << "O_DIRECT not supported here: " << d.error().message();
    void* p = std::aligned_alloc(4096, 65536);
    std::memset(p, 0x5A, 65536);
    iovec v{p, 65536};
    auto s = (*d)->write(1 << 20, {&v, 1});
    if (!s.ok() && s.error().os_error() == EINVAL) {
        std::free(p);
        GTEST_SKIP() << "O_DIRECT with 512-byte alignment is not supported by this file system";
    }
    ASSERT_TRUE(s.ok()) << s.error().message();
    std::memset(p, 0, 65536);
    ASSERT_TRUE((*d)->read(1 << 20, {&v, 1}).ok());
    EXPECT_EQ(static_cast<uint8_t*>(p)[65535], 0x5A);
    std::free(p);
}

// With O_DIRECT the allocation metadata (footer move, sector bitmaps) goes through the direct
// descriptor: many allocations in a row, in a dynamic and a differencing disk, must leave images
// that reopen with the same data and check clean.
TEST(VhdBackend, DirectIoAllocationsKeepTheImageConsistent) {
    TempDir dir;
    std::string base = dir.path("base.vhd");
    std::string child = dir.path("child.vhd");
    CreateOptions bo = vhd_options(24 << 20);
    bo.block_size = 1 << 20;
    ASSERT_TRUE(create_image(base, bo).ok());
    ASSERT_TRUE(create_image(child, child_of(base)).ok());
    constexpr size_t kLen = 8192;
    void* p = std::aligned_alloc(4096, kLen);
    // Offsets in 1 MiB blocks, out of order, some sharing a block, one straddling two blocks.
    const uint64_t offsets[] = {5 << 20, 0, (3 << 20) + 4096, (1 << 20) - 4096, 17 << 20, (5 << 20) + 65536};
    for (const std::string& path : {base, child}) {
        auto d = open_image(path, {.direct = true});
        if (!d.ok()) {
            std::free(p);
            GTEST_SKIP() << "O_DIRECT not supported here: " << d.error().message();
        }
        for (size_t i = 0; i < std::size(offsets); ++i) {
            std::memset(p, static_cast<int>(0x10 + i + (path == child ? 0x40 : 0)), kLen);
            iovec v{p, kLen};
            auto s = (*d)->write(offsets[i], {&v, 1});
            if (!s.ok() && s.error().os_error() == EINVAL) {
                std::free(p);
                GTEST_SKIP() << "O_DIRECT with 512-byte alignment is not supported by this file system";
            }
            ASSERT_TRUE(s.ok()) << s.error().message();
        }
        if (path == base) {  // data only the parent holds
            std::memset(p, 0x33, kLen);
            iovec v{p, kLen};
            ASSERT_TRUE((*d)->write(9 << 20, {&v, 1}).ok());
        }
        ASSERT_TRUE((*d)->flush().ok());
    }
    std::free(p);
    for (const std::string& path : {base, child}) {
        auto report = check_image(path);
        ASSERT_TRUE(report.ok()) << report.error().message();
        EXPECT_EQ(report->exit_code(), 0) << path;
    }
    auto d = open_image(child);
    ASSERT_TRUE(d.ok()) << d.error().message();
    std::vector<uint8_t> buf(kLen);
    for (size_t i = 0; i < std::size(offsets); ++i) {
        iovec v{buf.data(), kLen};
        ASSERT_TRUE((*d)->read(offsets[i], {&v, 1}).ok());
        EXPECT_EQ(buf[0], 0x50 + i) << "offset " << offsets[i];
        EXPECT_EQ(buf[kLen - 1], 0x50 + i) << "offset " << offsets[i];
    }
    // A sector the child never wrote shows the parent's data.
    iovec v{buf.data(), 512};
    ASSERT_TRUE((*d)->read((9 << 20) + 4096, {&v, 1}).ok());
    EXPECT_EQ(buf[0], 0x33);
    EXPECT_EQ(buf[511], 0x33);
}

// Allocation reserves room for several blocks behind one footer move; while the disk is open the
// unused room is a leak (the image stays valid), and closing gives it back.
TEST(VhdBackend, ReservedRoomIsALeakWhileOpenAndTrimmedOnClose) {
    TempDir dir;
    std::string path = dir.path("d.vhd");
    ASSERT_TRUE(create_image(path, vhd_options(64 << 20)).ok());
    std::vector<uint8_t> data(4096);
    {
        auto d = open_image(path);
        ASSERT_TRUE(d.ok()) << d.error().message();
        for (int i = 0; i < 3; ++i) {
            std::fill(data.begin(), data.end(), static_cast<uint8_t>(0xA0 + i));
            iovec v{data.data(), data.size()};
            ASSERT_TRUE((*d)->write(uint64_t(i) * (10 << 20), {&v, 1}).ok());
        }
        ASSERT_TRUE((*d)->flush().ok());
        auto open_report = check_image(path);
        ASSERT_TRUE(open_report.ok()) << open_report.error().message();
        EXPECT_TRUE(open_report->corruptions.empty());
        EXPECT_EQ(open_report->exit_code(), 3);  // the reserved room
        EXPECT_EQ(open_report->allocated_blocks, 3u);
        auto reader = open_image(path, {.read_only = true});
        ASSERT_TRUE(reader.ok()) << reader.error().message();
        iovec v{data.data(), data.size()};
        ASSERT_TRUE((*reader)->read(20 << 20, {&v, 1}).ok());
        EXPECT_EQ(data[4095], 0xA2);
    }
    auto report = check_image(path);
    ASSERT_TRUE(report.ok()) << report.error().message();
    EXPECT_EQ(report->exit_code(), 0);
    EXPECT_EQ(report->allocated_blocks, 3u);
    EXPECT_EQ(std::filesystem::file_size(path), report->image_end_offset);
    auto d = open_image(path, {.read_only = true});
    ASSERT_TRUE(d.ok()) << d.error().message();
    for (int i = 0; i < 3; ++i) {
        iovec v{data.data(), data.size()};
        ASSERT_TRUE((*d)->read(uint64_t(i) * (10 << 20), {&v, 1}).ok());
        EXPECT_EQ(data[0], 0xA0 + i);
    }
}

}  // namespace
}  // namespace vireo::disk
