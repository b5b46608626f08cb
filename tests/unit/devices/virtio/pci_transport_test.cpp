// Tests for the virtio PCI transport, driven through its registers by the test driver with the
// entropy device behind it: identity and capabilities, feature negotiation, status rules,
// queue configuration, notifications, MSI-X and INTx, NEEDS_RESET, reset and snapshots.
#include "devices/virtio/pci_transport.hpp"

#include <gtest/gtest.h>

#include "devices/pci/pci_bus.hpp"
#include "devices/virtio/rng.hpp"
#include "fakes/virtio_driver.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::VirtioTestDriver;
using Common = VirtioPciDevice::Common;

constexpr uint64_t kRing = feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx);

struct Fixture {
    FakeGuestMemory mem{1 << 20};
    std::shared_ptr<VirtioPciDevice> dev =
        std::make_shared<VirtioPciDevice>(std::make_unique<VirtioRng>(), mem.memory());
    VirtioTestDriver drv{mem, *dev};
};

TEST(VirtioPci, IdentityAndCapabilities) {
    Fixture f;
    EXPECT_EQ(f.drv.cfg_read(0, 4), 0x1044'1AF4u);  // 0x1040 + entropy (4)
    EXPECT_EQ(f.drv.cfg_read(pci::reg(pci::Reg::kRevisionId), 1), 1u);
    EXPECT_GE(f.drv.cfg_read(pci::reg(pci::Reg::kSubsystemId), 2), 0x40u);
    for (uint8_t type : {VirtioPciDevice::kCapCommon, VirtioPciDevice::kCapNotify, VirtioPciDevice::kCapIsr,
                         VirtioPciDevice::kCapPciCfg}) {
        const auto* c = f.drv.cap(type);
        ASSERT_NE(c, nullptr) << int(type);
        EXPECT_EQ(c->bar, VirtioPciDevice::kBar);
    }
    EXPECT_EQ(f.drv.cap(VirtioPciDevice::kCapDevice), nullptr);  // the entropy device has no config
    EXPECT_EQ(f.drv.cap(VirtioPciDevice::kCapNotify)->extra, VirtioPciDevice::kNotifyMultiplier);
    EXPECT_EQ(f.drv.cap(VirtioPciDevice::kCapCommon)->length, VirtioPciDevice::kCommonSize);
    EXPECT_EQ(f.drv.common_read(Common::kNumQueues, 2), 1u);
    // Every structure lies inside the BAR.
    for (const auto& c : f.drv.caps())
        EXPECT_LE(uint64_t{c.offset} + c.length, VirtioPciDevice::kBarSize);
}

TEST(VirtioPci, FeatureNegotiation) {
    Fixture f;
    uint64_t offered = f.drv.device_features();
    EXPECT_NE(offered & feature_bit(kFeatureVersion1), 0u);
    EXPECT_EQ(offered & feature_bit(kFeatureRingPacked), 0u);
    auto features = f.drv.negotiate(kRing);
    ASSERT_TRUE(features.has_value());
    EXPECT_EQ(*features, kRing | feature_bit(kFeatureVersion1));
    EXPECT_EQ(f.dev->negotiated_features(), *features);
}

TEST(VirtioPci, FeaturesOkRefusedWithoutVersion1OrWithUnofferedBits) {
    Fixture f;
    f.drv.reset();
    f.drv.set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_FALSE(f.drv.try_features(kRing));  // no VERSION_1: legacy drivers are not served
    f.drv.reset();
    f.drv.set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_FALSE(f.drv.try_features(feature_bit(kFeatureVersion1) | feature_bit(kFeatureRingPacked)));
    EXPECT_GE(f.dev->guest_errors(), 2u);
    f.drv.reset();
    f.drv.set_status(kStatusAcknowledge | kStatusDriver);
    EXPECT_TRUE(f.drv.try_features(feature_bit(kFeatureVersion1)));
    // Features cannot change after FEATURES_OK.
    f.drv.common_write(Common::kDriverFeatureSelect, 0, 4);
    f.drv.common_write(Common::kDriverFeature, kRing, 4);
    EXPECT_EQ(f.dev->negotiated_features(), feature_bit(kFeatureVersion1));
}

TEST(VirtioPci, DriverOkWithoutFeaturesOkNeedsReset) {
    Fixture f;
    f.drv.reset();
    f.drv.set_status(kStatusAcknowledge | kStatusDriver);
    f.drv.set_status(kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
    EXPECT_NE(f.drv.status() & kStatusNeedsReset, 0);
    EXPECT_EQ(f.drv.status() & kStatusDriverOk, 0);
}

TEST(VirtioPci, StatusBitsCannotBeCleared) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing).has_value());
    uint8_t s = f.drv.status();
    f.drv.set_status(kStatusAcknowledge);
    EXPECT_EQ(f.drv.status(), s);
}

TEST(VirtioPci, QueueConfiguration) {
    Fixture f;
    ASSERT_TRUE(f.drv.negotiate(kRing));
    f.drv.common_write(Common::kQueueSelect, 0, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 256u);
    EXPECT_EQ(f.drv.common_read(Common::kQueueNotifyOff, 2), 0u);
    f.drv.common_write(Common::kQueueSize, 100, 2);  // not a power of two
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 256u);
    f.drv.common_write(Common::kQueueSize, 512, 2);  // above the maximum
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 256u);
    f.drv.common_write(Common::kQueueSize, 64, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 64u);
    f.drv.common_write(Common::kQueueDesc, 0x1'2345'6780ull, 8);
    EXPECT_EQ(f.drv.common_read(Common::kQueueDesc, 8), 0x1'2345'6780ull);
    f.drv.common_write(Common::kQueueMsixVector, 1, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueMsixVector, 2), 1u);
    f.drv.common_write(Common::kQueueMsixVector, 7, 2);  // only vectors 0..1 exist
    EXPECT_EQ(f.drv.common_read(Common::kQueueMsixVector, 2), 0xFFFFu);
    f.drv.common_write(Common::kConfigMsixVector, 99, 2);
    EXPECT_EQ(f.drv.common_read(Common::kConfigMsixVector, 2), 0xFFFFu);
    // A queue that does not exist reads size 0 and ignores writes.
    f.drv.common_write(Common::kQueueSelect, 5, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 0u);
    f.drv.common_write(Common::kQueueEnable, 1, 2);
    // Read-only registers ignore writes.
    f.drv.common_write(Common::kNumQueues, 9, 2);
    EXPECT_EQ(f.drv.common_read(Common::kNumQueues, 2), 1u);
}

TEST(VirtioPci, QueueLockedAfterEnable) {
    Fixture f;
    ASSERT_TRUE(f.drv.negotiate(kRing));
    f.drv.setup_queue(0, 16);
    uint64_t desc = f.drv.common_read(Common::kQueueDesc, 8);
    f.drv.common_write(Common::kQueueDesc, 0x8000, 8);
    f.drv.common_write(Common::kQueueSize, 32, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueDesc, 8), desc);
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 16u);
}

TEST(VirtioPci, RequestWithMsix) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing));
    uint64_t buf = f.mem.alloc(64);
    uint16_t head = f.drv.post(0, {{buf, 64, true}});
    f.drv.kick(0);
    auto used = f.drv.pop_used(0);
    ASSERT_TRUE(used.has_value());
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(used->len, 64u);
    EXPECT_EQ(f.drv.interrupts(0), 1u);
    EXPECT_EQ(f.drv.read_isr(), 0);  // MSI-X in use: the ISR is not used for queues
    auto counters = f.dev->counters();
    EXPECT_EQ(counters["bytes"], 64);
    EXPECT_EQ(counters["requests"], 1);
}

TEST(VirtioPci, RequestWithIntx) {
    Fixture f;
    Bus mmio("mmio"), pio("pio");
    auto line = std::make_shared<testing::LevelRecorder>();
    pci::PciBus bus(mmio, pio, {}, {line, line, line, line});
    ASSERT_TRUE(bus.add_device(f.dev, 1).ok());
    ASSERT_TRUE(f.drv.init(kRing, /*msix=*/false));
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    EXPECT_TRUE(line->level());
    EXPECT_EQ(f.drv.read_isr(), VirtioPciDevice::kIsrQueue);
    EXPECT_FALSE(line->level()) << "reading the ISR de-asserts INTx";
    EXPECT_EQ(f.drv.read_isr(), 0);
    EXPECT_EQ(f.drv.msi().count(), 0u);
}

TEST(VirtioPci, NotifyBeforeDriverOkIsDeferredToActivation) {
    Fixture f;
    ASSERT_TRUE(f.drv.negotiate(kRing));
    f.drv.enable_msix();
    f.drv.setup_queue(0);
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    EXPECT_FALSE(f.drv.pop_used(0).has_value());
    f.drv.driver_ok();
    EXPECT_TRUE(f.drv.pop_used(0).has_value());
}

TEST(VirtioPci, NotifyHookTakesMmioNotifies) {
    Fixture f;
    std::vector<uint16_t> hooked;
    f.dev->set_notify_hook([&](uint16_t q) { hooked.push_back(q); });
    ASSERT_TRUE(f.drv.init(kRing));
    hooked.clear();
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    EXPECT_EQ(hooked, std::vector<uint16_t>{0});
    EXPECT_FALSE(f.drv.pop_used(0).has_value()) << "nothing ran on the vCPU thread";
    f.dev->notify_queue(0);  // what the I/O thread does when the eventfd fires
    EXPECT_TRUE(f.drv.pop_used(0).has_value());
}

TEST(VirtioPci, NotifyRegionsMatchTheCapability) {
    Fixture f;
    auto regions = f.dev->notify_regions();
    ASSERT_EQ(regions.size(), 1u);
    EXPECT_EQ(regions[0].bar_offset, f.drv.cap(VirtioPciDevice::kCapNotify)->offset);
    // A notify write between queue registers is a guest error, not a crash.
    uint8_t b[2] = {0, 0};
    f.dev->bar_write(0, VirtioPciDevice::kNotifyOffset + 2, b);
    f.dev->bar_write(0, VirtioPciDevice::kNotifyOffset + 400, b);
    EXPECT_EQ(f.dev->guest_errors(), 2u);
}

TEST(VirtioPci, MalformedChainSetsNeedsResetAndKeepsGoing) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing));
    uint64_t b = f.mem.alloc(16);
    f.drv.write_desc(0, 0, b, 16, kDescFlagNext | kDescFlagWrite, 0);  // loop
    f.drv.publish(0, 0);
    f.drv.kick(0);
    EXPECT_NE(f.drv.status() & kStatusNeedsReset, 0);
    EXPECT_EQ(f.drv.config_interrupts(), 1u);
    EXPECT_FALSE(f.drv.pop_used(0).has_value());
    EXPECT_EQ(f.dev->guest_errors(), 1u);
    // Further kicks do nothing; a reset brings the device back.
    f.drv.kick(0);
    EXPECT_EQ(f.drv.config_interrupts(), 1u);
    ASSERT_TRUE(f.drv.init(kRing));
    EXPECT_EQ(f.drv.status() & kStatusNeedsReset, 0);
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    EXPECT_TRUE(f.drv.pop_used(0).has_value());
}

TEST(VirtioPci, RingsOutsideRamNeedReset) {
    Fixture f;
    ASSERT_TRUE(f.drv.negotiate(kRing));
    f.drv.enable_msix();
    f.drv.common_write(Common::kQueueSelect, 0, 2);
    f.drv.common_write(Common::kQueueDesc, 0xFFFF'0000, 8);
    f.drv.common_write(Common::kQueueDriver, 0x2000, 8);
    f.drv.common_write(Common::kQueueDevice, 0x3000, 8);
    f.drv.common_write(Common::kQueueEnable, 1, 2);
    f.drv.driver_ok();
    EXPECT_NE(f.drv.status() & kStatusNeedsReset, 0);
}

TEST(VirtioPci, ResetReturnsToInitialState) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing));
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    f.drv.set_status(0);
    EXPECT_EQ(f.drv.status(), 0);
    EXPECT_EQ(f.dev->negotiated_features(), 0u);
    f.drv.common_write(Common::kQueueSelect, 0, 2);
    EXPECT_EQ(f.drv.common_read(Common::kQueueSize, 2), 256u);
    EXPECT_EQ(f.drv.common_read(Common::kQueueEnable, 2), 0u);
    EXPECT_EQ(f.drv.common_read(Common::kQueueDesc, 8), 0u);
    EXPECT_EQ(f.drv.common_read(Common::kQueueMsixVector, 2), 0xFFFFu);
    EXPECT_EQ(f.drv.common_read(Common::kConfigMsixVector, 2), 0xFFFFu);
    // And it works again from scratch.
    ASSERT_TRUE(f.drv.init(kRing));
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    EXPECT_TRUE(f.drv.pop_used(0).has_value());
}

TEST(VirtioPci, PciConfigAccessCapability) {
    Fixture f;
    const auto* c = f.drv.cap(VirtioPciDevice::kCapPciCfg);
    ASSERT_NE(c, nullptr);
    uint32_t at = c->config_offset;
    // Read num_queues (common + 0x12, 2 bytes) through the window.
    f.drv.cfg_write(at + 4, VirtioPciDevice::kBar, 1);
    f.drv.cfg_write(at + 8, VirtioPciDevice::kCommonOffset + 0x12, 4);
    f.drv.cfg_write(at + 12, 2, 4);
    EXPECT_EQ(f.drv.cfg_read(at + 16, 2), 1u);
    // Write device_status = ACKNOWLEDGE through it.
    f.drv.cfg_write(at + 8, VirtioPciDevice::kCommonOffset + 0x14, 4);
    f.drv.cfg_write(at + 12, 1, 4);
    f.drv.cfg_write(at + 16, kStatusAcknowledge, 1);
    EXPECT_EQ(f.drv.status(), kStatusAcknowledge);
    // A bad window (length 3) is ignored.
    f.drv.cfg_write(at + 12, 3, 4);
    f.drv.cfg_write(at + 16, 0, 1);
    EXPECT_EQ(f.drv.status(), kStatusAcknowledge);
}

TEST(VirtioPci, EventIdxSuppressesInterrupts) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing));
    // The driver asks for an interrupt only after the 3rd used entry.
    f.drv.set_used_event(0, 2);
    for (int i = 0; i < 4; ++i)
        f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    // One batch of 4: a single interrupt, and avail_event tells where the device stopped.
    EXPECT_EQ(f.drv.interrupts(0), 1u);
    EXPECT_EQ(f.drv.avail_event(0), 4);
    EXPECT_EQ(f.drv.used_idx(0), 4);
}

TEST(VirtioPci, SnapshotRoundTrip) {
    Fixture f;
    ASSERT_TRUE(f.drv.init(kRing));
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    f.drv.kick(0);
    ASSERT_TRUE(f.drv.pop_used(0));
    auto state = f.dev->save_state();

    // A second device restored from it continues the same queue in the same memory.
    auto copy = std::make_shared<VirtioPciDevice>(std::make_unique<VirtioRng>(), f.mem.memory());
    auto msi = std::make_shared<testing::MsiRecorder>();
    copy->set_msix_sink(std::make_shared<pci::MsiSinkVectors>(msi));
    auto s = copy->restore_state(state);
    ASSERT_TRUE(s.ok()) << s.error().message();
    EXPECT_EQ(copy->negotiated_features(), f.dev->negotiated_features());
    uint8_t status = 0;
    copy->bar_read(0, VirtioPciDevice::kCommonOffset + 0x14, std::span<uint8_t>(&status, 1));
    EXPECT_EQ(status, f.drv.status());
    f.drv.post(0, {{f.mem.alloc(16), 16, true}});
    copy->notify_queue(0);
    EXPECT_EQ(f.drv.used_idx(0), 2);
    EXPECT_EQ(msi->count_data(VirtioTestDriver::queue_vector_data(0)), 1u);

    // Bad snapshots are refused without changing anything.
    auto bad = state;
    bad["device_id"] = 2;
    EXPECT_FALSE(copy->restore_state(bad).ok());
    bad = state;
    bad["queues"] = nlohmann::json::array();
    EXPECT_FALSE(copy->restore_state(bad).ok());
    bad = state;
    bad["queues"][0]["size"] = 1000;
    EXPECT_FALSE(copy->restore_state(bad).ok());
    EXPECT_FALSE(copy->restore_state(nlohmann::json("garbage")).ok());
    EXPECT_EQ(copy->negotiated_features(), f.dev->negotiated_features());
}

}  // namespace
}  // namespace vireo::devices::virtio
