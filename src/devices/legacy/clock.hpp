// Clock: the time source legacy devices read (PM timer, RTC). Injected so tests control time.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

namespace vireo::devices {

class Clock {
  public:
    virtual ~Clock() = default;
    // Nanoseconds on a clock that never jumps (CLOCK_MONOTONIC in production).
    virtual int64_t monotonic_ns() const = 0;
    // Nanoseconds since the Unix epoch (CLOCK_REALTIME in production).
    virtual int64_t realtime_ns() const = 0;
};

// The host's clocks.
class SystemClock final : public Clock {
  public:
    int64_t monotonic_ns() const override;
    int64_t realtime_ns() const override;
};

// How a device that raises interrupts on its own (RTC periodic/alarm/update) asks to be woken:
// the device calls it with an absolute Clock::monotonic_ns() deadline, or nullopt to cancel.
// The VMM arms a timer (timerfd) and calls the device's on_timer() when it fires. Called with
// the device's lock held, from any thread: it must not call back into the device.
using TimerArm = std::function<void(std::optional<int64_t> deadline_ns)>;

}  // namespace vireo::devices
