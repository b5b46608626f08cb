// Tests for the io_uring IoContext and its synchronous fallback.
#include "disk/io_context.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <poll.h>
#include <unistd.h>

#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "base/io.hpp"

namespace vireo::disk {
namespace {

class TempFile {
  public:
    TempFile() {
        char tmpl[] = "/tmp/vireo-ioctx-XXXXXX";
        fd.reset(::mkstemp(tmpl));
        path = tmpl;
    }
    ~TempFile() { ::unlink(path.c_str()); }
    std::string path;
    UniqueFd fd;
};

// Runs every test against both engines.
class IoContextTest : public ::testing::TestWithParam<bool> {
  protected:
    void SetUp() override {
        if (GetParam()) {
            auto ctx = IoContext::create(16, /*allow_fallback=*/false);
            if (!ctx.ok()) GTEST_SKIP() << "io_uring is not usable here: " << ctx.error().message();
            m_ctx = std::move(*ctx);
            ASSERT_TRUE(m_ctx->uses_io_uring());
        } else {
            m_ctx = make_fallback();
        }
    }
    static std::unique_ptr<IoContext> make_fallback();
    std::unique_ptr<IoContext> m_ctx;
    TempFile m_file;
};

std::unique_ptr<IoContext> IoContextTest::make_fallback() {
    return std::move(*IoContext::create_for_testing_without_io_uring());
}

TEST_P(IoContextTest, WriteReadRoundTrip) {
    std::vector<uint8_t> out(64 * 1024);
    std::iota(out.begin(), out.end(), 0);
    iovec wv[] = {{out.data(), 1000}, {out.data() + 1000, out.size() - 1000}};
    int64_t wres = -1;
    m_ctx->writev(m_file.fd.get(), wv, 4096, [&](int64_t r) { wres = r; });
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(wres, static_cast<int64_t>(out.size()));

    std::vector<uint8_t> in(out.size());
    iovec rv[] = {{in.data(), in.size()}};
    int64_t rres = -1;
    m_ctx->readv(m_file.fd.get(), rv, 4096, [&](int64_t r) { rres = r; });
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(rres, static_cast<int64_t>(in.size()));
    EXPECT_EQ(in, out);
    EXPECT_EQ(m_ctx->in_flight(), 0u);
}

TEST_P(IoContextTest, ReadAtEndOfFileIsShort) {
    std::vector<uint8_t> data(100, 7);
    ASSERT_TRUE(pwrite_exact(m_file.fd.get(), data, 0).ok());
    std::vector<uint8_t> in(4096);
    iovec rv[] = {{in.data(), in.size()}};
    int64_t rres = -1;
    m_ctx->readv(m_file.fd.get(), rv, 50, [&](int64_t r) { rres = r; });
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(rres, 50);
}

TEST_P(IoContextTest, ManyMoreOperationsThanRingSlots) {
    constexpr int kOps = 200;  // ring has 16 slots
    std::vector<std::vector<uint8_t>> bufs(kOps, std::vector<uint8_t>(512));
    std::vector<iovec> iovs(kOps);
    int completed = 0;
    for (int i = 0; i < kOps; ++i) {
        std::fill(bufs[i].begin(), bufs[i].end(), static_cast<uint8_t>(i));
        iovs[i] = {bufs[i].data(), 512};
        m_ctx->writev(m_file.fd.get(), {&iovs[i], 1}, static_cast<uint64_t>(i) * 512, [&](int64_t r) {
            EXPECT_EQ(r, 512);
            ++completed;
        });
    }
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(completed, kOps);
    std::vector<uint8_t> check(512);
    ASSERT_TRUE(pread_exact(m_file.fd.get(), check, 199 * 512).ok());
    EXPECT_EQ(check[0], 199);
}

TEST_P(IoContextTest, FsyncFallocateAndErrors) {
    int64_t sync_res = -1, falloc_res = -1, bad_res = 0;
    m_ctx->fsync(m_file.fd.get(), true, [&](int64_t r) { sync_res = r; });
    m_ctx->fallocate(m_file.fd.get(), 0, 0, 8192, [&](int64_t r) { falloc_res = r; });
    uint8_t b = 0;
    iovec v{&b, 1};
    m_ctx->readv(-1, {&v, 1}, 0, [&](int64_t r) { bad_res = r; });
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(sync_res, 0);
    EXPECT_EQ(falloc_res, 0);
    EXPECT_EQ(bad_res, -EBADF);
    EXPECT_EQ(*file_size(m_file.fd.get()), 8192u);
}

TEST_P(IoContextTest, CallbacksCanQueueMoreWorkAndDeferRuns) {
    std::vector<uint8_t> data(512, 1);
    iovec v{data.data(), data.size()};
    int chain = 0;
    bool deferred = false;
    std::function<void(int64_t)> next = [&](int64_t r) {
        EXPECT_EQ(r, 512);
        if (++chain < 5) m_ctx->writev(m_file.fd.get(), {&v, 1}, static_cast<uint64_t>(chain) * 512, next);
    };
    m_ctx->writev(m_file.fd.get(), {&v, 1}, 0, next);
    m_ctx->defer([&] { deferred = true; });
    EXPECT_FALSE(deferred);  // never from inside the call
    ASSERT_TRUE(m_ctx->drain().ok());
    EXPECT_EQ(chain, 5);
    EXPECT_TRUE(deferred);
}

TEST_P(IoContextTest, DeferredWorkFromACallbackRunsInTheSamePoll) {
    std::vector<uint8_t> data(512, 1);
    iovec v{data.data(), data.size()};
    bool deferred = false;
    m_ctx->writev(m_file.fd.get(), {&v, 1}, 0, [&](int64_t) { m_ctx->defer([&] { deferred = true; }); });
    while (!deferred && m_ctx->in_flight() > 0)
        ASSERT_TRUE(m_ctx->wait(-1).ok());
    EXPECT_TRUE(deferred);
}

// The owner's thread need not be the creator's (the NBD server creates its context, then
// runs it on a thread of its own); a single-issuer ring binds to the thread that submits.
TEST_P(IoContextTest, UsableFromAnotherThreadThanTheCreator) {
    std::vector<uint8_t> out(4096, 0x5A);
    std::vector<uint8_t> in(4096);
    int64_t wres = -1, rres = -1;
    std::thread owner([&] {
        iovec wv{out.data(), out.size()};
        m_ctx->writev(m_file.fd.get(), {&wv, 1}, 0, [&](int64_t r) { wres = r; });
        ASSERT_TRUE(m_ctx->drain().ok());
        iovec rv{in.data(), in.size()};
        m_ctx->readv(m_file.fd.get(), {&rv, 1}, 0, [&](int64_t r) { rres = r; });
        ASSERT_TRUE(m_ctx->drain().ok());
    });
    owner.join();
    EXPECT_EQ(wres, 4096);
    EXPECT_EQ(rres, 4096);
    EXPECT_EQ(in, out);
}

// io_uring only: a ring and a pipe whose reads wait in the kernel until something is written.
class IoContextUring : public ::testing::Test {
  protected:
    void SetUp() override {
        auto created = IoContext::create(64, /*allow_fallback=*/false);
        if (!created.ok()) GTEST_SKIP() << "io_uring is not usable here: " << created.error().message();
        m_ctx = std::move(*created);
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        m_rd.reset(fds[0]);
        m_wr.reset(fds[1]);
    }
    // Runs the context as an epoll owner does (vireo-vmm's I/O thread, the NBD server): sleeps
    // on event_fd() and calls poll() when it is readable, until nothing is in flight.
    ::testing::AssertionResult run_as_epoll_owner() {
        while (m_ctx->in_flight() > 0) {
            pollfd pfd{m_ctx->event_fd(), POLLIN, 0};
            // Not a timing check: a lost wake-up would otherwise hang the test.
            if (::poll(&pfd, 1, 30'000) != 1)
                return ::testing::AssertionFailure()
                       << m_ctx->in_flight() << " operations in flight, no wake-up";
            m_ctx->poll();
        }
        return ::testing::AssertionSuccess();
    }
    std::unique_ptr<IoContext> m_ctx;
    UniqueFd m_rd, m_wr;
};

// Many operations finishing at once must all be delivered to an epoll owner, even where the
// kernel posts deferred completions in bounded rounds and signals the eventfd once.
TEST_F(IoContextUring, EventFdOwnerGetsEveryCompletionOfABurst) {
    // Reads of an empty pipe wait in the kernel; one write then completes all of them at once.
    constexpr int kReads = 48;
    std::vector<uint8_t> bytes(kReads);
    std::vector<iovec> iovs(kReads);
    int completed = 0;
    for (int i = 0; i < kReads; ++i) {
        iovs[i] = {&bytes[i], 1};
        m_ctx->readv(m_rd.get(), {&iovs[i], 1}, 0, [&](int64_t r) {
            EXPECT_EQ(r, 1);
            ++completed;
        });
    }
    ASSERT_TRUE(m_ctx->submit().ok());
    std::vector<uint8_t> payload(kReads, 0x42);
    ASSERT_EQ(::write(m_wr.get(), payload.data(), payload.size()), static_cast<ssize_t>(payload.size()));
    ASSERT_TRUE(run_as_epoll_owner()) << completed << " of " << kReads << " reads delivered";
    EXPECT_EQ(completed, kReads);
    EXPECT_EQ(bytes, payload);
}

// wait() sleeps in the ring itself (one io_uring_enter) where it can: a timeout with nothing
// finished returns 0 and leaves the operation in flight; a completion wakes it and its callback
// runs; and an epoll owner's eventfd still reports work afterwards (the count wait() left).
TEST_F(IoContextUring, WaitInTheRingTimesOutAndWakes) {
    uint8_t byte = 0;
    iovec iov{&byte, 1};
    int64_t result = -1;
    m_ctx->readv(m_rd.get(), {&iov, 1}, 0, [&](int64_t r) { result = r; });
    auto waited = m_ctx->wait(20);  // the pipe is empty: nothing can finish
    ASSERT_TRUE(waited.ok()) << waited.error().message();
    EXPECT_EQ(*waited, 0u);
    EXPECT_EQ(m_ctx->in_flight(), 1u);
    EXPECT_EQ(result, -1);

    std::thread writer([&] { ASSERT_EQ(::write(m_wr.get(), "x", 1), 1); });
    while (m_ctx->in_flight() > 0) {
        waited = m_ctx->wait(-1);
        ASSERT_TRUE(waited.ok()) << waited.error().message();
    }
    writer.join();
    EXPECT_EQ(result, 1);
    EXPECT_EQ(byte, 'x');

    // The same context, now driven from an event loop.
    m_ctx->readv(m_rd.get(), {&iov, 1}, 0, [&](int64_t r) { result = r + 100; });
    ASSERT_TRUE(m_ctx->submit().ok());
    ASSERT_EQ(::write(m_wr.get(), "y", 1), 1);
    ASSERT_TRUE(run_as_epoll_owner()) << "no wake-up for a finished read";
    EXPECT_EQ(result, 101);
    EXPECT_EQ(byte, 'y');
}

INSTANTIATE_TEST_SUITE_P(Engines, IoContextTest, ::testing::Values(true, false),
                         [](const auto& p) { return p.param ? "io_uring" : "fallback"; });

}  // namespace
}  // namespace vireo::disk
