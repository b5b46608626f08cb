// Random UUIDs from getrandom().
#include "base/uuid.hpp"

#include <sys/random.h>

#include <fmt/format.h>
#include <algorithm>

namespace vireo {

Uuid Uuid::random() {
    Uuid u;
    size_t got = 0;
    while (got < u.bytes.size()) {
        ssize_t n = ::getrandom(u.bytes.data() + got, u.bytes.size() - got, 0);
        if (n > 0) got += static_cast<size_t>(n);
    }
    u.bytes[6] = static_cast<uint8_t>((u.bytes[6] & 0x0f) | 0x40);  // version 4
    u.bytes[8] = static_cast<uint8_t>((u.bytes[8] & 0x3f) | 0x80);  // RFC 4122 variant
    return u;
}

bool Uuid::is_nil() const {
    return std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; });
}

std::string Uuid::to_string() const {
    std::string s;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
        s += fmt::format("{:02x}", bytes[i]);
    }
    return s;
}

}  // namespace vireo
