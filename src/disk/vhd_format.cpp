// VHD structures: checksums, validation, geometry, size rules, text and locator decoding.
#include "disk/vhd_format.hpp"

#include <ctime>
#include <filesystem>
#include <span>

#include "base/checksum.hpp"

namespace vireo::disk::vhd {

namespace {

constexpr std::array<std::array<char, 4>, 5> kCurrentSizeCreators = {{
    {'w', 'i', 'n', ' '},   // Hyper-V, Windows disk management
    {'q', 'e', 'm', '2'},   // QEMU with force_size=on
    {'d', '2', 'v', ' '},   // Disk2vhd
    {'C', 'T', 'X', 'S'},   // Citrix XenConverter
    {'t', 'a', 'p', '\0'},  // XenServer blktap
}};

bool is_power_of_two(uint64_t v) {
    return v != 0 && (v & (v - 1)) == 0;
}

}  // namespace

Geometry chs_for_size(uint64_t size) {
    // VHD spec appendix "CHS Calculation", step by step.
    uint64_t total = size / kSectorSize;
    if (total > kMaxChsSectors) total = kMaxChsSectors;
    uint64_t sectors_per_track;
    uint64_t heads;
    uint64_t cylinder_times_heads;
    if (total >= 65535ULL * 16 * 63) {
        sectors_per_track = 255;
        heads = 16;
        cylinder_times_heads = total / sectors_per_track;
    } else {
        sectors_per_track = 17;
        cylinder_times_heads = total / sectors_per_track;
        heads = (cylinder_times_heads + 1023) / 1024;
        if (heads < 4) heads = 4;
        if (cylinder_times_heads >= heads * 1024 || heads > 16) {
            sectors_per_track = 31;
            heads = 16;
            cylinder_times_heads = total / sectors_per_track;
        }
        if (cylinder_times_heads >= heads * 1024) {
            sectors_per_track = 63;
            heads = 16;
            cylinder_times_heads = total / sectors_per_track;
        }
    }
    Geometry g;
    g.cylinders = static_cast<uint16_t>(cylinder_times_heads / heads);
    g.heads = static_cast<uint8_t>(heads);
    g.sectors_per_track = static_cast<uint8_t>(sectors_per_track);
    return g;
}

std::string_view size_rule_name(SizeRule rule) {
    switch (rule) {
        case SizeRule::kAuto:
            return "auto";
        case SizeRule::kChs:
            return "chs";
        case SizeRule::kCurrentSize:
            return "current_size";
    }
    return "?";
}

bool creator_uses_current_size(const std::array<char, 4>& app) {
    for (const auto& c : kCurrentSizeCreators) {
        if (c == app) return true;
    }
    return false;
}

SizeDecision decide_size(const Footer& footer, SizeRule requested) {
    Geometry g{footer.cylinders, footer.heads, footer.sectors_per_track};
    uint64_t current = footer.current_size.get() / kSectorSize * kSectorSize;
    SizeDecision d;
    switch (requested) {
        case SizeRule::kChs:
            return {g.bytes(), SizeRule::kChs, "CHS geometry requested"};
        case SizeRule::kCurrentSize:
            return {current, SizeRule::kCurrentSize, "current_size requested"};
        case SizeRule::kAuto:
            break;
    }
    std::string app = four_cc(footer.creator_app);
    if (creator_uses_current_size(footer.creator_app)) {
        return {current, SizeRule::kCurrentSize,
                fmt::format("creator application \"{}\" is sized by current_size", app)};
    }
    if (g.is_max()) {
        return {current, SizeRule::kCurrentSize, "geometry is the maximum 65535/16/255"};
    }
    if (g.sectors() == 0) {
        return {current, SizeRule::kCurrentSize, "geometry is zero"};
    }
    return {g.bytes(), SizeRule::kChs,
            fmt::format("creator application \"{}\" is sized by CHS geometry, as QEMU 7.2 reads it", app)};
}

uint32_t footer_checksum(const Footer& footer) {
    Footer copy = footer;
    copy.checksum = 0;
    return ones_complement_byte_sum({reinterpret_cast<const uint8_t*>(&copy), sizeof copy});
}

uint32_t header_checksum(const DynamicHeader& header) {
    DynamicHeader copy = header;
    copy.checksum = 0;
    return ones_complement_byte_sum({reinterpret_cast<const uint8_t*>(&copy), sizeof copy});
}

bool has_footer_cookie(std::span<const uint8_t> bytes) {
    return bytes.size() >= kFooterCookie.size() &&
           std::equal(kFooterCookie.begin(), kFooterCookie.end(), bytes.begin(),
                      [](char a, uint8_t b) { return static_cast<uint8_t>(a) == b; });
}

Result<Footer> parse_footer(std::span<const uint8_t> bytes, std::string_view what) {
    if (bytes.size() != kFooterSize && bytes.size() != kOldFooterSize) {
        return make_error("{}: {} bytes is not a footer", what, bytes.size());
    }
    Footer f{};
    std::memcpy(&f, bytes.data(), bytes.size());
    if (f.cookie != kFooterCookie) return make_error("{}: bad cookie (expected \"conectix\")", what);
    uint32_t computed = footer_checksum(f);
    if (computed != f.checksum.get()) {
        return make_error("{}: checksum mismatch (stored 0x{:08x}, computed 0x{:08x})", what,
                          f.checksum.get(), computed);
    }
    if ((f.format_version.get() >> 16) != 1) {
        return make_error("{}: unsupported format version 0x{:08x}", what, f.format_version.get());
    }
    uint32_t type = f.disk_type;
    if (type != static_cast<uint32_t>(DiskType::kFixed) &&
        type != static_cast<uint32_t>(DiskType::kDynamic) &&
        type != static_cast<uint32_t>(DiskType::kDifferencing)) {
        return make_error("{}: unsupported disk type {}", what, type);
    }
    return f;
}

Result<DynamicHeader> parse_header(std::span<const uint8_t> bytes, std::string_view what) {
    if (bytes.size() != kHeaderSize) return make_error("{}: {} bytes is not a header", what, bytes.size());
    DynamicHeader h{};
    std::memcpy(&h, bytes.data(), bytes.size());
    if (h.cookie != kHeaderCookie) return make_error("{}: bad cookie (expected \"cxsparse\")", what);
    uint32_t computed = header_checksum(h);
    if (computed != h.checksum.get()) {
        return make_error("{}: checksum mismatch (stored 0x{:08x}, computed 0x{:08x})", what,
                          h.checksum.get(), computed);
    }
    if ((h.header_version.get() >> 16) != 1) {
        return make_error("{}: unsupported header version 0x{:08x}", what, h.header_version.get());
    }
    uint32_t bs = h.block_size;
    if (!is_power_of_two(bs) || bs < kMinBlockSize || bs > kMaxBlockSize) {
        return make_error("{}: invalid block size {} (must be a power of two from 512 bytes)", what, bs);
    }
    return h;
}

Footer make_footer(const NewFooter& spec) {
    Footer f{};
    f.cookie = kFooterCookie;
    f.features = 2;  // "reserved" bit, always set
    f.format_version = 0x00010000;
    f.data_offset = spec.type == DiskType::kFixed ? ~uint64_t{0} : uint64_t{kFooterSize};
    f.timestamp = spec.timestamp;
    // "win " is the creator every reader (QEMU before and after 10.0, Hyper-V, Azure) takes to
    // mean "current_size is the size". Vireo keeps the exact size asked for in current_size and
    // the spec's rounded-down geometry, so this is the value that makes all of them agree.
    f.creator_app = {'w', 'i', 'n', ' '};
    f.creator_version = 0x000A0000;  // 10.0, as Windows writes
    f.creator_host = {'W', 'i', '2', 'k'};
    f.original_size = spec.size;
    f.current_size = spec.size;
    Geometry g = chs_for_size(spec.size);
    f.cylinders = g.cylinders;
    f.heads = g.heads;
    f.sectors_per_track = g.sectors_per_track;
    f.disk_type = static_cast<uint32_t>(spec.type);
    f.uuid = spec.uuid.bytes;
    seal_footer(f);
    return f;
}

void seal_footer(Footer& footer) {
    footer.checksum = footer_checksum(footer);
}

void seal_header(DynamicHeader& header) {
    header.checksum = header_checksum(header);
}

uint32_t now_timestamp() {
    int64_t t = static_cast<int64_t>(std::time(nullptr)) - kTimestampEpoch;
    return t < 0 ? 0 : static_cast<uint32_t>(t);
}

std::string format_timestamp(uint32_t vhd_timestamp) {
    std::time_t t = static_cast<std::time_t>(int64_t{vhd_timestamp} + kTimestampEpoch);
    std::tm tm{};
    ::gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

uint32_t bitmap_size_for(uint32_t block_size) {
    uint64_t bits = block_size / kSectorSize;
    uint64_t bytes = (bits + 7) / 8;
    return static_cast<uint32_t>((bytes + kSectorSize - 1) / kSectorSize * kSectorSize);
}

uint64_t bat_size_for(uint64_t entries) {
    return (entries * 4 + kSectorSize - 1) / kSectorSize * kSectorSize;
}

void bitmap_set_range(uint8_t* bitmap, uint32_t first, uint32_t count) {
    uint32_t i = first;
    uint32_t end = first + count;
    while (i < end && (i & 7) != 0)
        bitmap_set(bitmap, i++);
    while (i + 8 <= end) {
        bitmap[i >> 3] = 0xFF;
        i += 8;
    }
    while (i < end)
        bitmap_set(bitmap, i++);
}

uint32_t bitmap_run(const uint8_t* bitmap, uint32_t first, uint32_t limit, bool* value) {
    bool v = bitmap_test(bitmap, first);
    *value = v;
    uint32_t n = 1;
    uint32_t i = first + 1;
    while (n < limit) {
        if ((i & 7) == 0 && n + 8 <= limit) {
            uint8_t byte = bitmap[i >> 3];
            if (byte == (v ? 0xFF : 0x00)) {
                n += 8;
                i += 8;
                continue;
            }
        }
        if (bitmap_test(bitmap, i) != v) break;
        ++n;
        ++i;
    }
    return n;
}

bool bitmap_all_set(const uint8_t* bitmap, uint32_t first, uint32_t count) {
    if (count == 0) return true;
    bool v;
    return bitmap_run(bitmap, first, count, &v) == count && v;
}

std::string utf16_to_utf8(std::span<const uint8_t> bytes, bool big_endian) {
    std::string out;
    auto unit = [&](size_t i) -> uint32_t {
        return big_endian ? (uint32_t{bytes[i]} << 8 | bytes[i + 1])
                          : (uint32_t{bytes[i + 1]} << 8 | bytes[i]);
    };
    auto put = [&out](uint32_t cp) {
        if (cp < 0x80) {
            out += static_cast<char>(cp);
        } else if (cp < 0x800) {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += static_cast<char>(0xE0 | (cp >> 12));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        } else {
            out += static_cast<char>(0xF0 | (cp >> 18));
            out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (cp & 0x3F));
        }
    };
    for (size_t i = 0; i + 1 < bytes.size(); i += 2) {
        uint32_t u = unit(i);
        if (u == 0) break;
        if (u >= 0xD800 && u < 0xDC00 && i + 3 < bytes.size()) {
            uint32_t lo = unit(i + 2);
            if (lo >= 0xDC00 && lo < 0xE000) {
                put(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00));
                i += 2;
                continue;
            }
        }
        if (u >= 0xD800 && u < 0xE000) {
            put(0xFFFD);
            continue;
        }
        put(u);
    }
    return out;
}

std::vector<uint8_t> utf8_to_utf16(std::string_view text, bool big_endian) {
    std::vector<uint8_t> out;
    auto emit = [&](uint32_t u) {
        uint8_t hi = static_cast<uint8_t>(u >> 8), lo = static_cast<uint8_t>(u);
        if (big_endian) {
            out.push_back(hi);
            out.push_back(lo);
        } else {
            out.push_back(lo);
            out.push_back(hi);
        }
    };
    size_t i = 0;
    while (i < text.size()) {
        auto c = static_cast<uint8_t>(text[i]);
        uint32_t cp = 0xFFFD;
        size_t len = 1;
        if (c < 0x80) {
            cp = c;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4;
        }
        if (len > 1) {
            if (i + len > text.size()) {
                len = 1;
            } else {
                cp = c & (0xFF >> (len + 1));
                for (size_t k = 1; k < len; ++k) {
                    auto cc = static_cast<uint8_t>(text[i + k]);
                    if ((cc & 0xC0) != 0x80) {
                        cp = 0xFFFD;
                        len = 1;
                        break;
                    }
                    cp = (cp << 6) | (cc & 0x3F);
                }
            }
        }
        i += len;
        if (cp >= 0x10000 && cp <= 0x10FFFF) {
            cp -= 0x10000;
            emit(0xD800 + (cp >> 10));
            emit(0xDC00 + (cp & 0x3FF));
        } else {
            emit(cp > 0x10FFFF ? 0xFFFD : cp);
        }
    }
    return out;
}

std::string four_cc(const std::array<char, 4>& code) {
    std::string s;
    for (char c : code) {
        if (c == '\0') break;
        s += (c >= 0x20 && c < 0x7F) ? c : '?';
    }
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
}

std::string platform_code_name(uint32_t code) {
    if (code == 0) return "none";
    std::array<char, 4> c = {static_cast<char>(code >> 24), static_cast<char>(code >> 16),
                             static_cast<char>(code >> 8), static_cast<char>(code)};
    std::string s;
    for (char ch : c)
        s += (ch >= 0x20 && ch < 0x7F) ? ch : '?';
    return s;
}

std::string parent_name(const DynamicHeader& header) {
    return utf16_to_utf8(header.parent_name, true);
}

std::optional<std::string> decode_locator(uint32_t platform_code, std::span<const uint8_t> data) {
    auto code = static_cast<PlatformCode>(platform_code);
    std::string text;
    switch (code) {
        case PlatformCode::kW2ku:
        case PlatformCode::kW2ru:
            text = utf16_to_utf8(data, false);
            break;
        case PlatformCode::kWi2k:
        case PlatformCode::kWi2r:
        case PlatformCode::kMacX:
            text.assign(reinterpret_cast<const char*>(data.data()), data.size());
            if (auto nul = text.find('\0'); nul != std::string::npos) text.resize(nul);
            break;
        default:
            return std::nullopt;
    }
    if (text.empty()) return std::nullopt;
    return text;
}

namespace {

std::string windows_to_host(std::string path) {
    for (char& c : path) {
        if (c == '\\') c = '/';
    }
    return path;
}

bool has_drive_letter(const std::string& p) {
    return p.size() >= 2 && p[1] == ':' && ((p[0] >= 'A' && p[0] <= 'Z') || (p[0] >= 'a' && p[0] <= 'z'));
}

std::string percent_decode(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

}  // namespace

std::vector<std::string> parent_candidates(const std::vector<ParentLocator>& locators,
                                           const std::string& header_parent_name,
                                           const std::string& child_dir) {
    namespace fs = std::filesystem;
    std::vector<std::string> out;
    auto add = [&out](const fs::path& p) {
        if (p.empty()) return;
        std::string s = p.lexically_normal().string();
        for (const auto& existing : out) {
            if (existing == s) return;
        }
        out.push_back(s);
    };
    auto relative = [&](const std::string& text) {
        std::string p = windows_to_host(text);
        if (p.empty()) return;
        if (p[0] == '/') {
            add(p);
        } else if (has_drive_letter(p)) {
            add(fs::path(child_dir) / fs::path(p.substr(2)).filename());
        } else {
            add(fs::path(child_dir) / p);
        }
    };
    auto absolute = [&](const std::string& text) {
        std::string p = windows_to_host(text);
        if (p.empty()) return;
        if (p[0] == '/' && (p.size() < 2 || p[1] != '/')) {
            add(p);
        } else {
            // A Windows drive or UNC path means nothing here: look for its file name next to the child.
            add(fs::path(child_dir) / fs::path(has_drive_letter(p) ? p.substr(2) : p).filename());
        }
    };
    for (const auto& l : locators) {
        auto code = static_cast<PlatformCode>(l.platform_code);
        if (code == PlatformCode::kW2ru || code == PlatformCode::kWi2r) relative(l.text);
    }
    for (const auto& l : locators) {
        auto code = static_cast<PlatformCode>(l.platform_code);
        if (code == PlatformCode::kW2ku || code == PlatformCode::kWi2k) absolute(l.text);
    }
    for (const auto& l : locators) {
        if (static_cast<PlatformCode>(l.platform_code) != PlatformCode::kMacX) continue;
        std::string_view url = l.text;
        constexpr std::string_view kScheme = "file://";
        if (url.size() < kScheme.size() || !std::equal(kScheme.begin(), kScheme.end(), url.begin(),
                                                       [](char a, char b) { return a == std::tolower(b); })) {
            continue;
        }
        url.remove_prefix(kScheme.size());
        if (url.starts_with("localhost/")) url.remove_prefix(9);
        std::string path = percent_decode(url);
        if (path.empty()) continue;
        if (path[0] == '/') {
            add(path);
        } else {
            add(fs::path(child_dir) / path);  // blktap writes "file://./name.vhd"
        }
    }
    if (!header_parent_name.empty()) relative(header_parent_name);
    return out;
}

}  // namespace vireo::disk::vhd
