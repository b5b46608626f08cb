// The epoll event loop.
#include "vmm/event_loop.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <condition_variable>

#include "base/log.hpp"

namespace vireo::vmm {

namespace {
constexpr EventLoop::Token kWakeToken = 0;
}

Result<std::unique_ptr<EventLoop>> EventLoop::create() {
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) return os_error("event loop: epoll_create1");
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return os_error("event loop: eventfd");
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeToken;
    if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, wake.get(), &ev) < 0)
        return os_error("event loop: epoll_ctl");
    return std::unique_ptr<EventLoop>(new EventLoop(std::move(epoll), std::move(wake)));
}

EventLoop::~EventLoop() = default;

Result<EventLoop::Token> EventLoop::add(int fd, uint32_t events, Callback callback) {
    Token token = m_next_token++;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
        return os_error(fmt::format("event loop: watching fd {}", fd));
    m_sources.emplace(token, Source{fd, std::make_shared<Callback>(std::move(callback))});
    return token;
}

Status EventLoop::modify(Token token, uint32_t events) {
    auto it = m_sources.find(token);
    if (it == m_sources.end()) return make_error("event loop: unknown source {}", token);
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = token;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, it->second.fd, &ev) < 0)
        return os_error(fmt::format("event loop: updating fd {}", it->second.fd));
    return {};
}

void EventLoop::remove(Token token) {
    auto it = m_sources.find(token);
    if (it == m_sources.end()) return;
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    m_sources.erase(it);
}

void EventLoop::post(std::function<void()> fn) {
    {
        std::lock_guard lock(m_posted_lock);
        m_posted.push_back(std::move(fn));
    }
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_wake.get(), &one, sizeof one);
}

Status EventLoop::call(std::function<void()> fn, std::chrono::milliseconds timeout) {
    struct Shared {
        std::mutex lock;
        std::condition_variable cv;
        std::function<void()> fn;
        bool done = false;
        bool cancelled = false;  // the caller gave up: fn must not run
    };
    if (m_stop) return make_error("event loop: stopping");
    auto shared = std::make_shared<Shared>();
    shared->fn = std::move(fn);
    post([shared] {
        // Held while fn runs, so a caller timing out meanwhile waits for fn to finish.
        std::lock_guard lock(shared->lock);
        if (shared->cancelled) return;
        shared->fn();
        shared->done = true;
        shared->cv.notify_all();
    });
    std::unique_lock lock(shared->lock);
    if (!shared->cv.wait_for(lock, timeout, [&] { return shared->done; })) {
        shared->cancelled = true;
        return make_error("event loop: no answer within {} ms", timeout.count());
    }
    return {};
}

void EventLoop::stop() {
    m_stop = true;
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_wake.get(), &one, sizeof one);
}

void EventLoop::drain_posted() {
    uint64_t count;
    [[maybe_unused]] ssize_t n = ::read(m_wake.get(), &count, sizeof count);
    std::vector<std::function<void()>> work;
    {
        std::lock_guard lock(m_posted_lock);
        work.swap(m_posted);
    }
    for (auto& fn : work)
        fn();
}

Status EventLoop::run() {
    constexpr int kMaxEvents = 32;
    epoll_event events[kMaxEvents];
    while (!m_stop) {
        int n = ::epoll_wait(m_epoll.get(), events, kMaxEvents, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error("event loop: epoll_wait");
        }
        for (int i = 0; i < n && !m_stop; ++i) {
            Token token = events[i].data.u64;
            if (token == kWakeToken) {
                drain_posted();
                continue;
            }
            auto it = m_sources.find(token);
            if (it == m_sources.end()) continue;                 // removed by an earlier callback
            std::shared_ptr<Callback> cb = it->second.callback;  // survives remove() inside the call
            (*cb)(events[i].events);
        }
    }
    // Work posted before stop() still runs (it may release resources).
    drain_posted();
    m_stop = false;
    return {};
}

EventLoop::Timer::~Timer() {
    m_loop.remove(m_token);
}

void EventLoop::Timer::arm(std::optional<int64_t> deadline_ns) {
    itimerspec spec{};
    if (deadline_ns) {
        int64_t ns = std::max<int64_t>(*deadline_ns, 1);
        spec.it_value.tv_sec = ns / 1'000'000'000;
        spec.it_value.tv_nsec = ns % 1'000'000'000;
    }
    if (::timerfd_settime(m_fd.get(), TFD_TIMER_ABSTIME, &spec, nullptr) < 0) {
        log::get("vmm").error("timerfd_settime: {}", std::strerror(errno));
    }
}

Result<std::unique_ptr<EventLoop::Timer>> EventLoop::create_timer(std::function<void()> fn) {
    UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
    if (!fd) return os_error("event loop: timerfd_create");
    std::unique_ptr<Timer> timer(new Timer(*this, std::move(fd)));
    int raw = timer->m_fd.get();
    VIREO_ASSIGN_OR_RETURN(timer->m_token, add(raw, EPOLLIN, [raw, fn = std::move(fn)](uint32_t) {
                               uint64_t expirations;
                               if (::read(raw, &expirations, sizeof expirations) > 0) fn();
                           }));
    return timer;
}

}  // namespace vireo::vmm
