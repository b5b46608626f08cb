// Subsystem loggers sharing one stderr sink.
#include "base/log.hpp"

#include <mutex>
#include <string>
#include <unordered_map>

#include <spdlog/sinks/stdout_color_sinks.h>

namespace vireo::log {
namespace {

struct Registry {
    std::mutex mutex;
    spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_color_sink_mt>();
    spdlog::level::level_enum level = spdlog::level::warn;
    std::unordered_map<std::string, std::shared_ptr<spdlog::logger>> loggers;
};

Registry& registry() {
    static Registry r;
    return r;
}

}  // namespace

spdlog::logger& get(std::string_view subsystem) {
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    auto it = r.loggers.find(std::string(subsystem));
    if (it != r.loggers.end()) return *it->second;
    auto logger = std::make_shared<spdlog::logger>(std::string(subsystem), r.sink);
    logger->set_level(r.level);
    logger->set_pattern("%^[%H:%M:%S.%e %l %n]%$ %v");
    auto [pos, inserted] = r.loggers.emplace(std::string(subsystem), std::move(logger));
    return *pos->second;
}

Status set_level(std::string_view level) {
    auto parsed = spdlog::level::from_str(std::string(level));
    if (parsed == spdlog::level::off && level != "off") {
        return make_error("unknown log level '{}' (use trace, debug, info, warn, error or off)", level);
    }
    Registry& r = registry();
    std::lock_guard lock(r.mutex);
    r.level = parsed;
    for (auto& [name, logger] : r.loggers)
        logger->set_level(parsed);
    return {};
}

}  // namespace vireo::log
