// Entropy device.
#include "devices/virtio/rng.hpp"

#include <sys/random.h>

#include <cerrno>

#include "devices/pci/pci_regs.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

uint32_t VirtioRng::pci_class() const {
    return pci::kClassOther;
}

uint64_t VirtioRng::device_features() const {
    return feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx);
}

void VirtioRng::queue_notify(uint16_t queue) {
    Virtqueue& q = m_transport->queue(queue);
    DescriptorChain chain;
    bool used = false;
    for (;;) {
        for (;;) {
            auto popped = q.pop(chain);
            if (!popped.ok()) {
                m_transport->queue_error(queue, popped.error());
                return;
            }
            if (!*popped) break;
            ++m_requests;
            uint64_t written = 0;
            // §5.4.6.1: the driver only places device-writable buffers here.
            if (chain.readable_bytes() != 0) {
                ++m_errors;
                m_transport->guest_error("entropy request with device-readable buffers");
            } else {
                for (const iovec& v : chain.writable()) {
                    uint64_t want = std::min<uint64_t>(v.iov_len, kMaxBytesPerRequest - written);
                    if (want == 0) break;
                    ssize_t n = ::getrandom(v.iov_base, want, GRND_NONBLOCK);
                    if (n < 0) {
                        // Only before the host's pool is initialized; the driver retries.
                        ++m_errors;
                        break;
                    }
                    written += static_cast<uint64_t>(n);
                    if (static_cast<uint64_t>(n) < want) break;
                }
            }
            m_bytes += written;
            q.add_used(chain.head(), static_cast<uint32_t>(written));
            used = true;
        }
        if (!q.enable_notification()) break;
    }
    if (used) m_transport->notify_used(queue);
}

nlohmann::json VirtioRng::counters() const {
    return nlohmann::json{{"bytes", m_bytes}, {"requests", m_requests}, {"errors", m_errors}};
}

}  // namespace vireo::devices::virtio
