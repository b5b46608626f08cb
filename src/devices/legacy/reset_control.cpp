// The 0xCF9 reset control register.
#include "devices/legacy/reset_control.hpp"

namespace vireo::devices {

void ResetControl::read(uint64_t, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (auto& b : data)
        b = m_value;
}

void ResetControl::write(uint64_t, std::span<const uint8_t> data) {
    bool reset = false;
    {
        std::lock_guard lock(m_lock);
        for (uint8_t b : data) {
            // RST_CPU is self-clearing; SYS_RST and FULL_RST read back.
            m_value = b & (kSysRst | kFullRst);
            if (b & kRstCpu) {
                reset = true;
                ++m_resets;
            }
        }
    }
    if (reset && m_reset) m_reset();
}

uint64_t ResetControl::resets_requested() const {
    std::lock_guard lock(m_lock);
    return m_resets;
}

}  // namespace vireo::devices
