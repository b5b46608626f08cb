// The boot-time marker device.
#include "vmm/boot_timer.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace vireo::vmm {

void BootTimer::read(uint64_t, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
}

void BootTimer::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset != 0 || data.empty() || data[0] != kMagic) return;
    int64_t elapsed = m_now() - m_start_ns;
    m_last = elapsed;
    ++m_markers;
    log::get("vmm").info("guest boot time marker: {} us ({} ms) since the VM was built", elapsed / 1000,
                         elapsed / 1'000'000);
}

}  // namespace vireo::vmm
