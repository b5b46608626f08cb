// GuestErrorCounter: counts a guest's mistakes on one device and logs the first of each kind,
// so a looping guest can neither crash the VMM nor flood its log.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace vireo::devices::pci {

class GuestErrorCounter {
  public:
    explicit GuestErrorCounter(std::string device) : m_device(std::move(device)) {}

    // Counts one mistake of kind `kind`; the first of each kind is logged (warn) with detail.
    // Not thread-safe: call under the device's lock.
    void report(std::string_view kind, std::string_view detail = {});
    uint64_t count() const { return m_count; }
    void rename(std::string device) { m_device = std::move(device); }

  private:
    std::string m_device;
    uint64_t m_count = 0;
    std::vector<std::string> m_logged;  // kinds already logged; bounded by the code's kinds
};

}  // namespace vireo::devices::pci
