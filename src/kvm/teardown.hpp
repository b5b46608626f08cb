// Deferred VM teardown.
//
// KVM destroys a VM when the last reference to its file is dropped, and that destruction waits
// for SRCU grace periods (the in-kernel PIT leaving tick reinjection, the I/O buses losing their
// devices) that cost milliseconds each — tens of them on nested or emulated KVM, more than the
// whole rest of a short VM's life (bench/startup.sh). A vireo-vmm that is done with its VM hands
// the last reference to a short-lived child process, so its exit status reaches the caller (a
// shell, vireod) without waiting for the kernel's cleanup, which then runs beside it. QEMU's
// asynchronous teardown option (-async-teardown) does the same for guest memory.
//
// The child holds nothing else: before hand_off_teardown returns, the child has closed its copy
// of every other descriptor (terminal, tap, disk images with their locks, sockets), so whoever
// restarts the VM at once finds them free and a reader of the VMM's output sees end-of-file when
// the VMM exits. Only for a process about to exit: the child is reaped by init (or the nearest
// subreaper) once this process is gone.
#pragma once

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo::kvm {

// Takes a descriptor of the VM file (a dup of kvm::Vm::fd()) and hands it to the child. When the
// child cannot be made, the error says why and `vm_file` is simply closed: the caller's own last
// close then tears the VM down as usual.
Status hand_off_teardown(UniqueFd vm_file);

}  // namespace vireo::kvm
