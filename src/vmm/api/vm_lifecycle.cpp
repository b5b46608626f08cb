// The control API's state rules: created -> running <-> paused -> shutting-down -> stopped.
#include "vmm/api/vm_lifecycle.hpp"

#include <fmt/format.h>

namespace vireo::vmm::api {
namespace {

std::string_view describe(VmState s) {
    switch (s) {
        case VmState::kCreated:
            return "not started yet (created)";
        case VmState::kRunning:
            return "running";
        case VmState::kPaused:
            return "paused";
        case VmState::kShuttingDown:
            return "shutting down";
        case VmState::kStopped:
            return "stopped";
    }
    return "in an unknown state";
}

ControlStatus refuse(std::string_view op, VmState state, std::string_view hint = {}) {
    return wrong_state(fmt::format("cannot {} the VM: it is {}{}", op, describe(state), hint));
}

}  // namespace

ControlStatus may_pause(VmState s) {
    if (s == VmState::kRunning) return Done{};
    if (s == VmState::kPaused) return wrong_state("cannot pause the VM: it is already paused");
    return refuse("pause", s);
}

ControlStatus may_resume(VmState s) {
    if (s == VmState::kPaused || s == VmState::kCreated) return Done{};
    if (s == VmState::kRunning) return wrong_state("cannot resume the VM: it is already running");
    return refuse("resume", s);
}

ControlStatus may_shutdown(VmState s) {
    if (s == VmState::kRunning) return Done{};
    if (s == VmState::kPaused)
        return refuse("shut down", s, " (resume it first: a paused guest cannot react to the power button)");
    if (s == VmState::kShuttingDown)
        return wrong_state("cannot shut down the VM: it is already shutting down");
    return refuse("shut down", s);
}

ControlStatus may_power_off(VmState s) {
    if (s != VmState::kStopped) return Done{};
    return wrong_state("cannot power off the VM: it is already stopped");
}

ControlStatus may_reboot(VmState s) {
    if (s == VmState::kRunning || s == VmState::kPaused) return Done{};
    return refuse("reboot", s);
}

ControlStatus may_snapshot(VmState s) {
    if (s == VmState::kRunning || s == VmState::kPaused) return Done{};
    return refuse("snapshot", s);
}

}  // namespace vireo::vmm::api
