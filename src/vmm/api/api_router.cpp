// Control API routes, request body validation and the JSON shapes of the answers.
#include "vmm/api/api_router.hpp"

#include <array>
#include <functional>
#include <string_view>

#include <fmt/format.h>

namespace vireo::vmm::api {
namespace {

constexpr std::string_view kPrefix = "/api/v1/";

HttpResponse json_response(const nlohmann::json& body) {
    HttpResponse r;
    r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
    return r;
}

HttpResponse from_error(const ControlError& e) {
    switch (e.kind) {
        case ControlFailure::kInvalid:
            return HttpResponse::error(400, e.message);
        case ControlFailure::kWrongState:
            return HttpResponse::error(409, e.message);
        case ControlFailure::kFailed:
            break;
    }
    return HttpResponse::error(500, e.message);
}

// The body of a request as a JSON object: an empty body counts as {}. On error, *error holds
// the 400 response.
std::optional<nlohmann::json> body_object(const HttpRequest& request, HttpResponse* error) {
    std::string_view body = request.body;
    if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) return nlohmann::json::object();
    auto parsed = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_discarded()) {
        *error = HttpResponse::error(400, "request body is not valid JSON");
        return std::nullopt;
    }
    if (!parsed.is_object()) {
        *error = HttpResponse::error(400, "request body must be a JSON object");
        return std::nullopt;
    }
    return parsed;
}

// Refuses fields the endpoint does not know, so a typo ("resum") is not silently ignored.
bool only_fields(const nlohmann::json& object, std::initializer_list<std::string_view> known,
                 std::string_view path, HttpResponse* error) {
    for (const auto& [key, value] : object.items()) {
        bool found = false;
        for (auto k : known)
            found = found || k == key;
        if (!found) {
            *error = HttpResponse::error(400, fmt::format("unknown field \"{}\" for {}", key, path));
            return false;
        }
    }
    return true;
}

}  // namespace

std::string_view to_string(VmState state) {
    switch (state) {
        case VmState::kCreated:
            return "created";
        case VmState::kRunning:
            return "running";
        case VmState::kPaused:
            return "paused";
        case VmState::kShuttingDown:
            return "shutting-down";
        case VmState::kStopped:
            return "stopped";
    }
    return "unknown";
}

nlohmann::json to_json(const VmInfo& info) {
    return {
        {"id", info.id},         {"state", to_string(info.state)},
        {"config", info.config}, {"uptime_ms", info.uptime_ms},
        {"vcpus", info.vcpus},   {"memory_mib", info.memory_mib},
    };
}

nlohmann::json to_json(const VmCounters& counters) {
    nlohmann::json vcpus = nlohmann::json::array();
    for (const auto& v : counters.vcpus) {
        uint64_t total = 0;
        for (const auto& [reason, count] : v.exits)
            total += count;
        vcpus.push_back({{"id", v.id}, {"exits", v.exits}, {"total_exits", total}});
    }
    nlohmann::json devices = nlohmann::json::object();
    for (const auto& d : counters.devices) {
        nlohmann::json c = d.details.is_object() ? d.details : nlohmann::json::object();
        c["bytes"] = d.bytes;
        c["requests"] = d.requests;
        c["errors"] = d.errors;
        devices[d.name] = std::move(c);
    }
    return {{"vcpus", vcpus}, {"devices", devices}, {"rss_bytes", counters.rss_bytes}};
}

nlohmann::json to_json(const SnapshotResult& result) {
    return {
        {"destination", result.destination},
        {"memory_bytes", result.memory_bytes},
        {"total_bytes", result.total_bytes},
        {"pause_ms", result.pause_ms},
    };
}

HttpResponse ApiRouter::handle(const HttpRequest& request) {
    using Action = std::function<HttpResponse(const HttpRequest&)>;
    struct Route {
        std::string_view name;    // path below /api/v1/
        std::string_view method;  // the one method it answers
        Action action;
    };
    HttpResponse error;
    auto simple = [this, &error](ControlStatus (VmController::*op)(), std::string_view path) {
        return [this, op, path, &error](const HttpRequest& req) -> HttpResponse {
            auto body = body_object(req, &error);
            if (!body) return error;
            if (!only_fields(*body, {}, path, &error)) return error;
            ControlStatus s = (m_controller.*op)();
            if (!s.ok()) return from_error(s.error());
            return json_response(to_json(m_controller.info()));
        };
    };
    const std::array<Route, 8> routes{{
        {"vm", "GET", [this](const HttpRequest&) { return json_response(to_json(m_controller.info())); }},
        {"vm.counters", "GET",
         [this](const HttpRequest&) { return json_response(to_json(m_controller.counters())); }},
        {"vm.pause", "PUT", simple(&VmController::pause, "vm.pause")},
        {"vm.resume", "PUT", simple(&VmController::resume, "vm.resume")},
        {"vm.shutdown", "PUT", simple(&VmController::shutdown, "vm.shutdown")},
        {"vm.power-off", "PUT", simple(&VmController::power_off, "vm.power-off")},
        {"vm.reboot", "PUT", simple(&VmController::reboot, "vm.reboot")},
        {"vm.snapshot", "PUT",
         [this, &error](const HttpRequest& req) -> HttpResponse {
             auto body = body_object(req, &error);
             if (!body) return error;
             if (!only_fields(*body, {"destination", "resume"}, "vm.snapshot", &error)) return error;
             SnapshotOptions options;
             auto dest = body->find("destination");
             if (dest == body->end() || !dest->is_string() || dest->get_ref<const std::string&>().empty())
                 return HttpResponse::error(
                     400, "vm.snapshot: \"destination\" must be a non-empty string (a directory)");
             options.destination = dest->get<std::string>();
             if (options.destination.find('\0') != std::string::npos)
                 return HttpResponse::error(400, "vm.snapshot: \"destination\" holds a NUL byte");
             if (auto resume = body->find("resume"); resume != body->end()) {
                 if (!resume->is_boolean())
                     return HttpResponse::error(400, "vm.snapshot: \"resume\" must be true or false");
                 options.resume = resume->get<bool>();
             }
             auto result = m_controller.snapshot(options);
             if (!result.ok()) return from_error(result.error());
             nlohmann::json out = to_json(result.value());
             out["state"] = to_string(m_controller.info().state);
             return json_response(out);
         }},
    }};

    std::string_view path = request.path();
    if (path.substr(0, kPrefix.size()) == kPrefix) {
        std::string_view name = path.substr(kPrefix.size());
        for (const auto& route : routes) {
            if (route.name != name) continue;
            if (request.method != route.method) {
                HttpResponse r =
                    HttpResponse::error(405, fmt::format("method {} is not allowed on {} (allowed: {})",
                                                         request.method, path, route.method));
                r.headers.push_back({"Allow", std::string(route.method)});
                return r;
            }
            return route.action(request);
        }
    }
    return HttpResponse::error(404, fmt::format("no such endpoint: {}", path));
}

}  // namespace vireo::vmm::api
