// Exit handling with made-up KVM exits: port I/O and MMIO dispatch, unclaimed accesses, power
// and reset events, and the failures that must stop the VM with RIP and instruction bytes.
#include "vmm/exit_handler.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <vector>

namespace vireo::vmm {
namespace {

// Records accesses; reads return a fixed pattern.
class RecordingDevice final : public devices::BusDevice {
  public:
    void read(uint64_t offset, std::span<uint8_t> data) override {
        reads.push_back(offset);
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = static_cast<uint8_t>(0xa0 + i);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    std::vector<uint64_t> reads;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> writes;
};

class FakeInspector final : public VcpuInspector {
  public:
    std::optional<uint64_t> rip() override { return 0xffffffff81001234ull; }
    std::vector<uint8_t> instruction_bytes() override { return {0xf0, 0x48, 0x0f, 0xc7, 0x0e}; }
};

class ExitHandlerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        area.resize(8192);
        device = std::make_shared<RecordingDevice>();
        ASSERT_TRUE(pio.insert(device, 0x3f8, 8).ok());
        ASSERT_TRUE(mmio.insert(device, 0xd0000000, 0x1000).ok());
    }
    kvm_run& run() { return *reinterpret_cast<kvm_run*>(area.data()); }
    ExitResult handle() {
        ExitBuses buses{pio, mmio, unclaimed_pio, unclaimed_mmio};
        return handle_exit(area, 0, buses, inspector);
    }
    void io(uint8_t direction, uint16_t port, uint8_t size, uint32_t count) {
        std::memset(area.data(), 0, sizeof(kvm_run));
        run().exit_reason = KVM_EXIT_IO;
        run().io.direction = direction;
        run().io.port = port;
        run().io.size = size;
        run().io.count = count;
        run().io.data_offset = 4096;
    }
    void mmio_exit(uint64_t addr, uint32_t len, bool write) {
        std::memset(area.data(), 0, sizeof(kvm_run));
        run().exit_reason = KVM_EXIT_MMIO;
        run().mmio.phys_addr = addr;
        run().mmio.len = len;
        run().mmio.is_write = write;
    }

    std::vector<uint8_t> area;
    std::shared_ptr<RecordingDevice> device;
    devices::Bus pio{"port"};
    devices::Bus mmio{"MMIO"};
    UnclaimedAccessLog unclaimed_pio{"port"};
    UnclaimedAccessLog unclaimed_mmio{"MMIO"};
    FakeInspector inspector;
};

TEST_F(ExitHandlerTest, PortWriteReachesTheDeviceAtItsOffset) {
    io(KVM_EXIT_IO_OUT, 0x3f9, 1, 1);
    area[4096] = 0x42;
    EXPECT_EQ(handle().action, ExitAction::kContinue);
    ASSERT_EQ(device->writes.size(), 1u);
    EXPECT_EQ(device->writes[0].first, 1u);
    EXPECT_EQ(device->writes[0].second, std::vector<uint8_t>{0x42});
}

TEST_F(ExitHandlerTest, PortReadFillsTheRunArea) {
    io(KVM_EXIT_IO_IN, 0x3fd, 2, 1);
    EXPECT_EQ(handle().action, ExitAction::kContinue);
    EXPECT_EQ(area[4096], 0xa0);
    EXPECT_EQ(area[4097], 0xa1);
    EXPECT_EQ(device->reads, std::vector<uint64_t>{5});
}

TEST_F(ExitHandlerTest, StringIoIsOneAccessPerElement) {
    io(KVM_EXIT_IO_OUT, 0x3f8, 1, 3);
    area[4096] = 'a';
    area[4097] = 'b';
    area[4098] = 'c';
    handle();
    ASSERT_EQ(device->writes.size(), 3u);
    EXPECT_EQ(device->writes[2].second, std::vector<uint8_t>{'c'});
}

TEST_F(ExitHandlerTest, UnclaimedPortReadsAllOnesAndIsLoggedOnce) {
    io(KVM_EXIT_IO_IN, 0x1234, 4, 1);
    std::memset(area.data() + 4096, 0, 4);
    EXPECT_EQ(handle().action, ExitAction::kContinue);
    EXPECT_EQ(area[4096], 0xff);
    EXPECT_EQ(area[4099], 0xff);
    handle();
    io(KVM_EXIT_IO_OUT, 0x1234, 1, 1);
    handle();
    EXPECT_EQ(unclaimed_pio.count(), 3u);
    EXPECT_TRUE(unclaimed_pio.logged(0x1234));
    EXPECT_FALSE(unclaimed_pio.logged(0x1235));
    EXPECT_TRUE(device->writes.empty());
}

TEST_F(ExitHandlerTest, IoDataOutsideTheRunAreaIsFatal) {
    io(KVM_EXIT_IO_OUT, 0x3f8, 4, 2000);
    EXPECT_EQ(handle().action, ExitAction::kFatal);
}

TEST_F(ExitHandlerTest, MmioDispatchAndUnclaimed) {
    mmio_exit(0xd0000000, 1, true);
    run().mmio.data[0] = 123;
    EXPECT_EQ(handle().action, ExitAction::kContinue);
    ASSERT_EQ(device->writes.size(), 1u);
    EXPECT_EQ(device->writes[0].second, std::vector<uint8_t>{123});

    mmio_exit(0xd0000010, 4, false);
    handle();
    EXPECT_EQ(run().mmio.data[0], 0xa0);
    EXPECT_EQ(run().mmio.data[3], 0xa3);

    mmio_exit(0xfe000000, 8, false);
    handle();
    for (int i = 0; i < 8; ++i)
        EXPECT_EQ(run().mmio.data[i], 0xff);
    EXPECT_TRUE(unclaimed_mmio.logged(0xfe000000));
    EXPECT_EQ(unclaimed_mmio.count(), 1u);
}

TEST_F(ExitHandlerTest, UnclaimedLogStopsGrowing) {
    for (uint64_t a = 0; a < UnclaimedAccessLog::kMaxLoggedAddresses + 50; ++a) {
        mmio_exit(0xf0000000 + a * 4, 4, false);
        handle();
    }
    EXPECT_EQ(unclaimed_mmio.count(), UnclaimedAccessLog::kMaxLoggedAddresses + 50);
    EXPECT_FALSE(unclaimed_mmio.logged(0xf0000000 + (UnclaimedAccessLog::kMaxLoggedAddresses + 10) * 4));
}

TEST_F(ExitHandlerTest, ShutdownAndSystemEvents) {
    std::memset(area.data(), 0, sizeof(kvm_run));
    run().exit_reason = KVM_EXIT_SHUTDOWN;
    EXPECT_EQ(handle().action, ExitAction::kReset);
    run().exit_reason = KVM_EXIT_SYSTEM_EVENT;
    run().system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
    EXPECT_EQ(handle().action, ExitAction::kPowerOff);
    run().system_event.type = KVM_SYSTEM_EVENT_RESET;
    EXPECT_EQ(handle().action, ExitAction::kReset);
    run().system_event.type = KVM_SYSTEM_EVENT_CRASH;
    EXPECT_EQ(handle().action, ExitAction::kFatal);
    run().exit_reason = KVM_EXIT_INTR;
    EXPECT_EQ(handle().action, ExitAction::kInterrupted);
}

TEST_F(ExitHandlerTest, EmulationFailureReportsRipAndInstructionBytes) {
    std::memset(area.data(), 0, sizeof(kvm_run));
    run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run().internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    ExitResult r = handle();
    EXPECT_EQ(r.action, ExitAction::kFatal);
    EXPECT_NE(r.message.find("RIP 0xffffffff81001234"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("f0 48 0f c7 0e"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("-cx16"), std::string::npos) << r.message;

    // With KVM_CAP_EXIT_ON_EMULATION_FAILURE the bytes come from KVM itself.
    run().emulation_failure.ndata = 2;
    run().emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
    run().emulation_failure.insn_size = 3;
    run().emulation_failure.insn_bytes[0] = 0x0f;
    run().emulation_failure.insn_bytes[1] = 0xae;
    run().emulation_failure.insn_bytes[2] = 0x2f;
    r = handle();
    EXPECT_NE(r.message.find("0f ae 2f"), std::string::npos) << r.message;
}

TEST_F(ExitHandlerTest, OtherInternalErrorsAndEntryFailures) {
    std::memset(area.data(), 0, sizeof(kvm_run));
    run().exit_reason = KVM_EXIT_INTERNAL_ERROR;
    run().internal.suberror = KVM_INTERNAL_ERROR_DELIVERY_EV;
    run().internal.ndata = 2;
    run().internal.data[0] = 0x80000b0e;
    ExitResult r = handle();
    EXPECT_EQ(r.action, ExitAction::kFatal);
    EXPECT_NE(r.message.find("RIP 0x"), std::string::npos) << r.message;
    EXPECT_NE(r.message.find("0x80000b0e"), std::string::npos) << r.message;

    run().exit_reason = KVM_EXIT_FAIL_ENTRY;
    run().fail_entry.hardware_entry_failure_reason = 0x21;
    r = handle();
    EXPECT_EQ(r.action, ExitAction::kFatal);
    EXPECT_NE(r.message.find("0x21"), std::string::npos) << r.message;
}

TEST_F(ExitHandlerTest, EveryExitReasonHasAnAnswer) {
    // No reason may fall through silently: each gives continue, a stop, or a fatal error
    // that names it.
    for (uint32_t reason = 0; reason < 64; ++reason) {
        std::memset(area.data(), 0, sizeof(kvm_run));
        run().exit_reason = reason;
        if (reason == KVM_EXIT_IO) {
            run().io.size = 1;
            run().io.count = 1;
            run().io.data_offset = 4096;
        }
        ExitResult r = handle();
        if (r.action == ExitAction::kFatal) {
            EXPECT_FALSE(r.message.empty()) << reason;
        }
    }
    std::memset(area.data(), 0, sizeof(kvm_run));
    run().exit_reason = 999;
    ExitResult r = handle();
    EXPECT_EQ(r.action, ExitAction::kFatal);
    EXPECT_NE(r.message.find("unknown exit reason 999"), std::string::npos) << r.message;
    run().exit_reason = KVM_EXIT_HLT;
    EXPECT_EQ(handle().action, ExitAction::kFatal);  // never expected with the in-kernel irqchip
}

TEST_F(ExitHandlerTest, MsrExitsAreRefusedWithGp) {
    std::memset(area.data(), 0, sizeof(kvm_run));
    run().exit_reason = KVM_EXIT_X86_RDMSR;
    run().msr.index = 0x12345;
    EXPECT_EQ(handle().action, ExitAction::kContinue);
    EXPECT_EQ(run().msr.error, 1);
}

}  // namespace
}  // namespace vireo::vmm
