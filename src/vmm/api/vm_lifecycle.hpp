// Which control operations each VM state allows, shared by the VMM and test controllers.
#pragma once

#include "vmm/api/vm_controller.hpp"

namespace vireo::vmm::api {

// Each returns Done when `op` applies in `state`, otherwise a kWrongState error (409) that
// says what the state is and what would help.
ControlStatus may_pause(VmState state);
ControlStatus may_resume(VmState state);  // paused, or created (starts the vCPUs)
ControlStatus may_shutdown(VmState state);
ControlStatus may_power_off(VmState state);
ControlStatus may_reboot(VmState state);
ControlStatus may_snapshot(VmState state);

}  // namespace vireo::vmm::api
