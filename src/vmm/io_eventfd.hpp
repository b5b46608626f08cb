// IoEventFd: a guest write to an address (port or MMIO) that KVM turns into an eventfd signal
// without leaving the kernel; the I/O thread's event loop runs the handler. Virtio queue
// notifications use it so the vCPU never waits for the device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "kvm/kvm.hpp"
#include "vmm/event_loop.hpp"

namespace vireo::vmm {

class IoEventFd {
  public:
    struct Spec {
        uint64_t addr = 0;
        uint32_t len = 0;                   // 0 (any width), 1, 2, 4 or 8
        bool pio = false;                   // port I/O instead of MMIO
        std::optional<uint64_t> datamatch;  // only writes of this value
    };

    // Registers with KVM and with the loop (loop thread only). `on_signal` runs on the loop.
    static Result<std::unique_ptr<IoEventFd>> create(kvm::Vm& vm, EventLoop& loop, const Spec& spec,
                                                     std::function<void()> on_signal);
    ~IoEventFd();
    IoEventFd(const IoEventFd&) = delete;
    IoEventFd& operator=(const IoEventFd&) = delete;

    int fd() const { return m_fd.get(); }
    uint64_t signals() const { return m_signals; }

  private:
    IoEventFd(kvm::Vm& vm, EventLoop& loop, Spec spec, UniqueFd fd)
        : m_vm(vm), m_loop(loop), m_spec(spec), m_fd(std::move(fd)) {}
    kvm::Vm& m_vm;
    EventLoop& m_loop;
    Spec m_spec;
    UniqueFd m_fd;
    EventLoop::Token m_token = 0;
    bool m_registered = false;
    uint64_t m_signals = 0;
};

}  // namespace vireo::vmm
