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
    return c;
}

}  // namespace vireo::vmm
