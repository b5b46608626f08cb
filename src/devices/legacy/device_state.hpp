// Snapshot helpers for the legacy devices: typed reads of saved state that record the first
// problem (so restore_state() can validate everything before it changes anything), and byte
// strings stored as hex.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace vireo::devices {

// Hex text of bytes ("0a1b..."), the form FIFOs and RAM take in a snapshot.
std::string bytes_to_hex(const uint8_t* data, size_t size);
inline std::string bytes_to_hex(const std::vector<uint8_t>& bytes) {
    return bytes_to_hex(bytes.data(), bytes.size());
}

class StateReader {
  public:
    // Fails (status()) unless `state` is an object whose "version" equals `version`.
    StateReader(const nlohmann::json& state, std::string_view device, int version);

    // An unsigned integer field no larger than `max`.
    uint64_t number(std::string_view key, uint64_t max);
    // A signed 64-bit field.
    int64_t signed_number(std::string_view key);
    bool boolean(std::string_view key);
    // A hex byte string of at most `max_size` bytes (exactly `exact_size` when given).
    std::vector<uint8_t> bytes(std::string_view key, size_t max_size,
                               std::optional<size_t> exact_size = std::nullopt);

    bool ok() const { return !m_error.has_value(); }
    // The first problem found, naming the device and the field.
    Status status() const;

  private:
    const nlohmann::json* field(std::string_view key);
    void fail(std::string message);

    const nlohmann::json& m_state;
    std::string m_device;
    std::optional<std::string> m_error;
};

}  // namespace vireo::devices
