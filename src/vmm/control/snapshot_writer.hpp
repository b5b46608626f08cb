// Writing a snapshot of a paused Vm into a directory: manifest.json, vmstate.json (vCPUs,
// in-kernel devices, device models) and memory.bin (touched pages only, sparse).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "kvm/kvm.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vm.hpp"

namespace vireo::vmm {

struct SnapshotWriteResult {
    uint64_t memory_bytes = 0;  // guest pages written
    uint64_t total_bytes = 0;   // disk space of the snapshot's files
};

// Checks the destination before the VM is paused: a new directory (its parent must exist) or
// an empty one. Returns whether it was created (so a failed snapshot can remove it).
Result<bool> prepare_snapshot_dir(const std::string& dir);

// Everything that must happen while the VM is paused: device models and in-kernel device
// state read on the event loop thread (where device timers and I/O completions run, so no
// device changes while it is read), then vCPU state, then guest memory. Writes vmstate.json
// and memory.bin without syncing them.
Status write_paused_state(Vm& vm, EventLoop& loop, const std::string& dir, uint64_t* memory_bytes);

// After the VM runs again: syncs the files, then writes the manifest (atomically) last, so a
// directory without manifest.json is never mistaken for a snapshot.
Result<SnapshotWriteResult> finish_snapshot(const std::string& dir, const nlohmann::json& vm_config,
                                            const kvm::System& kvm, Vm& vm, uint64_t memory_bytes);

// Removes what a failed snapshot left (and the directory if it was created for it).
void remove_partial_snapshot(const std::string& dir, bool created);

}  // namespace vireo::vmm
