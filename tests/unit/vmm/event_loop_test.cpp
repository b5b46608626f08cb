// The I/O thread's event loop: fd callbacks, removal inside callbacks, post() from other
// threads, timers, stop().
#include "vmm/event_loop.hpp"

#include <gtest/gtest.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <thread>

namespace vireo::vmm {
namespace {

int64_t now_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

TEST(EventLoop, CallsBackWhenAnFdIsReadable) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    std::string got;
    auto token = (*loop)->add(fds[0], EPOLLIN, [&](uint32_t) {
        char buf[16];
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        got.append(buf, static_cast<size_t>(n));
        (*loop)->stop();
    });
    ASSERT_TRUE(token.ok());
    ASSERT_EQ(::write(fds[1], "hi", 2), 2);
    ASSERT_TRUE((*loop)->run().ok());
    EXPECT_EQ(got, "hi");
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(EventLoop, RemoveInsideTheCallback) {
    auto loop = std::move(EventLoop::create()).value();
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    int calls = 0;
    EventLoop::Token token = 0;
    token = *loop->add(fds[0], EPOLLIN, [&](uint32_t) {
        ++calls;
        loop->remove(token);
        loop->post([&] { loop->stop(); });
    });
    ASSERT_EQ(::write(fds[1], "x", 1), 1);
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(calls, 1);  // still readable, but no longer watched
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST(EventLoop, PostFromAnotherThread) {
    auto loop = std::move(EventLoop::create()).value();
    std::thread::id ran_on;
    std::thread t([&] {
        loop->post([&] {
            ran_on = std::this_thread::get_id();
            loop->stop();
        });
    });
    ASSERT_TRUE(loop->run().ok());
    t.join();
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(EventLoop, CallRunsOnTheLoopThreadAndWaits) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    std::thread runner([&] { ASSERT_TRUE((*loop)->run().ok()); });
    std::thread::id ran_on;
    int value = 0;
    auto s = (*loop)->call(
        [&] {
            ran_on = std::this_thread::get_id();
            value = 42;
        },
        std::chrono::seconds(10));
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(value, 42);  // done by the time call() returns
    EXPECT_EQ(ran_on, runner.get_id());
    (*loop)->stop();
    runner.join();
}

TEST(EventLoop, CallGivesUpOnALoopThatDoesNotRunAndNeverRunsLate) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop.ok());
    bool ran = false;
    {
        int on_stack = 0;
        auto s = (*loop)->call(
            [&] {
                ran = true;
                on_stack = 1;
            },
            std::chrono::milliseconds(20));
        ASSERT_FALSE(s.ok());
        EXPECT_NE(s.error().message().find("no answer"), std::string::npos) << s.error().message();
        EXPECT_EQ(on_stack, 0);
    }
    // The loop runs the posted work later: the abandoned call must not touch the caller's stack.
    (*loop)->post([&] { (*loop)->stop(); });
    ASSERT_TRUE((*loop)->run().ok());
    EXPECT_FALSE(ran);
}

TEST(EventLoop, TimerFiresAndCanBeDisarmed) {
    auto loop = std::move(EventLoop::create()).value();
    int fired = 0;
    auto timer = std::move(loop->create_timer([&] {
                     ++fired;
                     loop->stop();
                 })).value();
    auto silent = std::move(loop->create_timer([&] { ADD_FAILURE() << "disarmed timer fired"; })).value();
    silent->arm(now_ns() + 1'000'000);
    silent->arm(std::nullopt);
    timer->arm(now_ns() + 2'000'000);
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(fired, 1);
}

TEST(EventLoop, RunsAgainAfterStop) {
    auto loop = std::move(EventLoop::create()).value();
    loop->stop();
    ASSERT_TRUE(loop->run().ok());
    int n = 0;
    loop->post([&] {
        ++n;
        loop->stop();
    });
    ASSERT_TRUE(loop->run().ok());
    EXPECT_EQ(n, 1);
}

}  // namespace
}  // namespace vireo::vmm
