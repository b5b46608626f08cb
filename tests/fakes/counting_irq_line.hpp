// CountingIrqLine: an IrqLine for tests that records the level and counts rising edges.
#pragma once

#include <atomic>
#include <cstdint>

#include "devices/irq.hpp"

namespace vireo::testing {

class CountingIrqLine final : public devices::IrqLine {
  public:
    void set_level(bool high) override {
        ++m_calls;
        if (high && !m_level) ++m_raises;
        if (!high && m_level) ++m_lowers;
        m_level = high;
    }

    bool level() const { return m_level; }
    // Low-to-high transitions (what an edge-triggered controller counts as interrupts).
    uint64_t raises() const { return m_raises; }
    uint64_t lowers() const { return m_lowers; }
    // Every set_level call, including ones that do not change the level.
    uint64_t calls() const { return m_calls; }
    void reset_counts() {
        m_raises = 0;
        m_lowers = 0;
        m_calls = 0;
    }

  private:
    std::atomic<bool> m_level{false};
    std::atomic<uint64_t> m_raises{0};
    std::atomic<uint64_t> m_lowers{0};
    std::atomic<uint64_t> m_calls{0};
};

}  // namespace vireo::testing
