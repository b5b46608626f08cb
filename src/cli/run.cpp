// `vireo run`: runs a VM in the foreground by handing the same options to vireo-vmm (one
// process per VM, whether started by hand or by the manager).
#include "cli/run.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "vmm/vm_options.hpp"

namespace vireo::cli {

std::string find_vmm_binary() {
    // Installed or built side by side: vireo-vmm sits next to vireo.
    std::error_code ec;
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        std::filesystem::path beside = self.parent_path() / "vireo-vmm";
        if (::access(beside.c_str(), X_OK) == 0) return beside.string();
    }
    return "vireo-vmm";  // from PATH
}

void register_run(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("run", "Run a VM in the foreground (vireo-vmm with the same options)");
    auto options = std::make_shared<vmm::VmOptions>();
    vmm::add_vm_options(*cmd, *options);
    cmd->callback([&ctx, options] {
        if (options->list_cpu_features) {
            std::fputs(vmm::cpu_feature_list().c_str(), stdout);
            return;
        }
        auto config = vmm::finish_options(*options);
        if (!config.ok()) {
            std::fprintf(stderr, "vireo run: %s\n", config.error().message().c_str());
            ctx.exit_code = 1;
            return;
        }
        std::string vmm = find_vmm_binary();
        std::vector<std::string> args = vmm::to_args(*config);
        std::vector<char*> argv;
        argv.push_back(vmm.data());
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        std::fflush(nullptr);
        ::execvp(vmm.c_str(), argv.data());
        std::fprintf(stderr, "vireo run: cannot start %s: %s\n", vmm.c_str(), std::strerror(errno));
        ctx.exit_code = 1;
    });
}

}  // namespace vireo::cli
