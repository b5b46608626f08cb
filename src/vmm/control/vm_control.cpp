// The control API's operations on the running VMM.
#include "vmm/control/vm_control.hpp"

#include <time.h>

#include <chrono>
#include <map>

#include <fmt/format.h>

#include "base/log.hpp"
#include "vmm/api/vm_lifecycle.hpp"
#include "vmm/control/config_json.hpp"
#include "vmm/control/exit_reasons.hpp"
#include "vmm/control/snapshot_writer.hpp"
#include "vmm/pci_devices.hpp"

namespace vireo::vmm {
namespace {

// How long vm.reboot waits for the new VM to run before answering anyway.
constexpr std::chrono::seconds kRebootWait{30};
// The loop thread answers at once unless a snapshot is draining disks.
constexpr std::chrono::milliseconds kCountersWait{2000};

int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

api::ControlError failed(const Error& e) {
    return {api::ControlFailure::kFailed, e.message()};
}

// Between states the Vm may be absent (being built, or replaced by a reboot).
api::ControlStatus need_vm(const Vm* vm) {
    if (vm == nullptr) return api::wrong_state("the VM is being built; try again in a moment");
    return api::Done{};
}

}  // namespace

VmControl::VmControl(std::string id, VmConfig config, const kvm::System& kvm, EventLoop& loop)
    : m_id(std::move(id)), m_config(std::move(config)), m_kvm(kvm), m_loop(loop) {}

void VmControl::attach(Vm* vm) {
    std::lock_guard lock(m_lock);
    m_vm = vm;
    ++m_generation;
    m_reboot_requested = false;
    m_shutdown = false;
    if (m_first_start_ns == 0) m_first_start_ns = monotonic_ns();
    m_cv.notify_all();
}

void VmControl::detach() {
    std::lock_guard lock(m_lock);
    m_vm = nullptr;
    m_cv.notify_all();
}

void VmControl::set_stopped() {
    std::lock_guard lock(m_lock);
    m_vm = nullptr;
    m_stopped = true;
    m_cv.notify_all();
}

bool VmControl::take_reboot_request() {
    std::lock_guard lock(m_lock);
    return std::exchange(m_reboot_requested, false);
}

api::VmState VmControl::state_locked() const {
    if (m_stopped || m_power_off) return api::VmState::kStopped;
    if (m_vm == nullptr) return m_reboot_requested ? api::VmState::kShuttingDown : api::VmState::kCreated;
    if (m_reboot_requested) return api::VmState::kShuttingDown;  // the old Vm is on its way out
    switch (m_vm->state()) {
        case VmState::kCreated:
            return api::VmState::kCreated;
        case VmState::kRunning:
            return m_shutdown ? api::VmState::kShuttingDown : api::VmState::kRunning;
        case VmState::kPaused:
            return api::VmState::kPaused;
        case VmState::kShuttingDown:
            return api::VmState::kShuttingDown;
        case VmState::kStopped:
            return api::VmState::kStopped;
    }
    return api::VmState::kStopped;
}

api::VmInfo VmControl::info() {
    std::lock_guard lock(m_lock);
    api::VmInfo i;
    i.id = m_id;
    i.state = state_locked();
    i.config = to_json(m_config);
    i.uptime_ms =
        m_first_start_ns == 0 ? 0 : static_cast<uint64_t>(monotonic_ns() - m_first_start_ns) / 1'000'000;
    i.vcpus = m_config.cpus;
    i.memory_mib = m_config.memory_mib;
    return i;
}

api::ControlStatus VmControl::pause() {
    std::lock_guard lock(m_lock);
    if (auto s = api::may_pause(state_locked()); !s.ok()) return s;
    if (auto s = need_vm(m_vm); !s.ok()) return s;
    if (auto s = m_vm->pause(); !s.ok()) return failed(s.error());
    log::get("api").info("VM paused");
    return api::Done{};
}

api::ControlStatus VmControl::resume() {
    std::lock_guard lock(m_lock);
    if (auto s = api::may_resume(state_locked()); !s.ok()) return s;
    if (auto s = need_vm(m_vm); !s.ok()) return s;
    if (auto s = m_vm->resume(); !s.ok()) return failed(s.error());
    log::get("api").info("VM resumed");
    return api::Done{};
}

api::ControlStatus VmControl::shutdown() {
    std::lock_guard lock(m_lock);
    if (auto s = api::may_shutdown(state_locked()); !s.ok()) return s;
    if (auto s = need_vm(m_vm); !s.ok()) return s;
    bool sci = m_vm->press_power_button();
    m_shutdown = true;  // until the guest powers off; the VMM then exits
    log::get("api").info("ACPI power button pressed{}",
                         sci ? "" : " (the guest has not enabled its interrupt)");
    return api::Done{};
}

api::ControlStatus VmControl::power_off() {
    std::lock_guard lock(m_lock);
    if (auto s = api::may_power_off(state_locked()); !s.ok()) return s;
    m_power_off = true;
    // vCPUs are kicked out of guest code at once; the main thread then ends the VMM.
    if (m_vm != nullptr)
        m_vm->request_stop({StopReason::kQuit, "powered off through the API", 0});
    else
        m_loop.stop();
    return api::Done{};
}

api::ControlStatus VmControl::reboot() {
    std::unique_lock lock(m_lock);
    if (auto s = api::may_reboot(state_locked()); !s.ok()) return s;
    if (auto s = need_vm(m_vm); !s.ok()) return s;
    m_reboot_requested = true;
    uint64_t generation = m_generation;
    m_vm->request_stop({StopReason::kReset, "rebooted through the API", 0});
    // Answer once the new VM runs (the main thread builds it), so the reply shows it.
    m_cv.wait_for(lock, kRebootWait, [&] { return m_generation != generation || m_stopped; });
    return api::Done{};
}

api::VmCounters VmControl::counters() {
    std::lock_guard lock(m_lock);
    api::VmCounters c;
    c.rss_bytes = process_rss_bytes();
    if (m_vm == nullptr) return c;
    for (VcpuRunner* v : m_vm->vcpus()) {
        api::VcpuCounters vc;
        vc.id = v->id();
        auto counts = v->exit_counts();
        for (uint32_t reason = 0; reason < counts.size(); ++reason) {
            if (counts[reason] != 0) vc.exits[std::string(exit_reason_name(reason))] += counts[reason];
        }
        c.vcpus.push_back(std::move(vc));
    }
    for (const DeviceStats& d : m_vm->device_stats())
        c.devices.push_back({d.name, d.bytes, d.requests, d.errors});
    // Virtio devices count on the loop thread, where their requests run: read them there.
    nlohmann::json pci = nlohmann::json::array();
    Vm* vm = m_vm;
    if (auto s = m_loop.call([&] { pci = vm->pci().counters(); }, kCountersWait); !s.ok()) {
        log::get("api").warn("vm.counters: virtio devices left out: {}", s.error().message());
        return c;
    }
    std::map<std::string, int> per_type;
    for (auto& fn : pci) {
        // "virtio-blk0", "virtio-net0", ... in the order of the command line.
        std::string type = fn.value("type", "device");
        std::string name = fmt::format("virtio-{}{}", type == "block" ? "blk" : type, per_type[type]++);
        auto number = [&](const char* key) {
            auto it = fn.find(key);
            return it != fn.end() && it->is_number_unsigned() ? it->get<uint64_t>() : uint64_t{0};
        };
        api::DeviceCounters d{name, number("bytes"), number("requests"), number("errors"), fn};
        d.details.erase("type");
        d.details["description"] = d.details.value("name", "");
        d.details.erase("name");
        c.devices.push_back(std::move(d));
    }
    return c;
}

api::ControlResult<api::SnapshotResult> VmControl::snapshot(const api::SnapshotOptions& options) {
    std::lock_guard lock(m_lock);
    api::VmState before = state_locked();
    if (auto s = api::may_snapshot(before); !s.ok()) return s.error();
    if (auto s = need_vm(m_vm); !s.ok()) return s.error();
    auto created = prepare_snapshot_dir(options.destination);
    if (!created.ok()) return api::ControlError{api::ControlFailure::kInvalid, created.error().message()};

    Vm& vm = *m_vm;
    bool was_running = before == api::VmState::kRunning;
    bool resume_after = options.resume.value_or(was_running);
    int64_t t0 = monotonic_ns();
    auto fail = [&](const Error& e) -> api::ControlResult<api::SnapshotResult> {
        remove_partial_snapshot(options.destination, *created);
        if (vm.state() == VmState::kPaused && was_running) (void)vm.resume();
        log::get("api").error("snapshot to {} failed: {}", options.destination, e.message());
        return failed(e.context(fmt::format("snapshot to {}", options.destination)));
    };
    if (was_running) {
        if (auto s = vm.pause(); !s.ok()) return fail(s.error());
    }
    uint64_t memory_bytes = 0;
    if (auto s = write_paused_state(vm, m_loop, options.destination, &memory_bytes); !s.ok())
        return fail(s.error());
    if (resume_after) {
        if (auto s = vm.resume(); !s.ok()) return fail(s.error());
    }
    int64_t t1 = monotonic_ns();
    // Syncing and the manifest happen while the guest runs again.
    auto done = finish_snapshot(options.destination, to_json(m_config), m_kvm, vm, memory_bytes);
    if (!done.ok()) return fail(done.error());
    api::SnapshotResult r;
    r.destination = options.destination;
    r.memory_bytes = done->memory_bytes;
    r.total_bytes = done->total_bytes;
    r.pause_ms = static_cast<uint64_t>(t1 - t0) / 1'000'000;
    log::get("api").info("snapshot written to {}: {} bytes of memory, paused {} ms", r.destination,
                         r.memory_bytes, r.pause_ms);
    return r;
}

}  // namespace vireo::vmm
