// --disk, --net and --console parsing.
#include "vmm/device_config.hpp"

#include <vector>

#include "devices/virtio/net.hpp"

namespace vireo::vmm {

namespace {

std::vector<std::string_view> split_commas(std::string_view text) {
    std::vector<std::string_view> parts;
    size_t start = 0;
    for (;;) {
        size_t comma = text.find(',', start);
        parts.push_back(
            text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    return parts;
}

}  // namespace

Result<DiskConfig> parse_disk(std::string_view text) {
    auto parts = split_commas(text);
    DiskConfig d;
    d.path = std::string(parts[0]);
    if (d.path.empty())
        return make_error("--disk '{}': needs a path first (PATH[,ro][,format=raw|vhd][,serial=ID])", text);
    bool seen_format = false, seen_serial = false, seen_ro = false;
    for (size_t i = 1; i < parts.size(); ++i) {
        std::string_view p = parts[i];
        if (p == "ro" || p == "readonly") {
            if (seen_ro) return make_error("--disk '{}': 'ro' given twice", text);
            seen_ro = true;
            d.read_only = true;
        } else if (p.starts_with("format=")) {
            if (seen_format) return make_error("--disk '{}': format given twice", text);
            seen_format = true;
            std::string_view f = p.substr(7);
            if (f == "vpc") f = "vhd";  // QEMU's name
            if (f != "raw" && f != "vhd" && f != "auto")
                return make_error("--disk '{}': format '{}' is not raw, vhd or auto", text, p.substr(7));
            d.format = std::string(f);
        } else if (p.starts_with("serial=")) {
            if (seen_serial) return make_error("--disk '{}': serial given twice", text);
            seen_serial = true;
            d.serial = std::string(p.substr(7));
            if (d.serial.size() > 20)
                return make_error("--disk '{}': serial '{}' is longer than 20 characters", text, d.serial);
            for (char c : d.serial) {
                if (c < 0x20 || c > 0x7E)
                    return make_error("--disk '{}': serial must be printable ASCII", text);
            }
        } else {
            return make_error("--disk '{}': unknown option '{}' (ro, format=raw|vhd, serial=ID)", text, p);
        }
    }
    return d;
}

std::string to_string(const DiskConfig& d) {
    std::string s = d.path;
    if (d.read_only) s += ",ro";
    if (d.format != "auto") s += ",format=" + d.format;
    if (!d.serial.empty()) s += ",serial=" + d.serial;
    return s;
}

Result<NetConfig> parse_net(std::string_view text) {
    NetConfig n;
    bool seen_mac = false;
    for (std::string_view p : split_commas(text)) {
        if (p.starts_with("tap=")) {
            if (!n.tap.empty()) return make_error("--net '{}': tap given twice", text);
            n.tap = std::string(p.substr(4));
            if (n.tap.empty()) return make_error("--net '{}': tap= needs an interface name", text);
        } else if (p.starts_with("mac=")) {
            if (seen_mac) return make_error("--net '{}': mac given twice", text);
            seen_mac = true;
            auto mac = devices::virtio::parse_mac(p.substr(4));
            if (!mac.ok()) return make_error("--net '{}': {}", text, mac.error().message());
            n.mac = devices::virtio::format_mac(*mac);
        } else {
            return make_error("--net '{}': unknown option '{}' (tap=NAME[,mac=MAC])", text, p);
        }
    }
    if (n.tap.empty()) return make_error("--net '{}': needs tap=NAME (an existing tap interface)", text);
    return n;
}

std::string to_string(const NetConfig& n) {
    return n.mac.empty() ? "tap=" + n.tap : "tap=" + n.tap + ",mac=" + n.mac;
}

Result<VirtioConsoleConfig> parse_console(std::string_view text) {
    VirtioConsoleConfig c;
    if (text == "none") {
        c.mode = VirtioConsoleMode::kNone;
    } else if (text == "stdio") {
        c.mode = VirtioConsoleMode::kStdio;
    } else if (text.starts_with("file:") && text.size() > 5) {
        c.mode = VirtioConsoleMode::kFile;
        c.path = std::string(text.substr(5));
    } else {
        return make_error("--console '{}': use none, stdio or file:PATH", text);
    }
    return c;
}

std::string to_string(const VirtioConsoleConfig& c) {
    switch (c.mode) {
        case VirtioConsoleMode::kNone:
            return "none";
        case VirtioConsoleMode::kStdio:
            return "stdio";
        case VirtioConsoleMode::kFile:
            return "file:" + c.path;
    }
    return "none";
}

}  // namespace vireo::vmm
