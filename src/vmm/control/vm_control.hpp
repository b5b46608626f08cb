// VmControl: the VMM's side of the control API. It implements api::VmController over the
// current Vm (a reboot replaces it), keeps the API's view of the lifecycle, and writes
// snapshots.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>

#include "kvm/kvm.hpp"
#include "vmm/api/vm_controller.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vm.hpp"

namespace vireo::vmm {

class VmControl final : public api::VmController {
  public:
    // `config` is what GET /api/v1/vm reports; `id` names this VM instance.
    VmControl(std::string id, VmConfig config, const kvm::System& kvm, EventLoop& loop);

    // The main thread hands over each Vm after starting it and takes it back (detach) before
    // destroying it; calls in between are serialized with API requests.
    void attach(Vm* vm);
    void detach();
    // The VMM is exiting: the API reports stopped from now on.
    void set_stopped();
    // Whether vm.reboot asked for the restart that ended the current Vm (then the VMM boots
    // again whatever --on-reboot says). Clears the request.
    bool take_reboot_request();

    api::VmInfo info() override;
    api::ControlStatus pause() override;
    api::ControlStatus resume() override;
    api::ControlStatus shutdown() override;
    api::ControlStatus power_off() override;
    api::ControlStatus reboot() override;
    api::VmCounters counters() override;
    api::ControlResult<api::SnapshotResult> snapshot(const api::SnapshotOptions& options) override;

  private:
    api::VmState state_locked() const;

    const std::string m_id;
    const VmConfig m_config;
    const kvm::System& m_kvm;
    EventLoop& m_loop;

    // Lock order: m_lock, then the Vm's own locks. Held for a whole API operation, so the main
    // thread cannot destroy the Vm under it.
    mutable std::mutex m_lock;
    std::condition_variable m_cv;
    Vm* m_vm = nullptr;
    uint64_t m_generation = 0;  // Vms attached so far
    bool m_stopped = false;
    bool m_power_off = false;         // vm.power-off was accepted
    bool m_shutdown = false;          // vm.shutdown pressed the power button of the current Vm
    bool m_reboot_requested = false;  // vm.reboot was accepted; the next Vm is on its way
    int64_t m_first_start_ns = 0;     // CLOCK_MONOTONIC when the first Vm started
};

}  // namespace vireo::vmm
