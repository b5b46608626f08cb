// io_uring engine behind IoContext, and its synchronous fallback.
#include "disk/io_context.hpp"

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <thread>

#include "base/log.hpp"

namespace vireo::disk {

struct IoContext::Op {
    enum class Kind : uint8_t { kRead, kWrite, kFsync, kFallocate };
    Kind kind = Kind::kRead;
    int fd = -1;
    uint64_t offset = 0;  // start of the whole transfer (read/write) or range (fallocate)
    uint64_t length = 0;  // fallocate length
    int mode = 0;         // fallocate mode
    bool datasync = false;
    std::vector<iovec> iov;  // remaining part of the transfer: advanced as bytes complete
    size_t first = 0;        // first iovec not yet fully transferred
    int64_t done = 0;        // bytes transferred so far
    Callback cb;
};

Result<std::unique_ptr<IoContext>> IoContext::create(unsigned entries, bool allow_fallback) {
    std::unique_ptr<IoContext> ctx(new IoContext());
    ctx->m_event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ctx->m_event_fd < 0) return os_error("io: eventfd");

    auto ring = std::make_unique<io_uring>();
    unsigned size = std::max(entries, 8u);
    // Deferred task running (Linux 6.1+, single issuer): completions are posted only when the
    // owner asks for them (poll() does), in one batch, with no task work interrupting it. The
    // ring starts disabled so that its single issuer is the thread that first submits, not the
    // one that created it (the NBD server builds its context before starting its thread).
    // Cooperative task running (5.19+): completions are posted when this thread next enters the
    // kernel instead of interrupting it with an IPI. Older kernels reject the flags; step down.
    const unsigned kFlags[] = {
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_COOP_TASKRUN |
            IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN,
        0,
    };
    int r = -EINVAL;
    for (unsigned flags : kFlags) {
        r = io_uring_queue_init(size, ring.get(), flags);
        if (r != -EINVAL) {
            ctx->m_defer_taskrun = r == 0 && (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
            ctx->m_disabled = r == 0 && (flags & IORING_SETUP_R_DISABLED) != 0;
            break;
        }
    }
    if (r < 0) {
        if (!allow_fallback) return os_error("io: io_uring_queue_init", -r);
        log::get("disk").info("io_uring unavailable ({}); using synchronous I/O", std::strerror(-r));
        return ctx;
    }
    r = io_uring_register_eventfd(ring.get(), ctx->m_event_fd);
    if (r < 0) {
        io_uring_queue_exit(ring.get());
        return os_error("io: io_uring_register_eventfd", -r);
    }
    ctx->m_ring = ring.release();
    ctx->m_ring_capacity = ctx->m_ring->sq.ring_entries;
    return ctx;
}

Result<std::unique_ptr<IoContext>> IoContext::create_for_testing_without_io_uring() {
    std::unique_ptr<IoContext> ctx(new IoContext());
    ctx->m_event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ctx->m_event_fd < 0) return os_error("io: eventfd");
    return ctx;
}

IoContext::~IoContext() {
    if (m_ring != nullptr) {
        // Operations still in the kernel write into buffers their owners may free next: wait.
        while (m_kernel_in_flight > 0) {
            io_uring_cqe* cqe = nullptr;
            if (io_uring_wait_cqe(m_ring, &cqe) < 0) break;
            io_uring_cqe_seen(m_ring, cqe);
            --m_kernel_in_flight;
        }
        io_uring_queue_exit(m_ring);
        delete m_ring;
    }
    if (m_event_fd >= 0) ::close(m_event_fd);
}

IoContext::Op* IoContext::new_op() {
    if (m_free_ops.empty()) {
        m_all_ops.push_back(std::make_unique<Op>());
        return m_all_ops.back().get();
    }
    Op* op = m_free_ops.back();
    m_free_ops.pop_back();
    return op;
}

void IoContext::free_op(Op* op) {
    op->iov.clear();
    op->first = 0;
    op->done = 0;
    op->cb = nullptr;
    m_free_ops.push_back(op);
}

void IoContext::readv(int fd, std::span<const iovec> iov, uint64_t offset, Callback cb) {
    Op* op = new_op();
    op->kind = Op::Kind::kRead;
    op->fd = fd;
    op->offset = offset;
    op->iov.assign(iov.begin(), iov.end());
    op->cb = std::move(cb);
    queue(op);
}

void IoContext::writev(int fd, std::span<const iovec> iov, uint64_t offset, Callback cb) {
    Op* op = new_op();
    op->kind = Op::Kind::kWrite;
    op->fd = fd;
    op->offset = offset;
    op->iov.assign(iov.begin(), iov.end());
    op->cb = std::move(cb);
    queue(op);
}

void IoContext::fsync(int fd, bool datasync, Callback cb) {
    Op* op = new_op();
    op->kind = Op::Kind::kFsync;
    op->fd = fd;
    op->datasync = datasync;
    op->cb = std::move(cb);
    queue(op);
}

void IoContext::fallocate(int fd, int mode, uint64_t offset, uint64_t length, Callback cb) {
    Op* op = new_op();
    op->kind = Op::Kind::kFallocate;
    op->fd = fd;
    op->mode = mode;
    op->offset = offset;
    op->length = length;
    op->cb = std::move(cb);
    queue(op);
}

void IoContext::defer(std::function<void()> fn) {
    m_deferred.push_back(std::move(fn));
    // Work deferred from a completion callback runs before this poll() returns: no wake-up.
    if (m_poll_depth > 0) return;
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_event_fd, &one, sizeof one);  // wake an epoll owner
}

void IoContext::queue(Op* op) {
    ++m_in_flight;
    if (m_ring == nullptr) {
        run_sync(op);
        return;
    }
    // Keep submission order: nothing overtakes operations already waiting for a slot.
    if (!m_overflow.empty() || !prepare(op)) m_overflow.push_back(op);
}

bool IoContext::prepare(Op* op) {
    // Keep at most ring-size operations in the kernel so the completion queue cannot overflow.
    io_uring_sqe* sqe = m_kernel_in_flight < m_ring_capacity ? io_uring_get_sqe(m_ring) : nullptr;
    if (sqe == nullptr) return false;
    switch (op->kind) {
        case Op::Kind::kRead:
        case Op::Kind::kWrite: {
            unsigned count = static_cast<unsigned>(std::min<size_t>(op->iov.size() - op->first, IOV_MAX));
            uint64_t at = op->offset + static_cast<uint64_t>(op->done);
            if (op->kind == Op::Kind::kRead) {
                io_uring_prep_readv(sqe, op->fd, op->iov.data() + op->first, count, at);
            } else {
                io_uring_prep_writev(sqe, op->fd, op->iov.data() + op->first, count, at);
            }
            break;
        }
        case Op::Kind::kFsync:
            io_uring_prep_fsync(sqe, op->fd, op->datasync ? IORING_FSYNC_DATASYNC : 0);
            break;
        case Op::Kind::kFallocate:
            io_uring_prep_fallocate(sqe, op->fd, op->mode, static_cast<off_t>(op->offset),
                                    static_cast<off_t>(op->length));
            break;
    }
    io_uring_sqe_set_data(sqe, op);
    ++m_kernel_in_flight;
    return true;
}

void IoContext::run_sync(Op* op) {
    int64_t result = 0;
    switch (op->kind) {
        case Op::Kind::kRead:
        case Op::Kind::kWrite: {
            for (;;) {
                // Skip fully transferred (or empty) iovecs.
                while (op->first < op->iov.size() && op->iov[op->first].iov_len == 0)
                    ++op->first;
                if (op->first == op->iov.size()) break;
                int count = static_cast<int>(std::min<size_t>(op->iov.size() - op->first, IOV_MAX));
                auto at = static_cast<off_t>(op->offset + static_cast<uint64_t>(op->done));
                ssize_t n = op->kind == Op::Kind::kRead
                                ? ::preadv(op->fd, op->iov.data() + op->first, count, at)
                                : ::pwritev(op->fd, op->iov.data() + op->first, count, at);
                if (n < 0 && errno == EINTR) continue;
                if (n < 0) {
                    op->done = -errno;
                    break;
                }
                if (n == 0) {
                    if (op->kind == Op::Kind::kWrite) op->done = -EIO;
                    break;
                }
                op->done += n;
                size_t left = static_cast<size_t>(n);
                while (left > 0 && op->first < op->iov.size()) {
                    size_t take = std::min(left, op->iov[op->first].iov_len);
                    op->iov[op->first].iov_base = static_cast<uint8_t*>(op->iov[op->first].iov_base) + take;
                    op->iov[op->first].iov_len -= take;
                    left -= take;
                    if (op->iov[op->first].iov_len == 0) ++op->first;
                }
            }
            result = op->done;
            break;
        }
        case Op::Kind::kFsync:
            result = (op->datasync ? ::fdatasync(op->fd) : ::fsync(op->fd)) < 0 ? -errno : 0;
            break;
        case Op::Kind::kFallocate:
            result = ::fallocate(op->fd, op->mode, static_cast<off_t>(op->offset),
                                 static_cast<off_t>(op->length)) < 0
                         ? -errno
                         : 0;
            break;
    }
    m_sync_done.emplace_back(op, result);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_event_fd, &one, sizeof one);
}

void IoContext::complete(Op* op, int64_t result) {
    Callback cb = std::move(op->cb);
    free_op(op);
    --m_in_flight;
    if (cb) cb(result);
}

Status IoContext::enable() {
    // The first kernel entry makes this thread the ring's single issuer (see create()).
    if (!m_disabled) return {};
    // The raw call: liburing 2.3 declares io_uring_enable_rings() but does not export it.
    if (::syscall(__NR_io_uring_register, m_ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0) < 0)
        return os_error("io: enabling the io_uring ring");
    m_disabled = false;
    m_owner = std::this_thread::get_id();
    return {};
}

bool IoContext::owns_completions() const {
    return m_defer_taskrun && !m_disabled && m_owner == std::this_thread::get_id();
}

Status IoContext::submit() {
    if (m_ring == nullptr) return {};
    if (io_uring_sq_ready(m_ring) == 0) return {};
    VIREO_TRY(enable());
    for (;;) {
        int r = io_uring_submit(m_ring);
        if (r >= 0) return {};
        if (r == -EINTR) continue;
        if (r == -EAGAIN || r == -EBUSY) return {};  // retried after completions are reaped
        return os_error("io: io_uring_submit", -r);
    }
}

void IoContext::reap(std::vector<std::pair<Op*, int64_t>>& finished) {
    io_uring_cqe* cqe = nullptr;
    while (io_uring_peek_cqe(m_ring, &cqe) == 0 && cqe != nullptr) {
        Op* op = static_cast<Op*>(io_uring_cqe_get_data(cqe));
        int res = cqe->res;
        io_uring_cqe_seen(m_ring, cqe);
        --m_kernel_in_flight;
        if (op->kind == Op::Kind::kRead || op->kind == Op::Kind::kWrite) {
            if (res == -EAGAIN || res == -EINTR) {
                m_overflow.push_back(op);
                continue;
            }
            if (res < 0) {
                finished.emplace_back(op, res);
                continue;
            }
            if (res == 0) {  // end of file (read) or no progress (write)
                finished.emplace_back(op, op->kind == Op::Kind::kRead ? op->done : -EIO);
                continue;
            }
            op->done += res;
            size_t left = static_cast<size_t>(res);
            while (left > 0 && op->first < op->iov.size()) {
                size_t take = std::min(left, op->iov[op->first].iov_len);
                op->iov[op->first].iov_base = static_cast<uint8_t*>(op->iov[op->first].iov_base) + take;
                op->iov[op->first].iov_len -= take;
                left -= take;
                if (op->iov[op->first].iov_len == 0) ++op->first;
            }
            while (op->first < op->iov.size() && op->iov[op->first].iov_len == 0)
                ++op->first;
            if (op->first < op->iov.size()) {
                m_overflow.push_back(op);  // short transfer: continue with the rest
            } else {
                finished.emplace_back(op, op->done);
            }
        } else {
            finished.emplace_back(op, res);
        }
    }
}

size_t IoContext::poll() {
    uint64_t counter;
    [[maybe_unused]] ssize_t n = ::read(m_event_fd, &counter, sizeof counter);
    // Completions wait in the kernel until asked for. One request posts a bounded number (20
    // since Linux 6.13); posting them signals the eventfd again, so the rest come with the
    // owner's next wake-up.
    if (m_ring != nullptr && owns_completions() && m_kernel_in_flight > 0) {
        int r = io_uring_get_events(m_ring);
        if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
            log::get("disk").error("io: io_uring_get_events: {}", std::strerror(-r));
    }
    return run_completed();
}

size_t IoContext::run_completed() {
    // Collect first, then run callbacks: a callback may queue new operations. The list's
    // storage is reused from one poll to the next (a nested poll() gets a fresh one).
    std::vector<std::pair<Op*, int64_t>> finished = std::move(m_finished_spare);
    finished.clear();
    if (m_ring != nullptr) {
        reap(finished);
        // Refill the ring from operations that waited for a slot.
        while (!m_overflow.empty() && prepare(m_overflow.front()))
            m_overflow.pop_front();
    }
    while (!m_sync_done.empty()) {
        finished.push_back(m_sync_done.front());
        m_sync_done.pop_front();
    }
    ++m_poll_depth;
    for (auto& [op, result] : finished)
        complete(op, result);
    size_t ran = finished.size();

    // Deferred work queued by the callbacks above runs too, but not work it defers in turn.
    size_t deferred = m_deferred.size();
    for (size_t i = 0; i < deferred; ++i) {
        auto fn = std::move(m_deferred.front());
        m_deferred.pop_front();
        fn();
        ++ran;
    }
    --m_poll_depth;
    finished.clear();
    m_finished_spare = std::move(finished);
    if (!m_deferred.empty()) {
        uint64_t one = 1;
        [[maybe_unused]] ssize_t w = ::write(m_event_fd, &one, sizeof one);
    }
    // Callbacks and continuations queued operations: hand them to the kernel now.
    if (auto s = submit(); !s.ok()) log::get("disk").error("{}", s.error().message());
    return ran;
}

Result<size_t> IoContext::wait(int timeout_ms) {
    // Waiting in the ring itself: one io_uring_enter submits what is queued, runs the deferred
    // task work, posts the completions and sleeps until there is one, where poll() and a
    // poll(2) on the eventfd take up to five system calls per wake-up (a queue-depth-1 workload
    // makes one wake-up per request). The eventfd keeps its count; an epoll owner's next poll()
    // clears it. Finite timeouts need the kernel's extended wait argument (Linux 5.11+);
    // without it, or with deferred work or synchronous results to run, the eventfd path below
    // serves.
    if (m_ring != nullptr && io_uring_sq_ready(m_ring) > 0) VIREO_TRY(enable());
    bool ring_wait = m_ring != nullptr && m_kernel_in_flight > 0 && m_deferred.empty() &&
                     m_sync_done.empty() && (!m_defer_taskrun || owns_completions()) &&
                     (timeout_ms < 0 || (m_ring->features & IORING_FEAT_EXT_ARG) != 0);
    if (ring_wait) {
        if (io_uring_cq_ready(m_ring) == 0) {
            int r;
            if (timeout_ms < 0) {
                r = io_uring_submit_and_wait(m_ring, 1);
            } else {
                VIREO_TRY(submit());
                io_uring_cqe* cqe = nullptr;
                __kernel_timespec ts{.tv_sec = timeout_ms / 1000, .tv_nsec = (timeout_ms % 1000) * 1000000LL};
                r = io_uring_wait_cqe_timeout(m_ring, &cqe, &ts);
            }
            // EAGAIN/EBUSY: no room to submit until completions are reaped, which follows.
            if (r < 0 && r != -ETIME && r != -EINTR && r != -EAGAIN && r != -EBUSY)
                return os_error("io: waiting for io_uring completions", -r);
        }
        return run_completed();
    }
    VIREO_TRY(submit());
    size_t ran = poll();
    if (ran > 0) return ran;
    if (m_in_flight == 0 && m_deferred.empty()) return size_t{0};
    // Only the ring's issuer can ask for deferred completions; anyone else would sleep forever.
    if (m_defer_taskrun && !m_disabled && !owns_completions() && m_kernel_in_flight > 0)
        return make_error("io: {} operations in flight on a ring owned by another thread",
                          m_kernel_in_flight);
    pollfd pfd{m_event_fd, POLLIN, 0};
    for (;;) {
        int r = ::poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return os_error("io: poll");
        break;
    }
    ran = poll();
    VIREO_TRY(submit());
    return ran;
}

Status IoContext::drain() {
    while (m_in_flight > 0 || !m_deferred.empty()) {
        VIREO_TRY(wait(-1));
    }
    return {};
}

}  // namespace vireo::disk
