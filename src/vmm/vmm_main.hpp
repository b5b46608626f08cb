// The vireo-vmm process: runs one VM in the foreground until it powers off, resets (and is not
// restarted), fails, or is told to quit, and turns that into an exit status.
#pragma once

#include "vmm/vm_config.hpp"

namespace vireo::vmm {

// Exit status: 0 when the guest powered off, reset with --on-reboot exit, or the user typed
// Ctrl-A x; 1 on any error (printed to stderr); 128 + signal number when a signal ended it.
int run_vmm(const VmConfig& config);

// `vireo-vmm` and `vireo run` share this entry: parses argv and runs.
int vmm_main(int argc, char** argv);

}  // namespace vireo::vmm
