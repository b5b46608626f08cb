// Crash safety of the dynamic VHD writer: a child process writes (allocating blocks) and
// flushes; it is SIGKILLed at random moments, many times. After every kill the image opens, its
// check finds at worst leaks, every write acknowledged by a flush is there, and no sector holds
// anything but its old or its new contents.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <thread>

#include "disk/image.hpp"
#include "disk/image_check.hpp"
#include "disk/io_context.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using namespace testing;

constexpr uint64_t kSize = 64 << 20;
constexpr uint64_t kSlot = 4096;
constexpr uint64_t kSlots = kSize / kSlot;
constexpr uint64_t kPerRound = 1200;  // 12 rounds stay within kSlots
constexpr int kFlushEvery = 8;

std::vector<uint8_t> slot_data(uint64_t slot) {
    return pattern(kSlot, static_cast<uint32_t>(slot * 2654435761u + 1));
}

// Runs in the child: writes slots order[first..last), flushing every few writes and reporting on
// `report` how many writes are durable. Never returns.
[[noreturn]] void writer(const std::string& path, const std::vector<uint64_t>& order, uint64_t first,
                         uint64_t last, bool async, int report) {
    auto disk = open_image(path);
    if (!disk.ok()) _exit(2);
    std::unique_ptr<IoContext> ctx;
    if (async) ctx = std::move(*IoContext::create(64));
    for (uint64_t i = first; i < last; ++i) {
        auto data = slot_data(order[i]);
        if (async) {
            iovec v{data.data(), data.size()};
            bool ok = false;
            IoRequest w{
                IoOp::kWrite, order[i] * kSlot, kSlot, {&v, 1}, [&ok](IoRequest&, Status s) { ok = s.ok(); }};
            (*disk)->submit(*ctx, w);
            if (!ctx->drain().ok() || !ok) _exit(3);
        } else if (!write_at(**disk, order[i] * kSlot, data).ok()) {
            _exit(3);
        }
        if ((i - first) % kFlushEvery == kFlushEvery - 1) {
            bool ok = false;
            if (async) {
                IoRequest f{IoOp::kFlush, 0, 0, {}, [&ok](IoRequest&, Status s) { ok = s.ok(); }};
                (*disk)->submit(*ctx, f);
                if (!ctx->drain().ok()) _exit(4);
            } else {
                ok = (*disk)->flush().ok();
            }
            if (!ok) _exit(4);
            uint64_t durable = i + 1;
            if (::write(report, &durable, sizeof durable) != sizeof durable) _exit(5);
        }
    }
    _exit(0);
}

TEST(VhdCrash, KilledWriterLeavesAConsistentImage) {
    TempDir dir;
    std::string path = dir.path("crash.vhd");
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = kSize;
    ASSERT_TRUE(create_image(path, o).ok());
    std::vector<uint64_t> order(kSlots);
    for (uint64_t i = 0; i < kSlots; ++i)
        order[i] = i;
    std::mt19937_64 rng(20240501);
    std::shuffle(order.begin(), order.end(), rng);

    // Per write: 0 not attempted, 1 attempted but not known durable, 2 acknowledged by a flush.
    std::vector<uint8_t> state(kSlots, 0);
    int leaks_seen = 0;
    constexpr int kRounds = 12;
    for (int round = 0; round < kRounds; ++round) {
        uint64_t first = static_cast<uint64_t>(round) * kPerRound;
        int fds[2];
        ASSERT_EQ(::pipe2(fds, O_CLOEXEC), 0);
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            ::close(fds[0]);
            writer(path, order, first, first + kPerRound, round % 2 == 1, fds[1]);
        }
        ::close(fds[1]);
        std::this_thread::sleep_for(std::chrono::milliseconds(2 + rng() % 40));
        ::kill(pid, SIGKILL);
        int status = 0;
        ::waitpid(pid, &status, 0);
        uint64_t reported = first, v;
        while (::read(fds[0], &v, sizeof v) == sizeof v)
            reported = v;
        ::close(fds[0]);
        if (WIFEXITED(status)) {
            ASSERT_EQ(WEXITSTATUS(status), 0) << "writer failed in round " << round;
        }
        for (uint64_t i = first; i < first + kPerRound; ++i)
            state[i] = i < reported ? 2 : 1;

        auto r = check_image(path);
        ASSERT_TRUE(r.ok()) << r.error().message();
        ASSERT_NE(r->exit_code(), 2) << "round " << round << ": " << r->corruptions[0];
        if (r->exit_code() == 3) ++leaks_seen;
        auto disk = open_image(path, {.read_only = true});
        ASSERT_TRUE(disk.ok()) << disk.error().message();
        for (uint64_t i = 0; i < first + kPerRound; ++i) {
            auto got = read_at(**disk, order[i] * kSlot, kSlot);
            ASSERT_TRUE(got.ok()) << got.error().message();
            if (state[i] == 2) {
                ASSERT_EQ(*got, slot_data(order[i]))
                    << "round " << round << ": flushed write " << i << " lost";
            } else {
                bool zero = std::all_of(got->begin(), got->end(), [](uint8_t b) { return b == 0; });
                ASSERT_TRUE(zero || *got == slot_data(order[i]))
                    << "round " << round << ": garbage in slot " << i;
            }
        }
    }
    // Repair reclaims whatever the kills leaked and keeps every flushed write.
    auto r = check_image(path, {.repair = true});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->exit_code(), 0);
    auto disk = open_image(path, {.read_only = true});
    ASSERT_TRUE(disk.ok());
    for (uint64_t i = 0; i < kSlots; ++i) {
        if (state[i] == 2) {
            ASSERT_EQ(*read_at(**disk, order[i] * kSlot, kSlot), slot_data(order[i]));
        }
    }
    RecordProperty("rounds_with_leaks", leaks_seen);
}

}  // namespace
}  // namespace vireo::disk
