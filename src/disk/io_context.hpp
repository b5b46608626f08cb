// IoContext: one thread's asynchronous file I/O engine (io_uring through liburing), with a
// synchronous fallback where io_uring is unavailable.
//
// One IoContext belongs to one thread: every call, and every callback, happens on it. It may be
// created on another thread: where the kernel allows, the ring runs deferred task work for a
// single issuer (completions are posted only when poll() asks for them), and it binds to the
// thread that first submits. Block backends queue host-file operations here; the owner pushes
// them to the kernel with submit() and reaps completions with poll()/wait(), or from an epoll
// loop watching event_fd().
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <thread>
#include <vector>

#include "base/result.hpp"

struct io_uring;

namespace vireo::disk {

class IoContext {
  public:
    // Result of one operation: bytes transferred (>= 0) or -errno.
    using Callback = std::function<void(int64_t result)>;

    // Creates a ring with `entries` submission slots. With `allow_fallback`, a host without
    // io_uring (seccomp, io_uring_disabled) gets a context that runs operations synchronously
    // and delivers their callbacks from poll(); otherwise that is an error.
    static Result<std::unique_ptr<IoContext>> create(unsigned entries = 256, bool allow_fallback = true);
    // The synchronous engine a host without io_uring gets, for tests of that path.
    static Result<std::unique_ptr<IoContext>> create_for_testing_without_io_uring();
    ~IoContext();
    IoContext(const IoContext&) = delete;
    IoContext& operator=(const IoContext&) = delete;

    // Queue operations. Short transfers are continued internally; a read that reaches end of
    // file completes with the bytes read so far. The iovec array is copied; the buffers must
    // stay valid until the callback runs.
    void readv(int fd, std::span<const iovec> iov, uint64_t offset, Callback cb);
    void writev(int fd, std::span<const iovec> iov, uint64_t offset, Callback cb);
    void fsync(int fd, bool datasync, Callback cb);
    void fallocate(int fd, int mode, uint64_t offset, uint64_t length, Callback cb);
    // Runs `fn` on this thread from the next poll()/wait(), after the current call returns.
    void defer(std::function<void()> fn);

    // Pushes queued operations to the kernel.
    Status submit();
    // Runs the callbacks of finished operations (and deferred work) without blocking, then
    // submits whatever they queued; returns how many ran.
    size_t poll();
    // Submits, then blocks until at least one callback ran or timeout_ms passed (-1: forever).
    Result<size_t> wait(int timeout_ms = -1);
    // Runs until no operation is in flight and nothing is deferred.
    Status drain();

    // Readable when completions are waiting (for an epoll loop). Reading it is the owner's job
    // (poll() does it).
    int event_fd() const { return m_event_fd; }
    size_t in_flight() const { return m_in_flight; }
    bool uses_io_uring() const { return m_ring != nullptr; }

  private:
    struct Op;
    IoContext() = default;
    Op* new_op();
    void free_op(Op* op);
    void queue(Op* op);
    bool prepare(Op* op);  // false when the ring has no free slot
    void complete(Op* op, int64_t result);
    void run_sync(Op* op);
    // poll() without asking the kernel: runs what reached the completion queue, the synchronous
    // results and deferred work, then submits what they queued.
    size_t run_completed();
    // Moves completed operations to `finished`, and short or retried ones back to m_overflow.
    void reap(std::vector<std::pair<Op*, int64_t>>& finished);
    Status enable();  // enables a ring created disabled, on the first kernel entry
    // A deferred-task-run ring whose completions this thread may ask for (its issuer).
    bool owns_completions() const;

    io_uring* m_ring = nullptr;
    int m_event_fd = -1;
    bool m_defer_taskrun = false;     // IORING_SETUP_DEFER_TASKRUN: completions posted on request
    bool m_disabled = false;          // created with IORING_SETUP_R_DISABLED and not yet enabled
    std::thread::id m_owner;          // the thread that enabled the ring: its single issuer
    int m_poll_depth = 0;             // poll() is running callbacks and deferred work
    size_t m_in_flight = 0;           // queued and not yet completed (callback not yet run)
    unsigned m_kernel_in_flight = 0;  // submitted to the ring, completion not yet reaped
    unsigned m_ring_capacity = 0;
    std::vector<std::unique_ptr<Op>> m_all_ops;
    std::vector<Op*> m_free_ops;
    std::deque<Op*> m_overflow;  // ops waiting for a free submission slot
    std::deque<std::function<void()>> m_deferred;
    std::deque<std::pair<Op*, int64_t>> m_sync_done;        // fallback mode completions
    std::vector<std::pair<Op*, int64_t>> m_finished_spare;  // poll()'s list, kept for its capacity
};

}  // namespace vireo::disk
