// VirtioRng: the entropy device (virtio 1.2 §5.4): fills the driver's buffers from getrandom().
#pragma once

#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

class VirtioRng final : public VirtioDevice {
  public:
    // The most bytes one request gets, so one hostile chain cannot hold the I/O thread long.
    static constexpr uint64_t kMaxBytesPerRequest = 64 * 1024;

    uint16_t device_id() const override { return kDeviceIdEntropy; }
    std::string name() const override { return "virtio-rng"; }
    uint32_t pci_class() const override;
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 1; }
    uint32_t config_size() const override { return 0; }
    void read_config(uint32_t, std::span<uint8_t>) override {}
    Status activate() override { return {}; }
    void queue_notify(uint16_t queue) override;
    bool reset() override { return true; }
    nlohmann::json counters() const override;

  private:
    uint64_t m_bytes = 0;
    uint64_t m_requests = 0;
    uint64_t m_errors = 0;
};

}  // namespace vireo::devices::virtio
