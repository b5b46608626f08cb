// VM option parsing.
#include "vmm/vm_options.hpp"

#include <algorithm>
#include <cctype>

#include "arch/x86/cpu_features.hpp"
#include "base/size.hpp"

namespace vireo::vmm {

void add_vm_options(CLI::App& app, VmOptions& o) {
    // A repeated option takes its last value, so scripts can append overrides.
    app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
    app.add_option("--kernel", o.config.kernel, "Kernel: bzImage, ELF vmlinux or PVH ELF (32/64-bit)")
        ->type_name("PATH");
    app.add_option("--initrd", o.config.initrd, "Initial ramdisk")->type_name("PATH");
    app.add_option("--cmdline", o.config.cmdline, "Kernel command line")->type_name("STR");
    app.add_option("--cpus", o.config.cpus, "Number of vCPUs")->type_name("N")->capture_default_str();
    app.add_option("--memory", o.memory, "Guest RAM in MiB (or with a suffix: 2G)")
        ->type_name("MIB")
        ->capture_default_str();
    app.add_option("--serial", o.serial, "Serial console (COM1): stdio, file:PATH or none")
        ->type_name("stdio|file:PATH|none")
        ->capture_default_str();
    app.add_option("--on-reboot", o.on_reboot, "When the guest resets: exit (status 0) or restart it")
        ->type_name("exit|restart")
        ->capture_default_str();
    app.add_option("--cpu-features", o.config.cpu_features,
                   "Change CPUID features, e.g. -xsave,-cx16 or xsave=off (names as QEMU's -cpu flags; "
                   "--list-cpu-features)")
        ->type_name("LIST");
    app.add_flag("--hugepages", o.config.hugepages, "Back guest RAM with 2 MiB huge pages");
    app.add_option("--log-level", o.config.log_level, "Log level: trace, debug, info, warn, error, off")
        ->capture_default_str();
    app.add_option("--api-socket", o.config.api_socket,
                   "Serve the control API (HTTP/1.1, JSON) on this Unix socket, created with mode 0600")
        ->type_name("PATH");
    app.add_option(
           "--restore", o.restore,
           "Start from a snapshot directory (PUT /api/v1/vm.snapshot) instead of a kernel; the VM "
           "continues where it was, with the snapshot's devices. --serial, --api-socket, --on-reboot, "
           "--log-level and --console may be given again")
        ->type_name("DIR");
    app.add_option("--disk", o.disks,
                   "Virtio disk (repeatable): a raw or VHD image; format detected from the file unless given")
        ->type_name("PATH[,ro][,format=raw|vhd][,serial=ID]");
    app.add_option("--net", o.nets, "Virtio network card on an existing tap interface (repeatable)")
        ->type_name("tap=NAME[,mac=MAC]");
    app.add_option("--console", o.console, "Virtio console (hvc0): none, stdio or file:PATH")
        ->type_name("none|stdio|file:PATH")
        ->capture_default_str();
    app.add_flag("--rng", o.config.rng, "Virtio entropy device fed from the host's getrandom()");
    app.add_flag("--list-cpu-features", o.list_cpu_features,
                 "List the CPU feature names --cpu-features takes");
}

Result<uint64_t> parse_memory_mib(std::string_view text) {
    if (!text.empty() && std::all_of(text.begin(), text.end(),
                                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
        if (text.size() > 12) return make_error("--memory {}: too large", text);
        return std::stoull(std::string(text));
    }
    auto bytes = parse_size(text);
    if (!bytes.ok()) return make_error("--memory {}: {}", text, bytes.error().message());
    if (*bytes % (1 << 20) != 0) return make_error("--memory {}: not a whole number of MiB", text);
    return *bytes >> 20;
}

Result<VmConfig> finish_options(const VmOptions& o) {
    VmConfig c = o.config;
    VIREO_ASSIGN_OR_RETURN(c.memory_mib, parse_memory_mib(o.memory));
    VIREO_ASSIGN_OR_RETURN(c.serial, parse_serial(o.serial));
    VIREO_ASSIGN_OR_RETURN(c.on_reboot, parse_reboot_action(o.on_reboot));
    c.disks.clear();
    for (const auto& d : o.disks) {
        VIREO_ASSIGN_OR_RETURN(DiskConfig disk, parse_disk(d));
        c.disks.push_back(std::move(disk));
    }
    c.nets.clear();
    for (const auto& n : o.nets) {
        VIREO_ASSIGN_OR_RETURN(NetConfig net, parse_net(n));
        c.nets.push_back(std::move(net));
    }
    VIREO_ASSIGN_OR_RETURN(c.console, parse_console(o.console));
    // With --restore the machine comes from the snapshot's manifest, checked there.
    if (o.restore.empty()) VIREO_TRY(validate(c));
    return c;
}

std::vector<std::string> to_args(const VmConfig& c) {
    std::vector<std::string> args = {"--kernel", c.kernel};
    if (!c.initrd.empty()) args.insert(args.end(), {"--initrd", c.initrd});
    if (!c.cmdline.empty()) args.insert(args.end(), {"--cmdline", c.cmdline});
    args.insert(args.end(),
                {"--cpus", std::to_string(c.cpus), "--memory", std::to_string(c.memory_mib), "--serial",
                 to_string(c.serial), "--on-reboot", std::string(to_string(c.on_reboot))});
    if (!c.cpu_features.empty()) args.insert(args.end(), {"--cpu-features", c.cpu_features});
    if (c.hugepages) args.push_back("--hugepages");
    for (const auto& d : c.disks)
        args.insert(args.end(), {"--disk", to_string(d)});
    for (const auto& n : c.nets)
        args.insert(args.end(), {"--net", to_string(n)});
    if (c.console.mode != VirtioConsoleMode::kNone)
        args.insert(args.end(), {"--console", to_string(c.console)});
    if (c.rng) args.push_back("--rng");
    args.insert(args.end(), {"--log-level", c.log_level});
    if (!c.api_socket.empty()) args.insert(args.end(), {"--api-socket", c.api_socket});
    return args;
}

std::string cpu_feature_list() {
    std::string out = "CPU features --cpu-features can hide (-name) or request (+name):\n";
    uint32_t leaf = UINT32_MAX;
    int reg = -1;
    for (const auto& f : arch::x86::cpu_feature_table()) {
        if (f.leaf != leaf || static_cast<int>(f.reg) != reg) {
            leaf = f.leaf;
            reg = static_cast<int>(f.reg);
            out += fmt::format("\n  CPUID 0x{:x}.{} E{}X:\n   ", f.leaf, f.subleaf, "ABCD"[reg]);
        }
        out += ' ';
        out += f.name;
    }
    out += "\n";
    return out;
}

}  // namespace vireo::vmm
