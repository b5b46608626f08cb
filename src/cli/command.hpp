// How `vireo` subcommands plug into the CLI: each area registers its subcommands on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace vireo::cli {

// Shared state of one `vireo` invocation; a subcommand's callback sets the exit status.
struct Context {
    int exit_code = 0;
};

void register_doctor(CLI::App& app, Context& ctx);
// `vireo img create|info|check|convert|commit|resize|compare|map`, added to the `img` subcommand.
void register_img(CLI::App& img, Context& ctx);
// `vireo img serve` (NBD export) and `vireo img bench`, added to the `img` subcommand.
void register_img_diskio(CLI::App& img, Context& ctx);

}  // namespace vireo::cli
