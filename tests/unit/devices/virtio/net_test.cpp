// Tests for virtio-net through the PCI transport and the test driver, with a packet socket pair
// standing in for the tap: features and offloads, transmit, receive with and without mergeable
// buffers, back-pressure both ways, link status, errors; and tap attachment errors.
#include "devices/virtio/net.hpp"

#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cstring>

#include "devices/virtio/pci_transport.hpp"
#include "devices/virtio/tap.hpp"
#include "fakes/packet_pair_backend.hpp"
#include "fakes/virtio_driver.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::PacketPairBackend;
using testing::VirtioTestDriver;
using Net = VirtioNet;

constexpr uint64_t kRing = feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx);
constexpr uint64_t kOffloads = feature_bit(Net::kFeatureCsum) | feature_bit(Net::kFeatureGuestCsum) |
                               feature_bit(Net::kFeatureGuestTso4) | feature_bit(Net::kFeatureGuestTso6) |
                               feature_bit(Net::kFeatureGuestEcn) | feature_bit(Net::kFeatureHostTso4) |
                               feature_bit(Net::kFeatureHostTso6) | feature_bit(Net::kFeatureHostEcn);
constexpr MacAddress kMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

class NetTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto [backend, wire] = PacketPairBackend::create();
        ASSERT_TRUE(backend);
        m_wire = wire;
        auto net = std::make_unique<VirtioNet>(std::move(backend), NetOptions{.mac = kMac});
        m_net = net.get();
        m_dev = std::make_shared<VirtioPciDevice>(std::move(net), m_mem.memory());
        m_drv = std::make_unique<VirtioTestDriver>(m_mem, *m_dev);
    }
    VirtioTestDriver& drv() { return *m_drv; }

    std::vector<uint8_t> frame(size_t payload, uint8_t seed, Net::Header hdr = {}) {
        std::vector<uint8_t> f(sizeof hdr + payload);
        std::memcpy(f.data(), &hdr, sizeof hdr);
        for (size_t i = 0; i < payload; ++i)
            f[sizeof hdr + i] = static_cast<uint8_t>(seed + i);
        return f;
    }
    void wire_send(const std::vector<uint8_t>& f) {
        ASSERT_EQ(::send(m_wire->fd.get(), f.data(), f.size(), 0), static_cast<ssize_t>(f.size()));
    }
    std::optional<std::vector<uint8_t>> wire_recv() {
        std::vector<uint8_t> buf(70000);
        ssize_t n = ::recv(m_wire->fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n < 0) return std::nullopt;
        buf.resize(static_cast<size_t>(n));
        return buf;
    }
    // Posts one transmit chain: header and payload in separate buffers.
    uint16_t transmit(const std::vector<uint8_t>& f) {
        uint64_t h = m_mem.alloc(12), p = m_mem.alloc(f.size() - 12);
        std::memcpy(m_mem.host(h), f.data(), 12);
        std::memcpy(m_mem.host(p), f.data() + 12, f.size() - 12);
        return drv().post(Net::kTxQueue, {{h, 12, false}, {p, uint32_t(f.size() - 12), false}});
    }
    uint64_t rx_buffer(uint32_t len) {
        uint64_t b = m_mem.alloc(len);
        drv().post(Net::kRxQueue, {{b, len, true}});
        return b;
    }

    FakeGuestMemory m_mem{8 << 20};
    std::shared_ptr<PacketPairBackend::Wire> m_wire;
    VirtioNet* m_net = nullptr;
    std::shared_ptr<VirtioPciDevice> m_dev;
    std::unique_ptr<VirtioTestDriver> m_drv;
};

TEST(NetMac, ParseAndGenerate) {
    auto mac = parse_mac("52:54:00:AB:cd:0f");
    ASSERT_TRUE(mac.ok());
    EXPECT_EQ(format_mac(*mac), "52:54:00:ab:cd:0f");
    EXPECT_TRUE(parse_mac("52-54-00-ab-cd-0f").ok());
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd").ok());
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd:0g").ok());
    EXPECT_FALSE(parse_mac("52:54:00:ab:cd:0f:00").ok());
    auto multicast = parse_mac("01:00:5e:00:00:01");
    ASSERT_FALSE(multicast.ok());
    EXPECT_NE(multicast.error().message().find("multicast"), std::string::npos);
    for (int i = 0; i < 16; ++i) {
        MacAddress m = random_mac();
        EXPECT_EQ(m[0] & 0x01, 0) << "unicast";
        EXPECT_EQ(m[0] & 0x02, 0x02) << "locally administered";
    }
}

TEST_F(NetTest, ConfigurationSpace) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureMac) | feature_bit(Net::kFeatureStatus)));
    uint8_t mac[6];
    drv().device_cfg_read_bytes(0, mac, 6);
    EXPECT_EQ(std::memcmp(mac, kMac.data(), 6), 0);
    EXPECT_EQ(drv().device_cfg_read(6, 2), Net::kStatusLinkUp);
    EXPECT_EQ(drv().device_cfg_read(8, 2), 1u);
    EXPECT_EQ(drv().cfg_read(0, 4), 0x1041'1AF4u);
    EXPECT_EQ(drv().cfg_read(8, 4) >> 8, pci::kClassNetworkEthernet);
}

TEST_F(NetTest, OffloadDependenciesAreEnforced) {
    drv().reset();
    drv().set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_FALSE(drv().try_features(feature_bit(kFeatureVersion1) | feature_bit(Net::kFeatureGuestTso4)));
    drv().reset();
    drv().set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_FALSE(drv().try_features(feature_bit(kFeatureVersion1) | feature_bit(Net::kFeatureHostTso6)));
    drv().reset();
    drv().set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_FALSE(drv().try_features(feature_bit(kFeatureVersion1) | feature_bit(Net::kFeatureCsum) |
                                    feature_bit(Net::kFeatureHostEcn)));
}

TEST_F(NetTest, OffloadsFollowNegotiation) {
    ASSERT_TRUE(drv().init(kRing | kOffloads));
    EXPECT_EQ(m_wire->offload, unsigned(TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN));
    ASSERT_TRUE(drv().init(kRing));
    EXPECT_EQ(m_wire->offload, 0u);
}

TEST_F(NetTest, Transmit) {
    ASSERT_TRUE(drv().init(kRing | kOffloads));
    auto f = frame(60, 1);
    uint16_t head = transmit(f);
    drv().kick(Net::kTxQueue);
    auto got = wire_recv();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, f);
    auto used = drv().pop_used(Net::kTxQueue);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(drv().interrupts(Net::kTxQueue), 1u);
    auto c = m_dev->counters();
    EXPECT_EQ(c["tx_frames"], 1);
    EXPECT_EQ(c["tx_bytes"], 60);
}

TEST_F(NetTest, TransmitGsoFrameWhenNegotiated) {
    ASSERT_TRUE(drv().init(kRing | kOffloads));
    Net::Header hdr{};
    hdr.flags = Net::kHdrFlagNeedsCsum;
    hdr.gso_type = Net::kGsoTcpv4;
    hdr.gso_size = 1448;
    auto f = frame(3000, 9, hdr);
    transmit(f);
    drv().kick(Net::kTxQueue);
    auto got = wire_recv();
    ASSERT_TRUE(got.has_value());
    EXPECT_EQ(*got, f);
}

TEST_F(NetTest, TransmitRefusesOffloadsNotNegotiated) {
    ASSERT_TRUE(drv().init(kRing));
    Net::Header hdr{};
    hdr.gso_type = Net::kGsoTcpv4;
    transmit(frame(100, 1, hdr));
    Net::Header csum{};
    csum.flags = Net::kHdrFlagNeedsCsum;
    transmit(frame(100, 2, csum));
    drv().kick(Net::kTxQueue);
    EXPECT_FALSE(wire_recv().has_value());
    EXPECT_TRUE(drv().pop_used(Net::kTxQueue));
    EXPECT_TRUE(drv().pop_used(Net::kTxQueue));
    EXPECT_EQ(m_dev->counters()["tx_dropped"], 2);
}

TEST_F(NetTest, TransmitMalformedFramesAreDropped) {
    ASSERT_TRUE(drv().init(kRing));
    uint64_t tiny = m_mem.alloc(8);
    drv().post(Net::kTxQueue, {{tiny, 8, false}});  // shorter than the header
    uint64_t w = m_mem.alloc(64);
    drv().post(Net::kTxQueue, {{w, 64, true}});  // device-writable
    uint64_t big = m_mem.alloc(Net::kMaxFrame + 1);
    drv().post(Net::kTxQueue, {{big, uint32_t(Net::kMaxFrame + 1), false}});
    drv().kick(Net::kTxQueue);
    EXPECT_FALSE(wire_recv().has_value());
    for (int i = 0; i < 3; ++i)
        EXPECT_TRUE(drv().pop_used(Net::kTxQueue));
    EXPECT_EQ(m_dev->counters()["tx_dropped"], 3);
    EXPECT_EQ(drv().status() & kStatusNeedsReset, 0);
}

TEST_F(NetTest, ReceiveIntoOneBuffer) {
    ASSERT_TRUE(drv().init(kRing));
    uint64_t b = rx_buffer(1526);
    Net::Header hdr{};
    hdr.flags = Net::kHdrFlagDataValid;  // not negotiated (no GUEST_CSUM): must reach the guest as 0
    auto f = frame(100, 3, hdr);
    wire_send(f);
    m_net->handle_backend_events(EPOLLIN);
    auto used = drv().pop_used(Net::kRxQueue);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, f.size());
    Net::Header got;
    std::memcpy(&got, m_mem.host(b), sizeof got);
    EXPECT_EQ(got.flags, 0);
    EXPECT_EQ(got.num_buffers, 1);
    EXPECT_EQ(std::memcmp(m_mem.host(b + 12), f.data() + 12, 100), 0);
    EXPECT_EQ(drv().interrupts(Net::kRxQueue), 1u);
}

TEST_F(NetTest, ReceiveMergeableAcrossBuffers) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureMrgRxbuf) | kOffloads));
    std::vector<uint64_t> bufs;
    for (int i = 0; i < 4; ++i)
        bufs.push_back(rx_buffer(1500));
    Net::Header hdr{};
    hdr.flags = Net::kHdrFlagDataValid;
    auto f = frame(4000 - 12, 5, hdr);  // 4000 bytes with the header: 3 buffers
    wire_send(f);
    m_net->handle_backend_events(EPOLLIN);
    std::vector<uint8_t> joined;
    std::vector<uint32_t> lens;
    for (int i = 0; i < 3; ++i) {
        auto used = drv().pop_used(Net::kRxQueue);
        ASSERT_TRUE(used) << i;
        lens.push_back(used->len);
        joined.insert(joined.end(), m_mem.host(bufs[i]), m_mem.host(bufs[i]) + used->len);
    }
    EXPECT_FALSE(drv().pop_used(Net::kRxQueue));
    EXPECT_EQ(lens, (std::vector<uint32_t>{1500, 1500, 1000}));
    Net::Header got;
    std::memcpy(&got, joined.data(), sizeof got);
    EXPECT_EQ(got.num_buffers, 3);
    EXPECT_EQ(got.flags, Net::kHdrFlagDataValid);
    EXPECT_EQ(std::memcmp(joined.data() + 12, f.data() + 12, f.size() - 12), 0);
}

TEST_F(NetTest, ReceiveWaitsForBuffersWithoutUnboundedBuffering) {
    ASSERT_TRUE(drv().init(kRing));
    for (uint8_t i = 0; i < 3; ++i)
        wire_send(frame(64, static_cast<uint8_t>(10 * i)));
    m_net->handle_backend_events(EPOLLIN);
    EXPECT_FALSE(drv().pop_used(Net::kRxQueue));
    // The device took one frame off the wire and holds it; the other two stay in the socket
    // until buffers arrive.
    std::vector<uint64_t> bufs;
    for (int i = 0; i < 3; ++i)
        bufs.push_back(rx_buffer(1526));
    drv().kick(Net::kRxQueue);
    for (int i = 0; i < 3; ++i) {
        auto used = drv().pop_used(Net::kRxQueue);
        ASSERT_TRUE(used) << i;
        EXPECT_EQ(m_mem.read<uint8_t>(bufs[i] + 12), static_cast<uint8_t>(10 * i)) << "in order";
    }
}

TEST_F(NetTest, ReceiveMergeableShortOfBuffersWaitsForMore) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureMrgRxbuf)));
    std::vector<uint64_t> bufs;
    for (int i = 0; i < 2; ++i)
        bufs.push_back(rx_buffer(1500));
    auto f = frame(4000 - 12, 7);  // needs 3 buffers; 2 are posted
    wire_send(f);
    m_net->handle_backend_events(EPOLLIN);  // returns: waits, does not spin on the 2 it saw
    EXPECT_FALSE(drv().pop_used(Net::kRxQueue));
    // EVENT_IDX: the driver is to notify once it posts past the two buffers already seen.
    EXPECT_EQ(drv().avail_event(Net::kRxQueue), 2);
    bufs.push_back(rx_buffer(1500));
    drv().kick(Net::kRxQueue);
    std::vector<uint32_t> lens;
    for (int i = 0; i < 3; ++i) {
        auto used = drv().pop_used(Net::kRxQueue);
        ASSERT_TRUE(used) << i;
        lens.push_back(used->len);
    }
    EXPECT_EQ(lens, (std::vector<uint32_t>{1500, 1500, 1000}));
    EXPECT_EQ(m_mem.read<uint16_t>(bufs[0] + 10), 3) << "num_buffers";
    EXPECT_EQ(std::memcmp(m_mem.host(bufs[2]), f.data() + 3000, 1000), 0);
}

TEST_F(NetTest, ReceiveFrameLargerThanAWholeQueueOfBuffersIsDropped) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureMrgRxbuf)));
    uint16_t size = drv().queue(Net::kRxQueue).size;
    std::vector<uint64_t> bufs;
    for (uint16_t i = 0; i < size; ++i)
        bufs.push_back(rx_buffer(16));
    wire_send(frame(size_t{size} * 16, 1));  // 12 bytes more than every buffer together
    wire_send(frame(4, 9));
    m_net->handle_backend_events(EPOLLIN);
    // The big frame is dropped with the buffers left available; the small one takes the first.
    auto used = drv().pop_used(Net::kRxQueue);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, 16u);
    EXPECT_EQ(m_mem.read<uint8_t>(bufs[0] + 12), 9);
    EXPECT_FALSE(drv().pop_used(Net::kRxQueue));
    EXPECT_EQ(m_net->counters()["rx_dropped"], 1);
    EXPECT_EQ(m_net->counters()["rx_frames"], 1);
}

TEST_F(NetTest, ReceiveBufferTooSmallWithoutMergeable) {
    ASSERT_TRUE(drv().init(kRing));
    rx_buffer(64);
    wire_send(frame(200, 1));
    m_net->handle_backend_events(EPOLLIN);
    EXPECT_FALSE(drv().pop_used(Net::kRxQueue)) << "the buffer stays available";
    EXPECT_EQ(m_dev->counters()["rx_dropped"], 1);
    wire_send(frame(20, 1));
    m_net->handle_backend_events(EPOLLIN);
    EXPECT_TRUE(drv().pop_used(Net::kRxQueue));
}

TEST_F(NetTest, ReceiveBufferSmallerThanHeader) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureMrgRxbuf)));
    rx_buffer(8);
    wire_send(frame(20, 1));
    m_net->handle_backend_events(EPOLLIN);
    auto used = drv().pop_used(Net::kRxQueue);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, 0u);
    EXPECT_GE(m_dev->guest_errors(), 1u);
}

TEST_F(NetTest, TransmitBackPressure) {
    ASSERT_TRUE(drv().init(kRing));
    int small = 1;  // the kernel rounds up to its minimum
    ASSERT_EQ(
        ::setsockopt(m_dev->device().host_event_sources()[0].fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small),
        0);
    std::vector<std::vector<uint8_t>> frames;
    for (uint8_t i = 0; i < 8; ++i) {
        frames.push_back(frame(3000, i));
        transmit(frames.back());
    }
    drv().kick(Net::kTxQueue);
    size_t sent_first = 0;
    while (drv().pop_used(Net::kTxQueue))
        ++sent_first;
    ASSERT_LT(sent_first, 8u) << "the socket should have pushed back";
    // Drain the wire; the device continues on EPOLLOUT.
    size_t received = 0;
    for (int round = 0; round < 20 && received < 8; ++round) {
        while (auto f = wire_recv()) {
            EXPECT_EQ(*f, frames[received]);
            ++received;
        }
        m_net->handle_backend_events(EPOLLOUT);
    }
    EXPECT_EQ(received, 8u);
}

TEST_F(NetTest, LinkStatusChange) {
    ASSERT_TRUE(drv().init(kRing | feature_bit(Net::kFeatureStatus)));
    m_net->set_link_up(false);
    EXPECT_EQ(drv().device_cfg_read(6, 2), 0u);
    EXPECT_EQ(drv().config_interrupts(), 1u);
    EXPECT_EQ(drv().common_read(VirtioPciDevice::Common::kConfigGeneration, 1), 1u);
    m_net->set_link_up(true);
    EXPECT_EQ(drv().device_cfg_read(6, 2), Net::kStatusLinkUp);
}

TEST_F(NetTest, MalformedChainNeedsReset) {
    ASSERT_TRUE(drv().init(kRing));
    drv().write_desc(Net::kRxQueue, 0, 0x10000, 64, kDescFlagWrite | kDescFlagNext, 0);
    drv().publish(Net::kRxQueue, 0);
    wire_send(frame(20, 1));
    m_net->handle_backend_events(EPOLLIN);
    EXPECT_NE(drv().status() & kStatusNeedsReset, 0);
}

TEST_F(NetTest, ResetDropsTheWaitingFrame) {
    ASSERT_TRUE(drv().init(kRing));
    wire_send(frame(20, 1));
    m_net->handle_backend_events(EPOLLIN);
    drv().reset();
    EXPECT_EQ(drv().status(), 0);
    EXPECT_EQ(m_dev->counters()["rx_dropped"], 1);
}

TEST_F(NetTest, SnapshotKeepsTheMac) {
    ASSERT_TRUE(drv().init(kRing));
    auto state = m_dev->save_state();
    auto [backend, wire] = PacketPairBackend::create();
    auto other = std::make_shared<VirtioPciDevice>(
        std::make_unique<VirtioNet>(std::move(backend), NetOptions{}), m_mem.memory());
    ASSERT_TRUE(other->restore_state(state).ok());
    EXPECT_EQ(static_cast<VirtioNet&>(other->device()).mac(), kMac);
    EXPECT_EQ(wire->offload, 0u) << "activation on restore applied the offloads";
    state["device"]["mac"] = "zz";
    EXPECT_FALSE(other->restore_state(state).ok());
}

TEST(Tap, MissingInterfaceIsAClearError) {
    auto tap = Tap::open("vireo-no-such0");
    ASSERT_FALSE(tap.ok());
    EXPECT_NE(tap.error().message().find("no such network interface"), std::string::npos)
        << tap.error().message();
    EXPECT_NE(tap.error().message().find("ip tuntap add"), std::string::npos);
    EXPECT_FALSE(Tap::open("").ok());
    EXPECT_FALSE(Tap::open("a-name-that-is-far-too-long").ok());
}

TEST(Tap, NonTapInterfaceIsRefused) {
    auto tap = Tap::open("lo");
    ASSERT_FALSE(tap.ok());
    if (tap.error().os_error() == ENOENT || tap.error().os_error() == EACCES ||
        tap.error().os_error() == EPERM)
        GTEST_SKIP() << "no usable /dev/net/tun here: " << tap.error().message();
    EXPECT_NE(tap.error().message().find("not a tap"), std::string::npos) << tap.error().message();
}

}  // namespace
}  // namespace vireo::devices::virtio
