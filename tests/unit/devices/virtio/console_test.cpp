// Tests for virtio-console: output, bounded input, emergency writes, configuration.
#include "devices/virtio/console.hpp"

#include <gtest/gtest.h>

#include <string>

#include "devices/virtio/pci_transport.hpp"
#include "fakes/virtio_driver.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::VirtioTestDriver;

constexpr uint64_t kWanted = feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx) |
                             feature_bit(VirtioConsole::kFeatureEmergWrite);

struct Fixture {
    FakeGuestMemory mem{1 << 20};
    std::string out;
    VirtioConsole* console = nullptr;
    std::shared_ptr<VirtioPciDevice> dev;
    std::unique_ptr<VirtioTestDriver> drv;
    Fixture() {
        auto c = std::make_unique<VirtioConsole>([this](std::span<const uint8_t> b) {
            out.append(reinterpret_cast<const char*>(b.data()), b.size());
        });
        console = c.get();
        dev = std::make_shared<VirtioPciDevice>(std::move(c), mem.memory());
        drv = std::make_unique<VirtioTestDriver>(mem, *dev);
    }
    uint64_t text(const std::string& s) {
        uint64_t at = mem.alloc(s.size());
        std::memcpy(mem.host(at), s.data(), s.size());
        return at;
    }
};

TEST(VirtioConsole, ConfigurationAndIdentity) {
    Fixture f;
    ASSERT_TRUE(f.drv->init(kWanted));
    EXPECT_EQ(f.drv->cfg_read(0, 4), 0x1043'1AF4u);
    EXPECT_EQ(f.drv->device_cfg_read(4, 4), 1u);  // max_nr_ports
    EXPECT_EQ(f.drv->common_read(VirtioPciDevice::Common::kNumQueues, 2), 2u);
}

TEST(VirtioConsole, Output) {
    Fixture f;
    ASSERT_TRUE(f.drv->init(kWanted));
    uint64_t a = f.text("hello, "), b = f.text("hvc0\n");
    f.drv->post(VirtioConsole::kTxQueue, {{a, 7, false}, {b, 5, false}});
    f.drv->post(VirtioConsole::kTxQueue, {{f.text("again"), 5, false}}, /*indirect=*/true);
    f.drv->kick(VirtioConsole::kTxQueue);
    EXPECT_EQ(f.out, "hello, hvc0\nagain");
    EXPECT_TRUE(f.drv->pop_used(VirtioConsole::kTxQueue));
    EXPECT_TRUE(f.drv->pop_used(VirtioConsole::kTxQueue));
    EXPECT_EQ(f.dev->counters()["tx_bytes"], 17);
}

TEST(VirtioConsole, InputWaitsForBuffers) {
    Fixture f;
    ASSERT_TRUE(f.drv->init(kWanted));
    const std::string typed = "root\n";
    EXPECT_EQ(f.console->host_input({reinterpret_cast<const uint8_t*>(typed.data()), typed.size()}),
              typed.size());
    EXPECT_EQ(f.console->pending_input(), typed.size());
    uint64_t b1 = f.mem.alloc(3), b2 = f.mem.alloc(16);
    f.drv->post(VirtioConsole::kRxQueue, {{b1, 3, true}});
    f.drv->post(VirtioConsole::kRxQueue, {{b2, 16, true}});
    f.drv->kick(VirtioConsole::kRxQueue);
    auto u1 = f.drv->pop_used(VirtioConsole::kRxQueue);
    auto u2 = f.drv->pop_used(VirtioConsole::kRxQueue);
    ASSERT_TRUE(u1 && u2);
    EXPECT_EQ(u1->len, 3u);
    EXPECT_EQ(u2->len, 2u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(f.mem.host(b1)), 3) +
                  std::string(reinterpret_cast<char*>(f.mem.host(b2)), 2),
              typed);
    EXPECT_EQ(f.console->pending_input(), 0u);
    // Buffers already posted: input goes straight in.
    uint64_t b3 = f.mem.alloc(8);
    f.drv->post(VirtioConsole::kRxQueue, {{b3, 8, true}});
    f.drv->kick(VirtioConsole::kRxQueue);
    uint8_t x = 'x';
    f.console->host_input({&x, 1});
    auto u3 = f.drv->pop_used(VirtioConsole::kRxQueue);
    ASSERT_TRUE(u3);
    EXPECT_EQ(u3->len, 1u);
    EXPECT_EQ(f.mem.read<uint8_t>(b3), 'x');
}

TEST(VirtioConsole, InputIsBounded) {
    Fixture f;
    ASSERT_TRUE(f.drv->init(kWanted));
    std::vector<uint8_t> lots(VirtioConsole::kInputLimit + 100, 'a');
    EXPECT_EQ(f.console->host_input(lots), VirtioConsole::kInputLimit);
    EXPECT_EQ(f.console->host_input(lots), 0u);
}

TEST(VirtioConsole, EmergencyWrite) {
    Fixture f;
    ASSERT_TRUE(f.drv->negotiate(kWanted));
    f.drv->device_cfg_write(8, 'E', 4);  // before DRIVER_OK, as early boot code does
    EXPECT_EQ(f.out, "E");
    f.drv->device_cfg_write(0, 80, 2);  // cols is read-only
    EXPECT_EQ(f.drv->device_cfg_read(0, 2), 0u);
}

TEST(VirtioConsole, SnapshotKeepsPendingInput) {
    Fixture f;
    ASSERT_TRUE(f.drv->init(kWanted));
    uint8_t in[] = {'a', 'b'};
    f.console->host_input(in);
    auto state = f.dev->save_state();
    Fixture g;
    ASSERT_TRUE(g.dev->restore_state(state).ok());
    EXPECT_EQ(g.console->pending_input(), 2u);
    state["device"]["input"] = "zz";
    EXPECT_FALSE(g.dev->restore_state(state).ok());
}

}  // namespace
}  // namespace vireo::devices::virtio
