// VmConfig <-> JSON.
#include "vmm/control/config_json.hpp"

namespace vireo::vmm {
namespace {

Status read_string(const nlohmann::json& j, const char* key, std::string* out, bool required) {
    auto it = j.find(key);
    if (it == j.end()) return required ? make_error("VM config: \"{}\" is missing", key) : Status{};
    if (!it->is_string()) return make_error("VM config: \"{}\" is not a string", key);
    *out = it->get<std::string>();
    return {};
}

Status read_bool(const nlohmann::json& j, const char* key, bool* out) {
    auto it = j.find(key);
    if (it == j.end()) return {};
    if (!it->is_boolean()) return make_error("VM config: \"{}\" is not true or false", key);
    *out = it->get<bool>();
    return {};
}

Result<DiskConfig> disk_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("VM config: a disk is not an object");
    DiskConfig d;
    VIREO_TRY(read_string(j, "path", &d.path, true));
    VIREO_TRY(read_bool(j, "read_only", &d.read_only));
    VIREO_TRY(read_string(j, "format", &d.format, false));
    VIREO_TRY(read_string(j, "serial", &d.serial, false));
    if (d.path.empty()) return make_error("VM config: a disk has an empty path");
    if (d.format != "auto" && d.format != "raw" && d.format != "vhd")
        return make_error("VM config: disk {}: format \"{}\" is not raw, vhd or auto", d.path, d.format);
    if (d.serial.size() > 20)
        return make_error("VM config: disk {}: serial longer than 20 characters", d.path);
    for (char c : d.serial) {
        if (c < 0x20 || c > 0x7E)
            return make_error("VM config: disk {}: serial is not printable ASCII", d.path);
    }
    return d;
}

Result<NetConfig> net_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("VM config: a network card is not an object");
    NetConfig n;
    VIREO_TRY(read_string(j, "tap", &n.tap, true));
    VIREO_TRY(read_string(j, "mac", &n.mac, false));
    // The same checks as --net.
    auto parsed = parse_net(n.mac.empty() ? "tap=" + n.tap : "tap=" + n.tap + ",mac=" + n.mac);
    if (!parsed.ok()) return std::move(parsed).error().context("VM config");
    return *parsed;
}

}  // namespace

nlohmann::json to_json(const VmConfig& c) {
    nlohmann::json j = {
        {"kernel", c.kernel},
        {"initrd", c.initrd},
        {"cmdline", c.cmdline},
        {"cpus", c.cpus},
        {"memory_mib", c.memory_mib},
        {"hugepages", c.hugepages},
        {"serial", to_string(c.serial)},
        {"on_reboot", std::string(to_string(c.on_reboot))},
        {"cpu_features", c.cpu_features},
    };
    if (!c.api_socket.empty()) j["api_socket"] = c.api_socket;
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& d : c.disks)
        disks.push_back(
            {{"path", d.path}, {"read_only", d.read_only}, {"format", d.format}, {"serial", d.serial}});
    nlohmann::json nets = nlohmann::json::array();
    for (const auto& n : c.nets)
        nets.push_back({{"tap", n.tap}, {"mac", n.mac}});
    j["disks"] = std::move(disks);
    j["nets"] = std::move(nets);
    j["console"] = to_string(c.console);
    j["rng"] = c.rng;
    return j;
}

Result<VmConfig> vm_config_from_json(const nlohmann::json& j, VmConfig c) {
    if (!j.is_object()) return make_error("VM config is not an object");
    VIREO_TRY(read_string(j, "kernel", &c.kernel, true));
    VIREO_TRY(read_string(j, "initrd", &c.initrd, false));
    VIREO_TRY(read_string(j, "cmdline", &c.cmdline, false));
    VIREO_TRY(read_string(j, "cpu_features", &c.cpu_features, false));
    for (auto [key, out] :
         {std::pair{"cpus", static_cast<uint64_t*>(nullptr)}, {"memory_mib", &c.memory_mib}}) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned())
            return make_error("VM config: \"{}\" is missing or not a number", key);
        if (out)
            *out = it->get<uint64_t>();
        else if (it->get<uint64_t>() > kMaxCpus)
            return make_error("VM config: \"cpus\" is out of range");
        else
            c.cpus = it->get<uint32_t>();
    }
    if (auto it = j.find("hugepages"); it != j.end()) {
        if (!it->is_boolean()) return make_error("VM config: \"hugepages\" is not true or false");
        c.hugepages = it->get<bool>();
    }

    // Virtio devices belong to the machine: the guest's drivers hold state about each. The
    // caller's own are refused rather than silently dropped or added.
    if (!c.disks.empty() || !c.nets.empty() || c.rng)
        return make_error(
            "--disk, --net and --rng cannot be given with a snapshot: its VM brings its own devices");
    if (auto it = j.find("disks"); it != j.end()) {  // absent: a VM without virtio devices
        if (!it->is_array()) return make_error("VM config: \"disks\" is not a list");
        for (const auto& item : *it) {
            VIREO_ASSIGN_OR_RETURN(DiskConfig d, disk_from_json(item));
            c.disks.push_back(std::move(d));
        }
    }
    if (auto it = j.find("nets"); it != j.end()) {
        if (!it->is_array()) return make_error("VM config: \"nets\" is not a list");
        for (const auto& item : *it) {
            VIREO_ASSIGN_OR_RETURN(NetConfig n, net_from_json(item));
            c.nets.push_back(std::move(n));
        }
    }
    VIREO_TRY(read_bool(j, "rng", &c.rng));
    // The console's presence is the machine's; where its output goes (stdio or a file) is the
    // host's, so the caller's --console wins when the machine has one.
    std::string console = "none";
    VIREO_TRY(read_string(j, "console", &console, false));
    auto saved = parse_console(console);
    if (!saved.ok()) return std::move(saved).error().context("VM config");
    bool had_console = saved->mode != VirtioConsoleMode::kNone;
    if (!had_console && c.console.mode != VirtioConsoleMode::kNone)
        return make_error("--console: the snapshot's VM has no virtio console");
    if (had_console && c.console.mode == VirtioConsoleMode::kNone) c.console = *saved;
    return c;
}

}  // namespace vireo::vmm
