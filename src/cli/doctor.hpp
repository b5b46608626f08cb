// `vireo doctor`: the host report, as text for people and JSON for scripts.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "kvm/probe.hpp"

namespace vireo::cli {

nlohmann::json doctor_json(const kvm::HostReport& report);
std::string doctor_text(const kvm::HostReport& report);

}  // namespace vireo::cli
