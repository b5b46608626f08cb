// Snapshot helpers for the PCI and virtio devices: hex byte strings and a JSON field reader that
// records the first problem, so restore_state() validates everything before changing anything.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace vireo::devices::pci {

std::string bytes_to_hex(std::span<const uint8_t> bytes);
Result<std::vector<uint8_t>> hex_to_bytes(std::string_view hex);

class StateFields {
  public:
    // Fails unless `state` is an object whose "version" equals `version`.
    StateFields(const nlohmann::json& state, std::string what, int version);

    uint64_t number(std::string_view key, uint64_t max);
    bool boolean(std::string_view key);
    std::vector<uint8_t> bytes(std::string_view key, size_t exact_size);
    // A nested object or array (null json when missing; the error is recorded).
    const nlohmann::json& object(std::string_view key);
    const nlohmann::json& array(std::string_view key, size_t exact_size);

    bool ok() const { return !m_error.has_value(); }
    Status status() const;

  private:
    const nlohmann::json* field(std::string_view key);
    void fail(std::string message);

    const nlohmann::json& m_state;
    std::string m_what;
    std::optional<std::string> m_error;
};

}  // namespace vireo::devices::pci
