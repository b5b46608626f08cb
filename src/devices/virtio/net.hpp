// VirtioNet: the network device (virtio 1.2 §5.1) on a NetBackend (a tap). One receive and one
// transmit queue. Transmit writes each chain to the tap with one writev from guest memory;
// receive reads one frame at a time into a bounded bounce buffer and spreads it over one chain
// (or, with VIRTIO_NET_F_MRG_RXBUF, several). Receive is driven by the tap fd's readiness
// (edge-triggered) and by the driver adding buffers; at most one frame waits for buffers, so
// nothing is buffered without bound and nothing spins.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "devices/virtio/net_backend.hpp"
#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56" (or with '-'); refuses multicast addresses.
Result<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);
// A random locally administered unicast address.
MacAddress random_mac();

struct NetOptions {
    std::optional<MacAddress> mac;  // generated when absent
    uint16_t queue_size = 256;
};

class VirtioNet final : public VirtioDevice {
  public:
    // Feature bits (§5.1.3).
    static constexpr int kFeatureCsum = 0;
    static constexpr int kFeatureGuestCsum = 1;
    static constexpr int kFeatureMtu = 3;
    static constexpr int kFeatureMac = 5;
    static constexpr int kFeatureGuestTso4 = 7;
    static constexpr int kFeatureGuestTso6 = 8;
    static constexpr int kFeatureGuestEcn = 9;
    static constexpr int kFeatureGuestUfo = 10;
    static constexpr int kFeatureHostTso4 = 11;
    static constexpr int kFeatureHostTso6 = 12;
    static constexpr int kFeatureHostEcn = 13;
    static constexpr int kFeatureHostUfo = 14;
    static constexpr int kFeatureMrgRxbuf = 15;
    static constexpr int kFeatureStatus = 16;
    static constexpr int kFeatureCtrlVq = 17;

    static constexpr uint16_t kStatusLinkUp = 1;
    static constexpr uint16_t kRxQueue = 0;
    static constexpr uint16_t kTxQueue = 1;

    // virtio_net_hdr with num_buffers (§5.1.6), 12 bytes for VERSION_1 devices.
    struct [[gnu::packed]] Header {
        uint8_t flags;
        uint8_t gso_type;
        Le<uint16_t> hdr_len;
        Le<uint16_t> gso_size;
        Le<uint16_t> csum_start;
        Le<uint16_t> csum_offset;
        Le<uint16_t> num_buffers;
    };
    static_assert(sizeof(Header) == 12);
    static constexpr uint8_t kHdrFlagNeedsCsum = 1;
    static constexpr uint8_t kHdrFlagDataValid = 2;
    static constexpr uint8_t kGsoNone = 0;
    static constexpr uint8_t kGsoTcpv4 = 1;
    static constexpr uint8_t kGsoUdp = 3;
    static constexpr uint8_t kGsoTcpv6 = 4;
    static constexpr uint8_t kGsoEcn = 0x80;

    struct [[gnu::packed]] Config {
        uint8_t mac[6];
        Le<uint16_t> status;
        Le<uint16_t> max_virtqueue_pairs;
    };
    static_assert(sizeof(Config) == 10);

    // The largest frame: a 64 KiB GSO packet with its Ethernet and VLAN headers, plus our header.
    static constexpr size_t kMaxFrame = sizeof(Header) + 65535 + 14 + 4;

    VirtioNet(std::unique_ptr<NetBackend> backend, NetOptions options);

    uint16_t device_id() const override { return kDeviceIdNet; }
    std::string name() const override;
    uint32_t pci_class() const override;
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 2; }
    uint16_t queue_max_size(uint16_t queue) const override { return queue < 2 ? m_options.queue_size : 0; }
    uint32_t config_size() const override { return sizeof(Config); }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    Status check_features(uint64_t features) const override;
    Status activate() override;
    void queue_notify(uint16_t queue) override;
    bool reset() override;
    std::vector<HostEventSource> host_event_sources() override;
    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;
    nlohmann::json counters() const override;

    // Host side (any thread; takes the lock).
    void set_link_up(bool up);
    // The backend fd became readable/writable (the I/O thread's epoll loop, edge-triggered).
    void handle_backend_events(uint32_t events);
    const MacAddress& mac() const { return m_mac; }

  private:
    void process_tx();
    void process_rx();
    // Places the pending frame into receive buffers; false when there are not enough, with
    // `seen` set to how many chains were available (and given back).
    bool deliver_frame(bool& used_any, uint16_t& seen);
    bool negotiated(int bit) const;

    std::unique_ptr<NetBackend> m_backend;
    NetOptions m_options;
    MacAddress m_mac;
    uint16_t m_status = kStatusLinkUp;

    std::vector<uint8_t> m_rx_frame;  // one frame read from the backend, waiting for buffers
    size_t m_rx_len = 0;              // 0: none pending
    bool m_tx_blocked = false;        // the backend refused a frame (EAGAIN): wait for EPOLLOUT
    DescriptorChain m_chain;
    std::vector<DescriptorChain> m_rx_chains;  // chains one mergeable frame is spread over

    struct Counters {
        uint64_t rx_frames = 0, rx_bytes = 0, rx_dropped = 0;
        uint64_t tx_frames = 0, tx_bytes = 0, tx_dropped = 0;
        uint64_t backend_errors = 0;
    } m_counters;
};

}  // namespace vireo::devices::virtio
