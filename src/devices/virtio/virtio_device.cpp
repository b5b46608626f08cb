// VirtioDevice defaults.
#include "devices/virtio/virtio_device.hpp"

namespace vireo::devices::virtio {

void VirtioDevice::write_config(uint32_t, std::span<const uint8_t>) {
    if (m_transport != nullptr) m_transport->guest_error("write to read-only device configuration");
}

Status VirtioDevice::check_features(uint64_t) const {
    return {};
}

}  // namespace vireo::devices::virtio
