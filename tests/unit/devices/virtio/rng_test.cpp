// Tests for virtio-rng: buffers are filled from the host's entropy, within the per-request cap.
#include "devices/virtio/rng.hpp"

#include <gtest/gtest.h>

#include "devices/virtio/pci_transport.hpp"
#include "fakes/virtio_driver.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::VirtioTestDriver;

TEST(VirtioRng, FillsBuffers) {
    FakeGuestMemory mem(1 << 20);
    VirtioPciDevice dev(std::make_unique<VirtioRng>(), mem.memory());
    VirtioTestDriver drv(mem, dev);
    ASSERT_TRUE(drv.init(feature_bit(kFeatureRingIndirectDesc)));
    uint64_t a = mem.alloc(256), b = mem.alloc(256);
    drv.post(0, {{a, 256, true}, {b, 256, true}});
    drv.kick(0);
    auto used = drv.pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, 512u);
    int nonzero = 0;
    for (int i = 0; i < 256; ++i)
        nonzero += mem.read<uint8_t>(b + i) != 0;
    EXPECT_GT(nonzero, 200);  // 256 random bytes: about 255 are non-zero
}

TEST(VirtioRng, CapsOneRequest) {
    FakeGuestMemory mem(1 << 20);
    VirtioPciDevice dev(std::make_unique<VirtioRng>(), mem.memory());
    VirtioTestDriver drv(mem, dev);
    ASSERT_TRUE(drv.init(0));
    uint64_t big = mem.alloc(256 * 1024);
    drv.post(0, {{big, 256 * 1024, true}});
    drv.kick(0);
    auto used = drv.pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, VirtioRng::kMaxBytesPerRequest);
}

TEST(VirtioRng, ReadableBuffersAreAnError) {
    FakeGuestMemory mem(1 << 20);
    VirtioPciDevice dev(std::make_unique<VirtioRng>(), mem.memory());
    VirtioTestDriver drv(mem, dev);
    ASSERT_TRUE(drv.init(0));
    uint64_t a = mem.alloc(16);
    drv.post(0, {{a, 16, false}});
    drv.kick(0);
    auto used = drv.pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->len, 0u);
    EXPECT_EQ(dev.guest_errors(), 1u);
}

}  // namespace
}  // namespace vireo::devices::virtio
