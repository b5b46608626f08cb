// ResetControl: the reset control register at I/O 0xCF9 that the FADT names as RESET_REG.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>

#include "devices/bus.hpp"

namespace vireo::devices {

// The PIIX/ICH reset control register at I/O 0xCF9 that the FADT names as RESET_REG: a write
// with RST_CPU (bit 2) set resets the machine (Linux writes 0x06; 0x0E asks for a full reset).
// 0xCF9 lies inside the PCI CONFIG_ADDRESS dword (0xCF8-0xCFB), which only answers 32-bit
// accesses: the owner of 0xCF8 forwards byte accesses at 0xCF9 here.
class ResetControl final : public BusDevice {
  public:
    static constexpr uint8_t kSysRst = 1 << 1;
    static constexpr uint8_t kRstCpu = 1 << 2;
    static constexpr uint8_t kFullRst = 1 << 3;
    // The FADT RESET_VALUE.
    static constexpr uint8_t kResetValue = kSysRst | kRstCpu;

    // `reset` is called (without the lock) for every write that sets RST_CPU.
    explicit ResetControl(std::function<void()> reset) : m_reset(std::move(reset)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint64_t resets_requested() const;

  private:
    std::function<void()> m_reset;
    mutable std::mutex m_lock;
    uint8_t m_value = 0;
    uint64_t m_resets = 0;
};

}  // namespace vireo::devices
