// Counting and log-once reporting of guest mistakes.
#include "devices/legacy/guest_errors.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace vireo::devices {

void GuestErrors::report(std::string_view kind, std::string_view detail) {
    ++m_count;
    if (std::find(m_logged.begin(), m_logged.end(), kind) != m_logged.end()) return;
    m_logged.emplace_back(kind);
    if (detail.empty()) {
        log::get("devices").warn("{}: guest error: {} (logged once)", m_device, kind);
    } else {
        log::get("devices").warn("{}: guest error: {}: {} (logged once)", m_device, kind, detail);
    }
}

}  // namespace vireo::devices
