// FakeVmController: a VmController with the real state rules and no KVM, for API tests.
#pragma once

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include "vmm/api/vm_controller.hpp"
#include "vmm/api/vm_lifecycle.hpp"

namespace vireo::testing {

// Follows vm_lifecycle's rules; shutdown() leaves the VM shutting down until the test calls
// guest_powered_off(). snapshot() writes a small manifest into the destination so tests can
// see that it ran. Safe to inspect from the test thread while the API thread drives it.
class FakeVmController final : public vmm::api::VmController {
  public:
    using VmState = vmm::api::VmState;

    explicit FakeVmController(VmState initial = VmState::kRunning) : m_state(initial) {}

    vmm::api::VmInfo info() override {
        std::lock_guard lock(m_mutex);
        ++m_info_calls;
        vmm::api::VmInfo i;
        i.id = "fake-vm";
        i.state = m_state;
        i.config = {{"cpus", 2}, {"memory_mib", 256}, {"kernel", "/fake/vmlinux"}};
        i.uptime_ms = 1234;
        i.vcpus = 2;
        i.memory_mib = 256;
        return i;
    }
    vmm::api::ControlStatus pause() override {
        return transition(vmm::api::may_pause, VmState::kPaused, m_pauses);
    }
    vmm::api::ControlStatus resume() override {
        return transition(vmm::api::may_resume, VmState::kRunning, m_resumes);
    }
    vmm::api::ControlStatus shutdown() override {
        return transition(vmm::api::may_shutdown, VmState::kShuttingDown, m_shutdowns);
    }
    vmm::api::ControlStatus power_off() override {
        return transition(vmm::api::may_power_off, VmState::kStopped, m_power_offs);
    }
    vmm::api::ControlStatus reboot() override {
        return transition(vmm::api::may_reboot, VmState::kRunning, m_reboots);
    }
    vmm::api::VmCounters counters() override {
        std::lock_guard lock(m_mutex);
        vmm::api::VmCounters c;
        c.vcpus.push_back({0, {{"io", 10}, {"mmio", 2}, {"hlt", 1}}});
        c.vcpus.push_back({1, {{"io", 3}}});
        c.devices.push_back({"serial", 120, 120, 0});
        // Device-specific counters come along; the three common ones are the struct's own.
        c.devices.push_back({"virtio-blk0", 4096, 8, 1, {{"write_requests", 3}, {"bytes", 999}}});
        c.rss_bytes = 5 << 20;
        return c;
    }
    vmm::api::ControlResult<vmm::api::SnapshotResult> snapshot(
        const vmm::api::SnapshotOptions& options) override {
        std::lock_guard lock(m_mutex);
        if (auto s = vmm::api::may_snapshot(m_state); !s.ok()) return s.error();
        if (::mkdir(options.destination.c_str(), 0700) != 0 && errno != EEXIST)
            return vmm::api::ControlError{
                vmm::api::ControlFailure::kInvalid,
                "snapshot destination " + options.destination + ": " + std::strerror(errno)};
        std::ofstream(options.destination + "/manifest.json") << "{\"fake\": true}\n";
        ++m_snapshots;
        bool was_running = m_state == VmState::kRunning;
        m_state = options.resume.value_or(was_running) ? VmState::kRunning : VmState::kPaused;
        return vmm::api::SnapshotResult{options.destination, 4096, 8192, 1};
    }

    // The guest finished shutting down (after the power button).
    void guest_powered_off() {
        std::lock_guard lock(m_mutex);
        m_state = VmState::kStopped;
    }
    VmState state() {
        std::lock_guard lock(m_mutex);
        return m_state;
    }
    int pauses() { return count(m_pauses); }
    int resumes() { return count(m_resumes); }
    int shutdowns() { return count(m_shutdowns); }
    int power_offs() { return count(m_power_offs); }
    int reboots() { return count(m_reboots); }
    int snapshots() { return count(m_snapshots); }
    int info_calls() { return count(m_info_calls); }
    // Every operation that changes something, summed: "a request changed nothing" checks.
    int mutations() {
        std::lock_guard lock(m_mutex);
        return m_pauses + m_resumes + m_shutdowns + m_power_offs + m_reboots + m_snapshots;
    }

  private:
    template <typename Rule>
    vmm::api::ControlStatus transition(Rule rule, VmState to, int& counter) {
        std::lock_guard lock(m_mutex);
        if (auto s = rule(m_state); !s.ok()) return s;
        m_state = to;
        ++counter;
        return vmm::api::Done{};
    }
    int count(const int& c) {
        std::lock_guard lock(m_mutex);
        return c;
    }

    std::mutex m_mutex;
    VmState m_state;
    int m_pauses = 0, m_resumes = 0, m_shutdowns = 0, m_power_offs = 0, m_reboots = 0, m_snapshots = 0,
        m_info_calls = 0;
};

}  // namespace vireo::testing
