// The vCPU thread.
#include "vmm/vcpu_runner.hpp"

#include <signal.h>

#include <future>

#include "base/log.hpp"

namespace vireo::vmm {
namespace {

void kick_handler(int) {}

// Reads what the vCPU was executing, for error messages.
class KvmVcpuInspector final : public VcpuInspector {
  public:
    KvmVcpuInspector(kvm::Vcpu& vcpu, const GuestMemory& memory) : m_vcpu(vcpu), m_memory(memory) {}
    std::optional<uint64_t> rip() override {
        auto regs = m_vcpu.get_regs();
        if (!regs.ok()) return std::nullopt;
        return regs->rip;
    }
    std::vector<uint8_t> instruction_bytes() override {
        std::vector<uint8_t> bytes;
        auto regs = m_vcpu.get_regs();
        auto sregs = m_vcpu.get_sregs();
        if (!regs.ok() || !sregs.ok()) return bytes;
        uint64_t linear = sregs->cs.base + regs->rip;
        if (!(sregs->efer & (1 << 10))) linear &= 0xffff'ffff;  // outside long mode addresses wrap at 4 GiB
        for (uint64_t i = 0; i < 15; ++i) {
            auto gpa = m_vcpu.translate(linear + i);
            if (!gpa.ok()) break;
            uint8_t* p = m_memory.host_ptr(*gpa, 1);
            if (p == nullptr) break;
            bytes.push_back(*p);
        }
        return bytes;
    }

  private:
    kvm::Vcpu& m_vcpu;
    const GuestMemory& m_memory;
};

}  // namespace

const char* to_string(VcpuState state) {
    switch (state) {
        case VcpuState::kPaused:
            return "paused";
        case VcpuState::kRunning:
            return "running";
        case VcpuState::kExited:
            return "exited";
    }
    return "unknown";
}

int VcpuRunner::kick_signal() {
    static const int sig = [] {
        int s = SIGRTMIN;
        struct sigaction sa {};
        sa.sa_handler = kick_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return EINTR
        ::sigaction(s, &sa, nullptr);
        return s;
    }();
    return sig;
}

VcpuRunner::VcpuRunner(std::unique_ptr<kvm::Vcpu> vcpu, ExitBuses buses, const GuestMemory& memory,
                       StopHandler on_stop)
    : m_vcpu(std::move(vcpu)), m_buses(buses), m_memory(memory), m_on_stop(std::move(on_stop)) {}

VcpuRunner::~VcpuRunner() {
    exit();
    join();
}

Status VcpuRunner::start() {
    kick_signal();
    try {
        m_thread = std::thread([this] { thread_main(); });
    } catch (const std::system_error& e) {
        return make_error("vCPU {}: cannot start its thread: {}", m_vcpu->id(), e.what());
    }
    return {};
}

void VcpuRunner::kick() {
    m_vcpu->set_immediate_exit(true);
    if (m_thread_running) pthread_kill(m_pthread.load(), kick_signal());
}

void VcpuRunner::resume() {
    std::lock_guard lock(m_lock);
    if (m_requested == VcpuState::kExited) return;
    m_requested = VcpuState::kRunning;
    m_cv.notify_all();
}

void VcpuRunner::pause() {
    std::unique_lock lock(m_lock);
    if (m_requested == VcpuState::kExited) return;
    m_requested = VcpuState::kPaused;
    kick();
    m_cv.notify_all();
    m_cv.wait(lock, [this] { return m_state != VcpuState::kRunning; });
}

void VcpuRunner::exit() {
    std::lock_guard lock(m_lock);
    m_requested = VcpuState::kExited;
    kick();
    m_cv.notify_all();
}

void VcpuRunner::join() {
    if (m_thread.joinable()) m_thread.join();
}

VcpuState VcpuRunner::state() const {
    std::lock_guard lock(m_lock);
    return m_state;
}

std::array<uint64_t, VcpuRunner::kExitReasons> VcpuRunner::exit_counts() const {
    std::array<uint64_t, kExitReasons> out{};
    for (size_t i = 0; i < kExitReasons; ++i)
        out[i] = m_exits[i];
    return out;
}

Status VcpuRunner::run_paused(const std::function<Status(kvm::Vcpu&)>& fn) {
    std::promise<Status> done;
    auto result = done.get_future();
    {
        std::lock_guard lock(m_lock);
        // Before start() there is no thread, and nothing runs the vCPU: run here.
        if (!m_thread.joinable()) return fn(*m_vcpu);
        if (m_state == VcpuState::kExited) return make_error("vCPU {}: its thread has exited", m_vcpu->id());
        if (m_state != VcpuState::kPaused || m_requested != VcpuState::kPaused)
            return make_error("vCPU {}: not paused ({})", m_vcpu->id(), to_string(m_state));
        m_tasks.push_back([&] { done.set_value(fn(*m_vcpu)); });
        m_cv.notify_all();
    }
    return result.get();
}

void VcpuRunner::thread_main() {
    m_pthread = pthread_self();
    m_thread_running = true;
    char name[16];
    std::snprintf(name, sizeof name, "vcpu%u", m_vcpu->id());
    pthread_setname_np(pthread_self(), name);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kick_signal());
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);

    std::unique_lock lock(m_lock);
    for (;;) {
        while (!m_tasks.empty()) {
            auto task = std::move(m_tasks.front());
            m_tasks.pop_front();
            lock.unlock();
            task();
            lock.lock();
        }
        VcpuState requested = m_requested;
        if (requested == VcpuState::kExited) break;
        if (requested == VcpuState::kRunning) {
            m_state = VcpuState::kRunning;
            m_cv.notify_all();
            lock.unlock();
            run_loop();
            lock.lock();
            m_state = VcpuState::kPaused;
            m_cv.notify_all();
            continue;
        }
        m_cv.wait(lock, [this] { return !m_tasks.empty() || m_requested != VcpuState::kPaused; });
    }
    m_state = VcpuState::kExited;
    m_thread_running = false;
    m_cv.notify_all();
}

void VcpuRunner::complete_pending_io() {
    if (!m_io_pending) return;
    m_io_pending = false;
    // api.rst: with immediate_exit set, KVM_RUN finishes the pending I/O instruction and returns
    // EINTR without running guest code.
    m_vcpu->set_immediate_exit(true);
    if (auto s = m_vcpu->run(); !s.ok())
        log::get("vmm").warn("vCPU {}: completing I/O before pause: {}", m_vcpu->id(), s.error().message());
    m_vcpu->set_immediate_exit(false);
}

void VcpuRunner::run_loop() {
    kvm_run* run = m_vcpu->run_state();
    std::span<uint8_t> run_area(reinterpret_cast<uint8_t*>(run), m_vcpu->run_size());
    KvmVcpuInspector inspector(*m_vcpu, m_memory);
    while (m_requested == VcpuState::kRunning) {
        if (auto s = m_vcpu->run(); !s.ok()) {
            m_requested = VcpuState::kPaused;
            m_on_stop(m_vcpu->id(), {ExitAction::kFatal, s.error().message()});
            return;
        }
        uint32_t reason = run->exit_reason;
        ++m_exits[std::min<size_t>(reason, kExitReasons - 1)];
        ExitResult result = handle_exit(run_area, m_vcpu->id(), m_buses, inspector);
        m_io_pending = reason == KVM_EXIT_IO || reason == KVM_EXIT_MMIO;
        if (result.action == ExitAction::kInterrupted) {
            m_vcpu->set_immediate_exit(false);
        } else if (result.action != ExitAction::kContinue) {
            // Power-off, reset or fatal: this vCPU stops running guest code and says why.
            {
                std::lock_guard lock(m_lock);
                if (m_requested == VcpuState::kRunning) m_requested = VcpuState::kPaused;
            }
            m_on_stop(m_vcpu->id(), result);
            break;
        }
    }
    complete_pending_io();
}

}  // namespace vireo::vmm
