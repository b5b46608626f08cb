// Configuration mechanism #1 and ECAM.
#include "devices/pci/config_access.hpp"

#include <cstring>

#include "base/endian.hpp"

namespace vireo::devices::pci {

namespace {
struct ConfigAddress {
    uint8_t bus;
    uint8_t slot;
    uint8_t function;
    uint32_t reg;
};
ConfigAddress decode_cf8(uint32_t address) {
    return ConfigAddress{static_cast<uint8_t>(address >> 16), static_cast<uint8_t>((address >> 11) & 0x1F),
                         static_cast<uint8_t>((address >> 8) & 0x7), address & 0xFC};
}
}  // namespace

void PciConfigIo::read(uint64_t offset, std::span<uint8_t> data) {
    if (offset < 4) {
        if (offset == 0 && data.size() == 4) {
            store_le<uint32_t>(data.data(), m_address.load(std::memory_order_relaxed));
        } else if (offset == 1 && data.size() == 1 && m_reset_register) {
            m_reset_register->read(0, data);
        } else {
            std::memset(data.data(), 0xFF, data.size());
        }
        return;
    }
    uint32_t address = m_address.load(std::memory_order_relaxed);
    if ((address & kEnable) == 0) {
        std::memset(data.data(), 0xFF, data.size());
        return;
    }
    ConfigAddress a = decode_cf8(address);
    m_bus.config_read(a.bus, a.slot, a.function, a.reg + static_cast<uint32_t>(offset - 4), data);
}

void PciConfigIo::write(uint64_t offset, std::span<const uint8_t> data) {
    if (offset < 4) {
        if (offset == 0 && data.size() == 4) {
            // Bits 1:0 are read-only 0; bits 30:24 are reserved and kept 0.
            m_address.store(load_le<uint32_t>(data.data()) & 0x80FF'FFFCu, std::memory_order_relaxed);
        } else if (offset == 1 && data.size() == 1 && m_reset_register) {
            m_reset_register->write(0, data);
        }
        return;
    }
    uint32_t address = m_address.load(std::memory_order_relaxed);
    if ((address & kEnable) == 0) return;
    ConfigAddress a = decode_cf8(address);
    m_bus.config_write(a.bus, a.slot, a.function, a.reg + static_cast<uint32_t>(offset - 4), data);
}

void PciEcam::read(uint64_t offset, std::span<uint8_t> data) {
    m_bus.config_read(static_cast<uint8_t>(offset >> 20), static_cast<uint8_t>((offset >> 15) & 0x1F),
                      static_cast<uint8_t>((offset >> 12) & 0x7), static_cast<uint32_t>(offset & 0xFFF),
                      data);
}

void PciEcam::write(uint64_t offset, std::span<const uint8_t> data) {
    m_bus.config_write(static_cast<uint8_t>(offset >> 20), static_cast<uint8_t>((offset >> 15) & 0x1F),
                       static_cast<uint8_t>((offset >> 12) & 0x7), static_cast<uint32_t>(offset & 0xFFF),
                       data);
}

}  // namespace vireo::devices::pci
