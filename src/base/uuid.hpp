// 128-bit UUIDs (RFC 4122 version 4) for disk identities.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace vireo {

struct Uuid {
    std::array<uint8_t, 16> bytes{};

    static Uuid random();
    bool is_nil() const;
    // Canonical text form: 8-4-4-4-12 lowercase hex, bytes in stored order.
    std::string to_string() const;
    bool operator==(const Uuid&) const = default;
};

}  // namespace vireo
