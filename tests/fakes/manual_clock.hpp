// ManualClock: a Clock for tests whose time moves only when the test says so.
#pragma once

#include <atomic>
#include <cstdint>

#include "devices/legacy/clock.hpp"

namespace vireo::testing {

class ManualClock final : public devices::Clock {
  public:
    // Starts at monotonic 1 s and at the given wall time (default 2024-03-15 12:34:56 UTC).
    explicit ManualClock(int64_t realtime_ns = 1'710'506'096LL * 1'000'000'000)
        : m_monotonic(1'000'000'000), m_realtime(realtime_ns) {}

    int64_t monotonic_ns() const override { return m_monotonic; }
    int64_t realtime_ns() const override { return m_realtime; }

    // Moves both clocks forward.
    void advance_ns(int64_t ns) {
        m_monotonic += ns;
        m_realtime += ns;
    }
    // Steps only the wall clock (an NTP jump on the host), which devices must not follow.
    void step_realtime_ns(int64_t ns) { m_realtime += ns; }

  private:
    std::atomic<int64_t> m_monotonic;
    std::atomic<int64_t> m_realtime;
};

}  // namespace vireo::testing
