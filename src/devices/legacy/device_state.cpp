// Snapshot helpers for the legacy devices.
#include "devices/legacy/device_state.hpp"

#include <fmt/format.h>

namespace vireo::devices {

std::string bytes_to_hex(const uint8_t* data, size_t size) {
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string out;
    out.reserve(size * 2);
    for (size_t i = 0; i < size; ++i) {
        out.push_back(kDigits[data[i] >> 4]);
        out.push_back(kDigits[data[i] & 0xF]);
    }
    return out;
}

StateReader::StateReader(const nlohmann::json& state, std::string_view device, int version)
    : m_state(state), m_device(device) {
    if (!m_state.is_object()) {
        fail("state is not a JSON object");
        return;
    }
    auto it = m_state.find("version");
    if (it == m_state.end() || !it->is_number_integer()) {
        fail("state has no integer \"version\"");
        return;
    }
    if (it->get<int64_t>() != version) {
        fail(fmt::format("state version {} is not the supported version {}", it->dump(), version));
    }
}

void StateReader::fail(std::string message) {
    if (!m_error) m_error = std::move(message);
}

const nlohmann::json* StateReader::field(std::string_view key) {
    if (!ok()) return nullptr;
    auto it = m_state.find(std::string(key));
    if (it == m_state.end()) {
        fail(fmt::format("field \"{}\" is missing", key));
        return nullptr;
    }
    return &*it;
}

uint64_t StateReader::number(std::string_view key, uint64_t max) {
    const nlohmann::json* value = field(key);
    if (value == nullptr) return 0;
    if (!value->is_number_unsigned() && !(value->is_number_integer() && value->get<int64_t>() >= 0)) {
        fail(fmt::format("field \"{}\" is not an unsigned integer", key));
        return 0;
    }
    uint64_t v = value->get<uint64_t>();
    if (v > max) {
        fail(fmt::format("field \"{}\" = {} exceeds {}", key, v, max));
        return 0;
    }
    return v;
}

int64_t StateReader::signed_number(std::string_view key) {
    const nlohmann::json* value = field(key);
    if (value == nullptr) return 0;
    if (!value->is_number_integer() ||
        (value->is_number_unsigned() &&
         value->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))) {
        fail(fmt::format("field \"{}\" is not a 64-bit integer", key));
        return 0;
    }
    return value->get<int64_t>();
}

bool StateReader::boolean(std::string_view key) {
    const nlohmann::json* value = field(key);
    if (value == nullptr) return false;
    if (!value->is_boolean()) {
        fail(fmt::format("field \"{}\" is not a boolean", key));
        return false;
    }
    return value->get<bool>();
}

std::vector<uint8_t> StateReader::bytes(std::string_view key, size_t max_size,
                                        std::optional<size_t> exact_size) {
    const nlohmann::json* value = field(key);
    if (value == nullptr) return {};
    if (!value->is_string()) {
        fail(fmt::format("field \"{}\" is not a hex string", key));
        return {};
    }
    const std::string& text = value->get_ref<const std::string&>();
    if (text.size() % 2 != 0) {
        fail(fmt::format("field \"{}\" has an odd number of hex digits", key));
        return {};
    }
    size_t size = text.size() / 2;
    if (size > max_size || (exact_size && size != *exact_size)) {
        fail(fmt::format("field \"{}\" holds {} bytes, expected {} {}", key, size,
                         exact_size ? "exactly" : "at most", exact_size.value_or(max_size)));
        return {};
    }
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    std::vector<uint8_t> out(size);
    for (size_t i = 0; i < size; ++i) {
        int hi = digit(text[2 * i]);
        int lo = digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            fail(fmt::format("field \"{}\" has a non-hex character", key));
            return {};
        }
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

Status StateReader::status() const {
    if (m_error) return make_error("{}: cannot restore state: {}", m_device, *m_error);
    return {};
}

}  // namespace vireo::devices
