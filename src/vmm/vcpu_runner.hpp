// VcpuRunner: one thread per vCPU running KVM_RUN, with an explicit lifecycle driven by
// commands from other threads (Firecracker's vcpu.rs has the same shape): it starts paused,
// runs on resume(), stops at a clean point on pause() (any I/O instruction in flight completed,
// so the state can be saved), runs work on its own thread while paused (state save/restore),
// and leaves on exit(). A guest power-off, reset or fatal error pauses it and is reported.
#pragma once

#include <pthread.h>

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "kvm/kvm.hpp"
#include "vmm/exit_handler.hpp"

namespace vireo::vmm {

enum class VcpuState {
    kPaused,   // not in KVM_RUN; state may be read and written
    kRunning,  // in the KVM_RUN loop
    kExited,   // the thread has left (after exit())
};

const char* to_string(VcpuState state);

class VcpuRunner {
  public:
    // Called on the vCPU thread when the guest powers off, resets, or cannot go on.
    using StopHandler = std::function<void(uint32_t vcpu_id, const ExitResult& result)>;

    static constexpr size_t kExitReasons = 64;

    VcpuRunner(std::unique_ptr<kvm::Vcpu> vcpu, ExitBuses buses, const GuestMemory& memory,
               StopHandler on_stop);
    ~VcpuRunner();
    VcpuRunner(const VcpuRunner&) = delete;
    VcpuRunner& operator=(const VcpuRunner&) = delete;

    // Starts the thread, in kPaused.
    Status start();
    // Commands. resume() and exit() return at once; pause() waits until the vCPU is paused.
    void resume();
    void pause();
    void exit();
    // Waits for the thread to leave (after exit()).
    void join();

    // Runs `fn` with the kvm::Vcpu on the vCPU's thread while it is paused, and waits for it
    // (on the caller's thread before start()). An error if the vCPU is not paused.
    Status run_paused(const std::function<Status(kvm::Vcpu&)>& fn);

    VcpuState state() const;
    uint32_t id() const { return m_vcpu->id(); }
    kvm::Vcpu& vcpu() { return *m_vcpu; }
    // KVM exits by reason (KVM_EXIT_*), for the counters API.
    std::array<uint64_t, kExitReasons> exit_counts() const;

    // The signal that kicks vCPU threads out of KVM_RUN. Installed once per process.
    static int kick_signal();

  private:
    void thread_main();
    // Runs the guest until a command or a stop; returns with m_lock not held.
    void run_loop();
    // Completes an I/O instruction KVM is in the middle of, so the saved state is consistent.
    void complete_pending_io();
    void kick();

    std::unique_ptr<kvm::Vcpu> m_vcpu;
    ExitBuses m_buses;
    const GuestMemory& m_memory;
    StopHandler m_on_stop;

    mutable std::mutex m_lock;
    std::condition_variable m_cv;
    std::atomic<VcpuState> m_requested{VcpuState::kPaused};
    VcpuState m_state = VcpuState::kPaused;
    std::deque<std::function<void()>> m_tasks;
    std::thread m_thread;
    std::atomic<pthread_t> m_pthread{};
    std::atomic<bool> m_thread_running{false};
    bool m_io_pending = false;  // the last exit was port I/O or MMIO (vCPU thread only)
    std::array<std::atomic<uint64_t>, kExitReasons> m_exits{};
};

}  // namespace vireo::vmm
