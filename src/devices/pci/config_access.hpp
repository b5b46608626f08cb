// The two ways a guest reaches PCI configuration space: configuration mechanism #1 (I/O ports
// 0xCF8 address, 0xCFC-0xCFF data) and PCI Express ECAM (memory-mapped, announced in MCFG).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "devices/bus.hpp"
#include "devices/pci/pci_bus.hpp"

namespace vireo::devices::pci {

// Ports 0xCF8-0xCFF (PCI 3.0 §3.2.2.3.2). Only dword accesses at 0xCF8 reach CONFIG_ADDRESS;
// other accesses inside 0xCF8-0xCFB are ordinary I/O. On a PC the one such register is the
// reset control register at 0xCF9 (the FADT's RESET_REG): byte accesses there go to
// `reset_register` (offset 0); everything else there reads all ones and ignores writes.
class PciConfigIo final : public BusDevice {
  public:
    static constexpr uint64_t kBase = 0xCF8;
    static constexpr uint64_t kLength = 8;
    static constexpr uint32_t kEnable = 1u << 31;

    explicit PciConfigIo(PciBus& bus, std::shared_ptr<BusDevice> reset_register = nullptr)
        : m_bus(bus), m_reset_register(std::move(reset_register)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    uint32_t address() const { return m_address.load(std::memory_order_relaxed); }

  private:
    PciBus& m_bus;
    std::shared_ptr<BusDevice> m_reset_register;  // 0xCF9
    // One latch for the machine, as on hardware; guests serialize its use themselves.
    std::atomic<uint32_t> m_address{0};
};

// ECAM: bus[27:20] device[19:15] function[14:12] register[11:0] (PCIe 4.0 §7.2.2).
class PciEcam final : public BusDevice {
  public:
    explicit PciEcam(PciBus& bus) : m_bus(bus) {}
    // Bytes of ECAM for `buses` buses.
    static constexpr uint64_t size_for(uint32_t buses) { return uint64_t{buses} << 20; }

    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

  private:
    PciBus& m_bus;
};

}  // namespace vireo::devices::pci
