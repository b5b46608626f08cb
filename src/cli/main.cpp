// `vireo`: the command-line front end (subcommands registered by each area).
#include <cstdio>

#include "base/log.hpp"
#include "cli/command.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
    CLI::App app{"Vireo: virtual machines on KVM, with VHD disks and remote desktops", "vireo"};
    app.set_version_flag("--version", "vireo " VIREO_VERSION);
    app.require_subcommand(0, 1);
    std::string log_level = "warn";
    app.add_option("--log-level", log_level, "Log level: trace, debug, info, warn, error, off")
        ->capture_default_str();

    vireo::cli::Context ctx;
    vireo::cli::register_doctor(app, ctx);
    auto* img = app.add_subcommand("img", "Create, inspect, convert, serve and benchmark disk images");
    img->require_subcommand(1);
    vireo::cli::register_img(*img, ctx);
    vireo::cli::register_img_diskio(*img, ctx);

    app.parse_complete_callback([&] {
        if (auto s = vireo::log::set_level(log_level); !s.ok())
            throw CLI::ValidationError("--log-level", s.error().message());
    });
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (app.get_subcommands().empty()) {
        std::fputs(app.help().c_str(), stdout);
        return 0;
    }
    return ctx.exit_code;
}
