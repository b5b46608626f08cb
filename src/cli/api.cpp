// `vireo api SOCKET METHOD PATH [JSON]`: one request to a VMM's control API, for scripts.
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "vmm/api/api_client.hpp"

namespace vireo::cli {
namespace {

// "vm.pause" is short for "/api/v1/vm.pause".
std::string full_path(const std::string& path) {
    if (!path.empty() && path.front() == '/') return path;
    return "/api/v1/" + path;
}

// JSON bodies are printed indented; anything else as received.
std::string pretty(const std::string& body) {
    auto parsed = nlohmann::json::parse(body, nullptr, false);
    if (parsed.is_discarded()) return body;
    return parsed.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace

void register_api(CLI::App& app, Context& ctx) {
    struct Options {
        std::string socket;
        std::string method;
        std::string path;
        std::string body;
        double timeout = 120;
    };
    auto opts = std::make_shared<Options>();
    auto* cmd =
        app.add_subcommand("api", "Send one request to a VM's control API socket and print the answer");
    cmd->add_option("SOCKET", opts->socket, "The VMM's --api-socket path")->required();
    cmd->add_option("METHOD", opts->method, "GET or PUT")->required();
    cmd->add_option("PATH", opts->path, "/api/v1/vm, or short: vm, vm.pause, vm.snapshot, ...")->required();
    cmd->add_option("JSON", opts->body, "Request body (JSON)");
    cmd->add_option("--timeout", opts->timeout, "Seconds to wait for the answer")->capture_default_str();
    cmd->footer(
        "Exit status: 0 on a 2xx answer; 1 on an HTTP error (the error is printed to stderr); 2 when the VMM "
        "cannot be reached.\nExample: vireo api /run/vm1.sock PUT vm.snapshot '{\"destination\": "
        "\"/var/snap1\"}'");
    cmd->callback([opts, &ctx] {
        auto response =
            vmm::api::api_request(opts->socket, opts->method, full_path(opts->path), opts->body,
                                  std::chrono::milliseconds(static_cast<int64_t>(opts->timeout * 1000)));
        if (!response.ok()) {
            std::fprintf(stderr, "vireo api: %s\n", response.error().message().c_str());
            ctx.exit_code = 2;
            return;
        }
        const auto& r = *response;
        if (r.status >= 200 && r.status < 300) {
            if (!r.body.empty()) std::fputs(pretty(r.body).c_str(), stdout);
            return;
        }
        std::string message = r.body;
        auto parsed = nlohmann::json::parse(r.body, nullptr, false);
        if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
            message = parsed["error"].get<std::string>();
        while (!message.empty() && message.back() == '\n')
            message.pop_back();
        std::fprintf(stderr, "vireo api: %d %s: %s\n", r.status,
                     std::string(vmm::api::reason_phrase(r.status)).c_str(), message.c_str());
        ctx.exit_code = 1;
    });
}

}  // namespace vireo::cli
