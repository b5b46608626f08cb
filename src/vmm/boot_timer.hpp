// BootTimer: a write of 123 to its MMIO address (layout::kBootTimerAddr) logs the time since the
// VM was built — how a guest's init marks "booted" so boot time can be measured (Firecracker's
// boot-timer device works the same way).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <span>

#include "devices/bus.hpp"

namespace vireo::vmm {

class BootTimer final : public devices::BusDevice {
  public:
    static constexpr uint8_t kMagic = 123;
    static constexpr uint64_t kSize = 0x1000;

    // `start_ns` is CLOCK_MONOTONIC when the VM was built; `now_ns` reads the clock.
    BootTimer(int64_t start_ns, std::function<int64_t()> now_ns)
        : m_start_ns(start_ns), m_now(std::move(now_ns)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Nanoseconds from VM start to the last marker (-1: none yet).
    int64_t last_boot_ns() const { return m_last; }
    uint64_t markers() const { return m_markers; }

  private:
    int64_t m_start_ns;
    std::function<int64_t()> m_now;
    std::atomic<int64_t> m_last{-1};
    std::atomic<uint64_t> m_markers{0};
};

}  // namespace vireo::vmm
