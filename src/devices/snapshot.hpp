// Device state that survives a snapshot: a device that keeps guest-visible state implements
// StatefulDevice so the VMM can save and restore it with the rest of the VM.
#pragma once

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace vireo::devices {

class StatefulDevice {
  public:
    virtual ~StatefulDevice() = default;
    // Everything the guest could observe: registers, FIFOs, pending interrupts, queue indexes.
    virtual nlohmann::json save_state() const = 0;
    // Refuses (with a clear error) state it does not understand; never half-applies it.
    virtual Status restore_state(const nlohmann::json& state) = 0;
};

}  // namespace vireo::devices
