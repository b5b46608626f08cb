// EventLoop: the I/O thread's epoll loop. Sources register a file descriptor with a callback
// (serial input, timers, ioeventfds, io_uring completions, tap fds, the API socket); other
// threads hand it work with post(). Callbacks run on the loop thread, one at a time.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo::vmm {

class EventLoop {
  public:
    using Callback = std::function<void(uint32_t epoll_events)>;
    using Token = uint64_t;

    static Result<std::unique_ptr<EventLoop>> create();
    ~EventLoop();

    // Watches `fd` (not owned; it must stay open until remove()) for `events` (EPOLLIN, ...).
    Result<Token> add(int fd, uint32_t events, Callback callback);
    Status modify(Token token, uint32_t events);
    // Stops watching. Safe from inside a callback, including the token's own.
    void remove(Token token);

    // Runs `fn` on the loop thread (thread-safe; from the loop thread it runs after the
    // current callback).
    void post(std::function<void()> fn);
    // Runs `fn` on the loop thread and waits for it, from another thread (never the loop's own:
    // it would wait for itself). Fails if the loop has not run it within `timeout`; `fn` then
    // never runs, so it may capture references to the caller's stack.
    Status call(std::function<void()> fn, std::chrono::milliseconds timeout);

    // Dispatches until stop(). Errors only if epoll itself fails.
    Status run();
    // Thread-safe; run() returns after the current callback.
    void stop();
    bool stopping() const { return m_stop; }

    // A one-shot timer on CLOCK_MONOTONIC, re-armable from any thread; `fn` runs on the loop.
    class Timer {
      public:
        ~Timer();
        // Absolute CLOCK_MONOTONIC deadline in ns; nullopt disarms.
        void arm(std::optional<int64_t> deadline_ns);

      private:
        friend class EventLoop;
        Timer(EventLoop& loop, UniqueFd fd) : m_loop(loop), m_fd(std::move(fd)) {}
        EventLoop& m_loop;
        UniqueFd m_fd;
        Token m_token = 0;
    };
    Result<std::unique_ptr<Timer>> create_timer(std::function<void()> fn);

  private:
    EventLoop(UniqueFd epoll, UniqueFd wake) : m_epoll(std::move(epoll)), m_wake(std::move(wake)) {}
    void drain_posted();

    struct Source {
        int fd;
        std::shared_ptr<Callback> callback;
    };

    UniqueFd m_epoll;
    UniqueFd m_wake;                              // eventfd: post() and stop() wake the loop
    std::unordered_map<Token, Source> m_sources;  // loop thread only (and before run())
    Token m_next_token = 1;
    std::mutex m_posted_lock;
    std::vector<std::function<void()>> m_posted;
    std::atomic<bool> m_stop{false};
};

}  // namespace vireo::vmm
