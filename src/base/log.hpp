// Logging: one spdlog logger per subsystem ("disk", "kvm", "vmm", ...), all writing to stderr.
#pragma once

#include <memory>
#include <string_view>

#include <spdlog/spdlog.h>

#include "base/result.hpp"

namespace vireo::log {

// The logger of a subsystem, created on first use. Cheap to call; cache the reference on hot paths.
spdlog::logger& get(std::string_view subsystem);

// Sets every logger's level: trace, debug, info, warn, error, critical, off.
Status set_level(std::string_view level);

}  // namespace vireo::log
