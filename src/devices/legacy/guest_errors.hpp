// GuestErrors: counts a guest's mistakes on a device and logs each kind once (a guest's
// mistake is never a host error, and a looping guest must not flood the log).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vireo::devices {

class GuestErrors {
  public:
    explicit GuestErrors(std::string device) : m_device(std::move(device)) {}

    // Counts one mistake. `kind` names it ("write to read-only register"); the first report of
    // each kind is logged at warn level with `detail`. Not thread-safe: call under the
    // device's lock.
    void report(std::string_view kind, std::string_view detail = {});

    uint64_t count() const { return m_count; }
    void set_count(uint64_t count) { m_count = count; }

  private:
    std::string m_device;
    uint64_t m_count = 0;
    std::vector<std::string> m_logged;
};

}  // namespace vireo::devices
