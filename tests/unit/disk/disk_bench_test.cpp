// Tests for the benchmark engine behind `vireo img bench`: the requests it sends (offsets, step,
// wrap-around, pattern, depth), its flushes, and failures.
#include "disk/disk_bench.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "disk/io_context.hpp"
#include "disk/raw_backend.hpp"

namespace vireo::disk {
namespace {

// Wraps a backend and records what the benchmark asks of it.
class RecordingBackend final : public BlockBackend {
  public:
    explicit RecordingBackend(BlockBackend& inner) : m_inner(inner) {}
    uint64_t size() const override { return m_inner.size(); }
    bool read_only() const override { return m_inner.read_only(); }
    std::string describe() const override { return "recording " + m_inner.describe(); }
    Status read(uint64_t o, std::span<const iovec> v) override { return m_inner.read(o, v); }
    Status write(uint64_t o, std::span<const iovec> v) override { return m_inner.write(o, v); }
    Status flush() override { return m_inner.flush(); }
    Status discard(uint64_t o, uint64_t l) override { return m_inner.discard(o, l); }
    Status write_zeroes(uint64_t o, uint64_t l) override { return m_inner.write_zeroes(o, l); }
    void submit(IoContext& ctx, IoRequest& req) override {
        ops.push_back({req.op, req.offset, req.length});
        ++in_flight;
        max_in_flight = std::max(max_in_flight, in_flight);
        // Forward a copy so that the caller's request stays as it was.
        if (m_free.empty()) {
            m_pool.push_back(std::make_unique<IoRequest>());
            m_free.push_back(m_pool.back().get());
        }
        IoRequest* inner = m_free.back();
        m_free.pop_back();
        inner->op = req.op;
        inner->offset = req.offset;
        inner->length = req.length;
        inner->iov = req.iov;
        IoRequest* outer = &req;
        inner->complete = [this, outer, inner](IoRequest&, Status s) {
            --in_flight;
            m_free.push_back(inner);
            outer->complete(*outer, std::move(s));
        };
        m_inner.submit(ctx, *inner);
    }
    struct Op {
        IoOp op;
        uint64_t offset;
        uint64_t length;
    };
    std::vector<Op> ops;
    size_t in_flight = 0;
    size_t max_in_flight = 0;

  private:
    BlockBackend& m_inner;
    std::vector<std::unique_ptr<IoRequest>> m_pool;
    std::vector<IoRequest*> m_free;
};

class DiskBenchTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vireo-bench-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        m_path = tmpl;
        ASSERT_TRUE(RawBackend::create(m_path, 1 << 20).ok());
        m_disk = std::move(*RawBackend::open(m_path));
        m_ctx = std::move(*IoContext::create());
    }
    void TearDown() override { ::unlink(m_path.c_str()); }
    std::string m_path;
    std::unique_ptr<RawBackend> m_disk;
    std::unique_ptr<IoContext> m_ctx;
};

TEST_F(DiskBenchTest, WritesThePatternWithStepAndWrap) {
    RecordingBackend rec(*m_disk);
    BenchConfig c;
    c.write = true;
    c.count = 300;
    c.depth = 8;
    c.size = 4096;
    c.step = 8192;
    c.offset = 4096;
    c.pattern = 0x5a;
    auto r = run_bench(rec, *m_ctx, c);
    ASSERT_TRUE(r.ok()) << r.error().message();
    EXPECT_EQ(r->requests, 300u);
    ASSERT_EQ(rec.ops.size(), 300u);
    EXPECT_EQ(rec.max_in_flight, 8u);
    // Offsets advance by the step and wrap at the disk size, as qemu-img bench's do.
    uint64_t expect = 4096;
    for (const auto& op : rec.ops) {
        EXPECT_EQ(op.op, IoOp::kWrite);
        EXPECT_EQ(op.offset, expect);
        EXPECT_EQ(op.length, 4096u);
        expect = (expect + 8192) % (1 << 20);
    }
    // Odd 4 KiB blocks hold the pattern, even ones were never written.
    std::vector<uint8_t> back(1 << 20);
    iovec v{back.data(), back.size()};
    ASSERT_TRUE(m_disk->read(0, {&v, 1}).ok());
    for (size_t block = 0; block < 256; ++block) {
        uint8_t want = block % 2 == 1 ? 0x5a : 0;
        EXPECT_EQ(back[block * 4096], want) << block;
        EXPECT_EQ(back[block * 4096 + 4095], want) << block;
    }
}

TEST_F(DiskBenchTest, FlushIntervalWithAndWithoutDrain) {
    for (bool drain : {true, false}) {
        RecordingBackend rec(*m_disk);
        BenchConfig c;
        c.write = true;
        c.count = 100;
        c.depth = 4;
        c.flush_interval = 10;
        c.drain_on_flush = drain;
        auto r = run_bench(rec, *m_ctx, c);
        ASSERT_TRUE(r.ok()) << r.error().message();
        size_t flushes = static_cast<size_t>(std::count_if(
            rec.ops.begin(), rec.ops.end(), [](const auto& op) { return op.op == IoOp::kFlush; }));
        if (drain) {
            EXPECT_EQ(flushes, 10u);
            // Drained: every flush is alone in flight — the 10 requests before it have completed.
            size_t writes_since = 0;
            for (const auto& op : rec.ops) {
                if (op.op == IoOp::kFlush) {
                    EXPECT_EQ(writes_since, 10u);
                    writes_since = 0;
                } else {
                    ++writes_since;
                }
            }
        } else {
            // Undrained, qemu-img's schedule also flushes on each of the last completions (nothing
            // is left to submit, so the "every N" condition holds for each of them).
            EXPECT_GE(flushes, 10u);
            EXPECT_LE(flushes, 10u + c.depth - 1);
        }
    }
}

TEST_F(DiskBenchTest, WritethroughFlushesEveryWrite) {
    RecordingBackend rec(*m_disk);
    BenchConfig c;
    c.write = true;
    c.count = 20;
    c.depth = 2;
    c.flush_every_write = true;
    ASSERT_TRUE(run_bench(rec, *m_ctx, c).ok());
    size_t flushes = static_cast<size_t>(
        std::count_if(rec.ops.begin(), rec.ops.end(), [](const auto& op) { return op.op == IoOp::kFlush; }));
    EXPECT_EQ(flushes, 20u);
}

TEST_F(DiskBenchTest, ReadsAndZeroCount) {
    RecordingBackend rec(*m_disk);
    BenchConfig c;
    c.count = 1000;
    c.depth = 64;
    c.size = 65536;
    auto r = run_bench(rec, *m_ctx, c);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(rec.ops.size(), 1000u);
    EXPECT_EQ(rec.ops.front().op, IoOp::kRead);
    c.count = 0;
    r = run_bench(rec, *m_ctx, c);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->requests, 0u);
}

TEST_F(DiskBenchTest, RequestPastTheEndFails) {
    BenchConfig c;
    c.count = 10;
    c.depth = 2;
    c.offset = (1 << 20) - 2048;
    auto r = run_bench(*m_disk, *m_ctx, c);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("past the end"), std::string::npos) << r.error().message();
}

TEST_F(DiskBenchTest, DirectIoOnAlignedBuffers) {
    OpenOptions o;
    o.direct = true;
    auto direct = RawBackend::open(m_path, o);
    if (!direct.ok()) GTEST_SKIP() << "O_DIRECT not supported on /tmp here: " << direct.error().message();
    BenchConfig c;
    c.write = true;
    c.count = 64;
    c.depth = 16;
    auto r = run_bench(**direct, *m_ctx, c);
    if (!r.ok() && r.error().os_error() == EINVAL)
        GTEST_SKIP() << "O_DIRECT writes refused by this file system";
    ASSERT_TRUE(r.ok()) << r.error().message();
}

}  // namespace
}  // namespace vireo::disk
