// The vireo-vmm process: runs one VM in the foreground until it powers off, resets (and is not
// restarted), fails, or is told to quit, and turns that into an exit status.
#pragma once

#include "vmm/vm_config.hpp"

namespace vireo::vmm {

// Exit status: 0 when the guest powered off, reset with --on-reboot exit, or the user typed
// Ctrl-A x; 1 on any error (printed to stderr); 128 + signal number when a signal ended it.
// `restore_dir`: start from that snapshot (--restore) instead of booting config's kernel.
// For a process that exits right after: KVM's teardown of the last VM is handed to a child
// process (kvm/teardown.hpp), so the status is not held back by it.
int run_vmm(const VmConfig& config, const std::string& restore_dir = {});

// `vireo-vmm` and `vireo run` share this entry: parses argv and runs.
int vmm_main(int argc, char** argv);

}  // namespace vireo::vmm
