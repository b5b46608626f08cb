// The host bridge function: identity only, no BARs, no interrupts.
#include "devices/pci/host_bridge.hpp"

#include <cstring>

namespace vireo::devices::pci {

PciHostBridge::PciHostBridge()
    : PciDevice("host-bridge", PciIdentity{.vendor_id = kVendorId,
                                           .device_id = kDeviceId,
                                           .subsystem_vendor_id = kVendorId,
                                           .subsystem_id = 0x1100,
                                           .revision = 0,
                                           .class_code = kClassHostBridge,
                                           .interrupt_pin = 0}) {
    // Memory and I/O decode on, as a root complex always is; bus mastering is meaningless here.
    m_config.set_u16(reg(Reg::kCommand), kCommandIoSpace | kCommandMemorySpace);
}

void PciHostBridge::bar_read_locked(int, uint64_t, std::span<uint8_t> data) {
    std::memset(data.data(), 0xFF, data.size());
}

}  // namespace vireo::devices::pci
