// The interface the control API drives: the real VMM implements it, tests use a fake.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace vireo::vmm::api {

// The VM lifecycle seen through the API:
//   created -> running <-> paused;  running -> shutting-down -> stopped;  any -> stopped.
enum class VmState { kCreated, kRunning, kPaused, kShuttingDown, kStopped };

std::string_view to_string(VmState state);

struct VmInfo {
    std::string id;
    VmState state = VmState::kCreated;
    nlohmann::json config = nlohmann::json::object();  // the VM's configuration as given
    uint64_t uptime_ms = 0;                            // since the vCPUs first ran
    uint32_t vcpus = 0;
    uint64_t memory_mib = 0;
};

struct VcpuCounters {
    uint32_t id = 0;
    std::map<std::string, uint64_t> exits;  // by reason: "io", "mmio", "hlt", ...
};

struct DeviceCounters {
    std::string name;  // "serial", "virtio-blk0", ...
    uint64_t bytes = 0;
    uint64_t requests = 0;
    uint64_t errors = 0;
    nlohmann::json details = nlohmann::json::object();  // device-specific counters, reported as well
};

struct VmCounters {
    std::vector<VcpuCounters> vcpus;
    std::vector<DeviceCounters> devices;
    uint64_t rss_bytes = 0;
};

struct SnapshotOptions {
    std::string destination;  // a directory; created if missing, must be empty if it exists
    // After writing: true resumes, false stays paused. Unset: the VM returns to the state it
    // had before the request (a running VM resumes, a paused one stays paused).
    std::optional<bool> resume;
};

struct SnapshotResult {
    std::string destination;
    uint64_t memory_bytes = 0;  // bytes of guest memory written (touched pages)
    uint64_t total_bytes = 0;   // disk space the snapshot takes
    uint64_t pause_ms = 0;      // how long the vCPUs were paused for it
};

// Why a control operation was refused; maps to an HTTP status in the router.
enum class ControlFailure {
    kInvalid,     // 400: a field's value is unusable (destination not a directory, ...)
    kWrongState,  // 409: the operation does not apply in the current state
    kFailed,      // 500: the host failed (disk full, KVM error)
};

struct ControlError {
    ControlFailure kind;
    std::string message;
};

// A value or a ControlError.
template <typename T>
class ControlResult {
  public:
    ControlResult(T value) : m_v(std::move(value)) {}
    ControlResult(ControlError error) : m_v(std::move(error)) {}
    bool ok() const { return m_v.index() == 0; }
    const T& value() const { return std::get<0>(m_v); }
    const ControlError& error() const { return std::get<1>(m_v); }

  private:
    std::variant<T, ControlError> m_v;
};

struct Done {};
using ControlStatus = ControlResult<Done>;

inline ControlError wrong_state(std::string message) {
    return {ControlFailure::kWrongState, std::move(message)};
}

// Called by the API thread, one request at a time. Implementations never block on the guest:
// shutdown() presses the power button and returns; the state moves to stopped when the guest
// powers off.
class VmController {
  public:
    virtual ~VmController() = default;

    virtual VmInfo info() = 0;
    virtual ControlStatus pause() = 0;
    virtual ControlStatus resume() = 0;
    virtual ControlStatus shutdown() = 0;   // ACPI power button
    virtual ControlStatus power_off() = 0;  // immediate stop
    virtual ControlStatus reboot() = 0;
    virtual VmCounters counters() = 0;
    virtual ControlResult<SnapshotResult> snapshot(const SnapshotOptions& options) = 0;
};

}  // namespace vireo::vmm::api
