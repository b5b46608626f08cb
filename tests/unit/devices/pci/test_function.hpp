// A PCI function for the PCI tests: two memory BARs (one 64-bit), one I/O BAR, MSI-X in BAR 0,
// INTA#, and registers that record the last BAR access.
#pragma once

#include <cstring>
#include <mutex>

#include "base/endian.hpp"
#include "devices/pci/msix.hpp"
#include "devices/pci/pci_device.hpp"

namespace vireo::devices::pci::test {

class TestFunction final : public PciDevice {
  public:
    static constexpr uint64_t kBar0Size = 0x4000;   // 32-bit memory: registers + MSI-X
    static constexpr uint64_t kBar2Size = 0x10000;  // 64-bit prefetchable memory
    static constexpr uint64_t kBar4Size = 0x20;     // I/O
    static constexpr uint32_t kTableOffset = 0x2000;
    static constexpr uint32_t kPbaOffset = 0x3000;

    TestFunction()
        : PciDevice("test", PciIdentity{.vendor_id = 0x1234,
                                        .device_id = 0x5678,
                                        .subsystem_vendor_id = 0x1234,
                                        .subsystem_id = 0x0001,
                                        .revision = 2,
                                        .class_code = 0xFF0000,
                                        .interrupt_pin = 1}),
          m_msix(m_config, 4, 0, kTableOffset, kPbaOffset) {
        m_config.define_bar(0, BarInfo{BarKind::kMemory32, kBar0Size, false});
        m_config.define_bar(2, BarInfo{BarKind::kMemory64, kBar2Size, true});
        m_config.define_bar(4, BarInfo{BarKind::kIo, kBar4Size, false});
    }

    Msix& msix() { return m_msix; }
    std::mutex& lock() { return m_lock; }
    void request_intx(bool level) {
        std::lock_guard lock(m_lock);
        set_intx_locked(level);
    }
    void signal(uint16_t vector) {
        std::lock_guard lock(m_lock);
        m_msix.notify(vector);
    }

    int last_bar = -1;
    uint64_t last_offset = 0;
    uint32_t last_value = 0;

  protected:
    void config_write_locked(uint32_t offset, std::span<const uint8_t> data) override {
        PciDevice::config_write_locked(offset, data);
        m_msix.config_written(offset, data.size());
    }
    void bar_read_locked(int bar, uint64_t offset, std::span<uint8_t> data) override {
        if (bar == 0 && offset >= kTableOffset && offset < kTableOffset + m_msix.table_size_bytes()) {
            m_msix.table_read(offset - kTableOffset, data);
            return;
        }
        if (bar == 0 && offset >= kPbaOffset && offset < kPbaOffset + m_msix.pba_size_bytes()) {
            m_msix.pba_read(offset - kPbaOffset, data);
            return;
        }
        last_bar = bar;
        last_offset = offset;
        std::memset(data.data(), 0x5A, data.size());
    }
    void bar_write_locked(int bar, uint64_t offset, std::span<const uint8_t> data) override {
        if (bar == 0 && offset >= kTableOffset && offset < kTableOffset + m_msix.table_size_bytes()) {
            m_msix.table_write(offset - kTableOffset, data);
            return;
        }
        last_bar = bar;
        last_offset = offset;
        last_value = 0;
        std::memcpy(&last_value, data.data(), std::min<size_t>(4, data.size()));
    }

  private:
    Msix m_msix;
};

}  // namespace vireo::devices::pci::test
