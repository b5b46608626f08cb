// `vireo run` helpers.
#pragma once

#include <string>

#include "cli/command.hpp"

namespace vireo::cli {

// vireo-vmm beside the running `vireo` binary, or the name to look up in PATH.
std::string find_vmm_binary();

}  // namespace vireo::cli
