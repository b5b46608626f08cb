// VirtioConsole: the console device (virtio 1.2 §5.3) with one port, which Linux names hvc0.
// Output goes to a host sink; host input waits in a bounded buffer until the guest posts
// receive buffers. VIRTIO_CONSOLE_F_EMERG_WRITE lets the guest write before the queues run.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <span>

#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

class VirtioConsole final : public VirtioDevice {
  public:
    static constexpr int kFeatureSize = 0;
    static constexpr int kFeatureMultiport = 1;
    static constexpr int kFeatureEmergWrite = 2;
    static constexpr uint16_t kRxQueue = 0;  // receiveq of port 0: host to guest
    static constexpr uint16_t kTxQueue = 1;  // transmitq of port 0: guest to host
    // Host input held while the guest has no buffers posted; beyond it input is refused.
    static constexpr size_t kInputLimit = 64 * 1024;

    struct [[gnu::packed]] Config {
        Le<uint16_t> cols;
        Le<uint16_t> rows;
        Le<uint32_t> max_nr_ports;
        Le<uint32_t> emerg_wr;
    };
    static_assert(sizeof(Config) == 12);

    // `output` receives what the guest writes (called with the device lock held, on the I/O
    // thread or, for emergency writes, a vCPU thread).
    explicit VirtioConsole(std::function<void(std::span<const uint8_t>)> output);

    uint16_t device_id() const override { return kDeviceIdConsole; }
    std::string name() const override { return "virtio-console"; }
    uint32_t pci_class() const override;
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 2; }
    uint16_t queue_max_size(uint16_t queue) const override { return queue < 2 ? 128 : 0; }
    uint32_t config_size() const override { return sizeof(Config); }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    void write_config(uint32_t offset, std::span<const uint8_t> data) override;
    Status activate() override { return {}; }
    void queue_notify(uint16_t queue) override;
    bool reset() override { return true; }
    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;
    nlohmann::json counters() const override;

    // Host input for the guest (takes the lock). Returns how many bytes were accepted: fewer
    // than given when the bounded buffer is full (the caller keeps the rest).
    size_t host_input(std::span<const uint8_t> bytes);
    size_t pending_input() const;
    // Called (with the lock held: it must only schedule work) when held input has all been
    // delivered, so a host reader that stopped on a full buffer can resume.
    void set_input_space_callback(std::function<void()> callback);

  private:
    void process_tx();
    void process_rx();

    std::function<void(std::span<const uint8_t>)> m_output;
    std::function<void()> m_input_space;
    bool m_input_was_full = false;
    std::deque<uint8_t> m_input;
    std::vector<uint8_t> m_scratch;
    uint64_t m_tx_bytes = 0;
    uint64_t m_rx_bytes = 0;
    uint64_t m_requests = 0;
    uint64_t m_errors = 0;
};

}  // namespace vireo::devices::virtio
