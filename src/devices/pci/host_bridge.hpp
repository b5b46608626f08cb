// PciHostBridge: the host bridge function at 00:00.0 that tells the guest this is a PCI root.
#pragma once

#include "devices/pci/pci_device.hpp"

namespace vireo::devices::pci {

class PciHostBridge final : public PciDevice {
  public:
    // Red Hat's ID for a generic PCIe host bridge (the one QEMU's gpex presents); Linux needs
    // no driver for it and only checks the class code.
    static constexpr uint16_t kVendorId = 0x1B36;
    static constexpr uint16_t kDeviceId = 0x0008;

    PciHostBridge();

  protected:
    void bar_read_locked(int, uint64_t, std::span<uint8_t> data) override;
    void bar_write_locked(int, uint64_t, std::span<const uint8_t>) override {}
};

}  // namespace vireo::devices::pci
