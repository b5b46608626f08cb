// How `vireo` subcommands plug into the CLI: each area registers its subcommands on the app.
#pragma once

#include <CLI/CLI.hpp>

namespace vireo::cli {

// Shared state of one `vireo` invocation; a subcommand's callback sets the exit status.
struct Context {
    int exit_code = 0;
};

void register_doctor(CLI::App& app, Context& ctx);
void register_api(CLI::App& app, Context& ctx);
void register_run(CLI::App& app, Context& ctx);

}  // namespace vireo::cli
