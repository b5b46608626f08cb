// `vireo img` (create, info, check, convert, commit, resize, compare, map): renderings of
// image descriptions as text for people and JSON for scripts.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "disk/image.hpp"
#include "disk/image_check.hpp"

namespace vireo::cli {

nlohmann::json info_json(const disk::ImageInfo& info);
std::string info_text(const disk::ImageInfo& info);

nlohmann::json check_json(const disk::CheckReport& report);
std::string check_text(const disk::CheckReport& report);

// `chain` names the image (depth 0) and its parents (depth 1, 2, ...).
nlohmann::json map_json(const std::vector<disk::Extent>& extents);
std::string map_text(const std::vector<disk::Extent>& extents, const std::vector<std::string>& chain);

}  // namespace vireo::cli
