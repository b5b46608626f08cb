// Handling of one KVM exit: a plain function of the kvm_run area and the buses, so tests feed
// it made-up exits. Port I/O and MMIO go to the buses (unclaimed addresses are logged once and
// read as all ones); power-off, reset and fatal conditions come back as actions for the vCPU
// loop; an emulation failure or internal error reports RIP and the instruction bytes.
#pragma once

#include <linux/kvm.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_set>
#include <vector>

#include "devices/bus.hpp"

namespace vireo::vmm {

// Counts accesses no device claimed and logs the first one at each address (a guest probing for
// hardware is normal; a flood of identical warnings is not).
class UnclaimedAccessLog {
  public:
    static constexpr size_t kMaxLoggedAddresses = 1024;

    explicit UnclaimedAccessLog(std::string space) : m_space(std::move(space)) {}
    void record(uint64_t addr, size_t size, bool is_write, uint64_t value);
    uint64_t count() const { return m_count; }
    // Whether an access at addr was logged (tests).
    bool logged(uint64_t addr) const;

  private:
    std::string m_space;  // "port", "MMIO"
    std::atomic<uint64_t> m_count{0};
    std::atomic<bool> m_full{false};
    mutable std::mutex m_lock;
    std::unordered_set<uint64_t> m_seen;
};

// What the exit handler needs from the vCPU to explain a failure.
class VcpuInspector {
  public:
    virtual ~VcpuInspector() = default;
    virtual std::optional<uint64_t> rip() = 0;
    // Up to 15 bytes at CS:RIP (empty if they cannot be read).
    virtual std::vector<uint8_t> instruction_bytes() = 0;
};

enum class ExitAction {
    kContinue,     // run the vCPU again
    kInterrupted,  // KVM_RUN was kicked: look at pending commands
    kPowerOff,     // the guest powered the machine off
    kReset,        // the guest reset the machine (or triple-faulted)
    kFatal,        // the VM cannot go on; message says why
};

struct ExitResult {
    ExitAction action = ExitAction::kContinue;
    std::string message;
};

struct ExitBuses {
    const devices::Bus& pio;
    const devices::Bus& mmio;
    UnclaimedAccessLog& unclaimed_pio;
    UnclaimedAccessLog& unclaimed_mmio;
};

// `run_area` is the vCPU's whole kvm_run mapping (port I/O data lives past struct kvm_run).
ExitResult handle_exit(std::span<uint8_t> run_area, uint32_t vcpu_id, const ExitBuses& buses,
                       VcpuInspector& inspector);

}  // namespace vireo::vmm
