// Tests for per-vCPU exit counters and the RSS reading.
#include "vmm/control/exit_counters.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "kvm/linux_kvm.hpp"

namespace vireo::vmm {
namespace {

TEST(ExitCounters, CountsByReasonName) {
    ExitCounters c;
    c.count(KVM_EXIT_IO);
    c.count(KVM_EXIT_IO);
    c.count(KVM_EXIT_MMIO);
    c.count(KVM_EXIT_HLT);
    c.count(1000);  // unknown reasons are kept, not dropped
    auto names = c.by_name();
    EXPECT_EQ(names["io"], 2u);
    EXPECT_EQ(names["mmio"], 1u);
    EXPECT_EQ(names["hlt"], 1u);
    EXPECT_EQ(names["other"], 1u);
    EXPECT_FALSE(names.contains("shutdown"));
    EXPECT_EQ(c.get(KVM_EXIT_IO), 2u);
}

TEST(ExitCounters, ReadableWhileAnotherThreadCounts) {
    ExitCounters c;
    std::thread writer([&] {
        for (int i = 0; i < 100000; ++i)
            c.count(KVM_EXIT_IO);
    });
    uint64_t last = 0;
    for (int i = 0; i < 1000; ++i) {
        uint64_t now = c.get(KVM_EXIT_IO);
        EXPECT_GE(now, last);  // monotonic as seen by a reader
        last = now;
    }
    writer.join();
    EXPECT_EQ(c.get(KVM_EXIT_IO), 100000u);
}

TEST(ExitCounters, NamesMatchTheApi) {
    EXPECT_EQ(exit_reason_name(KVM_EXIT_IO), "io");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_MMIO), "mmio");
    EXPECT_EQ(exit_reason_name(KVM_EXIT_SHUTDOWN), "shutdown");
    EXPECT_EQ(exit_reason_name(12345), "other");
}

TEST(ProcessRss, IsPlausible) {
    uint64_t rss = process_rss_bytes();
    EXPECT_GT(rss, 100u * 1024);
    EXPECT_LT(rss, 64ull << 30);
}

}  // namespace
}  // namespace vireo::vmm
