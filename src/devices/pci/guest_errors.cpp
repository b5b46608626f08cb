// Guest mistake counting with log-once per kind.
#include "devices/pci/guest_errors.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace vireo::devices::pci {

void GuestErrorCounter::report(std::string_view kind, std::string_view detail) {
    ++m_count;
    if (std::find(m_logged.begin(), m_logged.end(), kind) != m_logged.end()) return;
    m_logged.emplace_back(kind);
    if (detail.empty()) {
        log::get("virtio").warn("{}: guest error: {} (further ones are counted, not logged)", m_device, kind);
    } else {
        log::get("virtio").warn("{}: guest error: {}: {} (further ones are counted, not logged)", m_device,
                                kind, detail);
    }
}

}  // namespace vireo::devices::pci
