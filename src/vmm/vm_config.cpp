// VmConfig parsing helpers and validation.
#include "vmm/vm_config.hpp"

#include "arch/x86/cpu_features.hpp"

namespace vireo::vmm {

Result<SerialConfig> parse_serial(std::string_view text) {
    SerialConfig s;
    if (text == "stdio") {
        s.mode = SerialMode::kStdio;
    } else if (text == "none") {
        s.mode = SerialMode::kNone;
    } else if (text.starts_with("file:")) {
        s.mode = SerialMode::kFile;
        s.path = std::string(text.substr(5));
        if (s.path.empty()) return make_error("--serial file: needs a path (file:PATH)");
    } else {
        return make_error("--serial '{}': use stdio, file:PATH or none", text);
    }
    return s;
}

std::string to_string(const SerialConfig& serial) {
    switch (serial.mode) {
        case SerialMode::kStdio:
            return "stdio";
        case SerialMode::kFile:
            return "file:" + serial.path;
        case SerialMode::kNone:
            return "none";
    }
    return "none";
}

Result<RebootAction> parse_reboot_action(std::string_view text) {
    if (text == "exit") return RebootAction::kExit;
    if (text == "restart") return RebootAction::kRestart;
    return make_error("--on-reboot '{}': use exit or restart", text);
}

std::string_view to_string(RebootAction action) {
    return action == RebootAction::kExit ? "exit" : "restart";
}

Status validate(const VmConfig& config) {
    if (config.kernel.empty()) return make_error("--kernel is required");
    if (config.cpus < 1 || config.cpus > kMaxCpus)
        return make_error("--cpus {}: must be between 1 and {}", config.cpus, kMaxCpus);
    if (config.memory_mib < kMinMemoryMib || config.memory_mib > kMaxMemoryMib)
        return make_error("--memory {}: must be between {} and {} MiB", config.memory_mib, kMinMemoryMib,
                          kMaxMemoryMib);
    if (config.hugepages && config.memory_mib % 2 != 0)
        return make_error("--memory {}: must be a multiple of 2 MiB with --hugepages", config.memory_mib);
    if (config.serial.mode == SerialMode::kFile && config.serial.path.empty())
        return make_error("--serial file: needs a path");
    VIREO_TRY(arch::x86::parse_cpu_features(config.cpu_features));
    if (config.console.mode == VirtioConsoleMode::kStdio && config.serial.mode == SerialMode::kStdio)
        return make_error(
            "--console stdio needs stdin and stdout, which --serial stdio already uses "
            "(give --serial file:PATH or none)");
    // Slots 1..31 of PCI bus 0 (the host bridge is slot 0).
    size_t functions = config.disks.size() + config.nets.size() + (config.rng ? 1 : 0) +
                       (config.console.mode != VirtioConsoleMode::kNone ? 1 : 0);
    if (functions > 31) return make_error("{} virtio devices: at most 31 fit on the PCI bus", functions);
    return {};
}

}  // namespace vireo::vmm
