// Snapshot helpers: hex strings and validated JSON field reads.
#include "devices/pci/state_util.hpp"

#include <fmt/format.h>

namespace vireo::devices::pci {

namespace {
const nlohmann::json kNull;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::string bytes_to_hex(std::span<const uint8_t> bytes) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (uint8_t b : bytes) {
        out.push_back(kDigits[b >> 4]);
        out.push_back(kDigits[b & 0xF]);
    }
    return out;
}

Result<std::vector<uint8_t>> hex_to_bytes(std::string_view hex) {
    if (hex.size() % 2 != 0) return make_error("hex string has an odd length ({})", hex.size());
    std::vector<uint8_t> out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return make_error("hex string has a bad digit at {}", 2 * i);
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

StateFields::StateFields(const nlohmann::json& state, std::string what, int version)
    : m_state(state), m_what(std::move(what)) {
    if (!state.is_object()) {
        fail("state is not an object");
        return;
    }
    auto it = state.find("version");
    if (it == state.end() || !it->is_number_integer() || it->get<int64_t>() != version)
        fail(fmt::format("state version is not {}", version));
}

const nlohmann::json* StateFields::field(std::string_view key) {
    if (!m_state.is_object()) return nullptr;
    auto it = m_state.find(key);
    if (it == m_state.end()) {
        fail(fmt::format("field \"{}\" is missing", key));
        return nullptr;
    }
    return &*it;
}

uint64_t StateFields::number(std::string_view key, uint64_t max) {
    const nlohmann::json* f = field(key);
    if (f == nullptr) return 0;
    if (!f->is_number_unsigned() && !(f->is_number_integer() && f->get<int64_t>() >= 0)) {
        fail(fmt::format("field \"{}\" is not an unsigned integer", key));
        return 0;
    }
    uint64_t v = f->get<uint64_t>();
    if (v > max) {
        fail(fmt::format("field \"{}\" = {} is larger than {}", key, v, max));
        return 0;
    }
    return v;
}

bool StateFields::boolean(std::string_view key) {
    const nlohmann::json* f = field(key);
    if (f == nullptr) return false;
    if (!f->is_boolean()) {
        fail(fmt::format("field \"{}\" is not a boolean", key));
        return false;
    }
    return f->get<bool>();
}

std::vector<uint8_t> StateFields::bytes(std::string_view key, size_t exact_size) {
    const nlohmann::json* f = field(key);
    if (f == nullptr) return {};
    if (!f->is_string()) {
        fail(fmt::format("field \"{}\" is not a string", key));
        return {};
    }
    auto bytes = hex_to_bytes(f->get_ref<const std::string&>());
    if (!bytes.ok()) {
        fail(fmt::format("field \"{}\": {}", key, bytes.error().message()));
        return {};
    }
    if (bytes->size() != exact_size) {
        fail(fmt::format("field \"{}\" holds {} bytes, not {}", key, bytes->size(), exact_size));
        return {};
    }
    return std::move(bytes).value();
}

const nlohmann::json& StateFields::object(std::string_view key) {
    const nlohmann::json* f = field(key);
    if (f == nullptr) return kNull;
    if (!f->is_object()) {
        fail(fmt::format("field \"{}\" is not an object", key));
        return kNull;
    }
    return *f;
}

const nlohmann::json& StateFields::array(std::string_view key, size_t exact_size) {
    const nlohmann::json* f = field(key);
    if (f == nullptr) return kNull;
    if (!f->is_array() || f->size() != exact_size) {
        fail(fmt::format("field \"{}\" is not an array of {} entries", key, exact_size));
        return kNull;
    }
    return *f;
}

void StateFields::fail(std::string message) {
    if (!m_error) m_error = std::move(message);
}

Status StateFields::status() const {
    if (!m_error) return {};
    return make_error("{} snapshot: {}", m_what, *m_error);
}

}  // namespace vireo::devices::pci
