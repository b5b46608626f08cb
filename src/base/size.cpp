// Size parsing and formatting.
#include "base/size.hpp"

#include <cctype>
#include <cmath>
#include <limits>

namespace vireo {

Result<uint64_t> parse_size(std::string_view text) {
    std::string_view s = text;
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    if (s.empty()) return make_error("invalid size '{}': empty", text);

    size_t i = 0;
    uint64_t whole = 0;
    bool any_digit = false;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
        unsigned digit = static_cast<unsigned>(s[i] - '0');
        if (whole > (std::numeric_limits<uint64_t>::max() - digit) / 10) {
            return make_error("invalid size '{}': too large", text);
        }
        whole = whole * 10 + digit;
        any_digit = true;
        ++i;
    }
    uint64_t frac_num = 0, frac_den = 1;
    if (i < s.size() && s[i] == '.') {
        ++i;
        if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) {
            return make_error("invalid size '{}': expected digits after '.'", text);
        }
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
            if (frac_den < 1'000'000'000'000ULL) {
                frac_num = frac_num * 10 + static_cast<uint64_t>(s[i] - '0');
                frac_den *= 10;
            }
            any_digit = true;
            ++i;
        }
    }
    if (!any_digit) return make_error("invalid size '{}': expected a number", text);

    std::string_view suffix = s.substr(i);
    while (!suffix.empty() && std::isspace(static_cast<unsigned char>(suffix.front())))
        suffix.remove_prefix(1);
    unsigned shift = 0;
    if (!suffix.empty()) {
        switch (std::toupper(static_cast<unsigned char>(suffix.front()))) {
            case 'B':
                shift = 0;
                break;
            case 'K':
                shift = 10;
                break;
            case 'M':
                shift = 20;
                break;
            case 'G':
                shift = 30;
                break;
            case 'T':
                shift = 40;
                break;
            case 'P':
                shift = 50;
                break;
            case 'E':
                shift = 60;
                break;
            default:
                return make_error("invalid size '{}': unknown suffix '{}'", text, suffix);
        }
        std::string_view rest = suffix.substr(1);
        bool unit_b = std::toupper(static_cast<unsigned char>(suffix.front())) == 'B';
        if (!unit_b) {
            if (rest == "iB" || rest == "ib" || rest == "IB" || rest == "B" || rest == "b") rest = {};
        }
        if (!rest.empty()) return make_error("invalid size '{}': unknown suffix '{}'", text, suffix);
    }
    if (shift > 0 && whole > (std::numeric_limits<uint64_t>::max() >> shift)) {
        return make_error("invalid size '{}': too large", text);
    }
    uint64_t bytes = whole << shift;
    if (frac_num != 0) {
        // frac_num / frac_den * 2^shift must be a whole number of bytes.
        unsigned __int128 scaled = static_cast<unsigned __int128>(frac_num) << shift;
        if (scaled % frac_den != 0) return make_error("invalid size '{}': not a whole number of bytes", text);
        unsigned __int128 total = static_cast<unsigned __int128>(bytes) + scaled / frac_den;
        if (total > std::numeric_limits<uint64_t>::max())
            return make_error("invalid size '{}': too large", text);
        bytes = static_cast<uint64_t>(total);
    }
    return bytes;
}

std::string format_size(uint64_t bytes) {
    static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned unit = 0;
    while (unit + 1 < std::size(kUnits) && bytes >= (uint64_t{1} << (10 * (unit + 1))))
        ++unit;
    if (unit == 0) return fmt::format("{} B", bytes);
    uint64_t base = uint64_t{1} << (10 * unit);
    if (bytes % base == 0) return fmt::format("{} {}", bytes / base, kUnits[unit]);
    return fmt::format("{:.3g} {}", static_cast<double>(bytes) / static_cast<double>(base), kUnits[unit]);
}

}  // namespace vireo
