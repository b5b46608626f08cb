// Tests for the split virtqueue: the validating chain walker against every malformed chain we
// know of, the used ring, and both directions of notification suppression.
#include "devices/virtio/queue.hpp"

#include <gtest/gtest.h>

#include "devices/virtio/virtio_spec.hpp"
#include "fakes/fake_guest_memory.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;

constexpr uint64_t kAllFeatures =
    feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx) | feature_bit(kFeatureVersion1);

struct Ring {
    FakeGuestMemory mem{1 << 20};
    Virtqueue q{8};
    uint64_t desc = 0, avail = 0, used = 0;
    uint16_t avail_idx = 0;

    explicit Ring(uint64_t features = kAllFeatures, uint16_t size = 8) {
        EXPECT_TRUE(q.set_size(size));
        desc = mem.alloc(desc_table_size(size), 16);
        avail = mem.alloc(avail_ring_size(size), 2);
        used = mem.alloc(used_ring_size(size), 4);
        q.set_desc_addr(desc);
        q.set_driver_addr(avail);
        q.set_device_addr(used);
        q.set_enabled(true);
        auto s = q.activate(mem.memory(), features);
        EXPECT_TRUE(s.ok()) << s.error().message();
    }
    void set_desc(uint64_t table, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags,
                  uint16_t next = 0) {
        VirtqDesc d;
        d.addr = addr;
        d.len = len;
        d.flags = flags;
        d.next = next;
        mem.write(table + 16u * i, d);
    }
    void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
        set_desc(desc, i, addr, len, flags, next);
    }
    void publish(uint16_t head) {
        mem.write<uint16_t>(avail + 4 + 2u * (avail_idx % q.size()), head);
        ++avail_idx;
        mem.write<uint16_t>(avail + 2, avail_idx);
    }
    std::string pop_error() {
        DescriptorChain chain;
        auto r = q.pop(chain);
        if (r.ok()) return *r ? "popped" : "empty";
        return r.error().message();
    }
};

TEST(Virtqueue, PopsAReadableThenWritableChain) {
    Ring r;
    uint64_t hdr = r.mem.alloc(16), data = r.mem.alloc(512), status = r.mem.alloc(1);
    r.set_desc(3, hdr, 16, kDescFlagNext, 5);
    r.set_desc(5, data, 512, kDescFlagNext | kDescFlagWrite, 1);
    r.set_desc(1, status, 1, kDescFlagWrite);
    r.publish(3);
    EXPECT_EQ(r.q.pending(), 1);
    DescriptorChain chain;
    auto popped = r.q.pop(chain);
    ASSERT_TRUE(popped.ok()) << popped.error().message();
    ASSERT_TRUE(*popped);
    EXPECT_EQ(chain.head(), 3);
    ASSERT_EQ(chain.readable().size(), 1u);
    ASSERT_EQ(chain.writable().size(), 2u);
    EXPECT_EQ(chain.readable()[0].iov_base, r.mem.host(hdr));
    EXPECT_EQ(chain.writable()[0].iov_base, r.mem.host(data));
    EXPECT_EQ(chain.readable_bytes(), 16u);
    EXPECT_EQ(chain.writable_bytes(), 513u);
    EXPECT_EQ(chain.descriptor_count(), 3u);
    auto again = r.q.pop(chain);
    ASSERT_TRUE(again.ok());
    EXPECT_FALSE(*again);
}

TEST(Virtqueue, CopiesAcrossSegments) {
    Ring r;
    uint64_t a = r.mem.alloc(3), b = r.mem.alloc(5);
    r.mem.fill(a, 0x11, 3);
    r.mem.fill(b, 0x22, 5);
    r.set_desc(0, a, 3, kDescFlagNext, 1);
    r.set_desc(1, b, 5, 0);
    r.publish(0);
    DescriptorChain chain;
    ASSERT_TRUE(*r.q.pop(chain));
    uint8_t out[6] = {};
    EXPECT_EQ(chain.read(1, out), 6u);
    EXPECT_EQ(out[0], 0x11);
    EXPECT_EQ(out[1], 0x11);
    EXPECT_EQ(out[2], 0x22);
    EXPECT_EQ(chain.read(7, out), 1u);
    std::vector<iovec> slice;
    EXPECT_TRUE(chain.slice_readable(2, 3, slice));
    ASSERT_EQ(slice.size(), 2u);
    EXPECT_EQ(slice[0].iov_len, 1u);
    EXPECT_EQ(slice[1].iov_len, 2u);
    EXPECT_FALSE(chain.slice_readable(7, 2, slice));
}

TEST(Virtqueue, IndirectTable) {
    Ring r;
    uint64_t table = r.mem.alloc(3 * 16), hdr = r.mem.alloc(16), data = r.mem.alloc(4096),
             st = r.mem.alloc(1);
    r.set_desc(table, 0, hdr, 16, kDescFlagNext, 1);
    r.set_desc(table, 1, data, 4096, kDescFlagNext | kDescFlagWrite, 2);
    r.set_desc(table, 2, st, 1, kDescFlagWrite);
    r.set_desc(2, table, 48, kDescFlagIndirect | kDescFlagWrite);  // WRITE on the pointer is ignored
    r.publish(2);
    DescriptorChain chain;
    auto popped = r.q.pop(chain);
    ASSERT_TRUE(popped.ok()) << popped.error().message();
    EXPECT_EQ(chain.head(), 2);
    EXPECT_EQ(chain.readable_bytes(), 16u);
    EXPECT_EQ(chain.writable_bytes(), 4097u);
}

TEST(Virtqueue, DirectDescriptorsThenIndirect) {
    Ring r;
    uint64_t table = r.mem.alloc(16), hdr = r.mem.alloc(16), data = r.mem.alloc(64);
    r.set_desc(table, 0, data, 64, kDescFlagWrite);
    r.set_desc(0, hdr, 16, kDescFlagNext, 1);
    r.set_desc(1, table, 16, kDescFlagIndirect);
    r.publish(0);
    DescriptorChain chain;
    auto popped = r.q.pop(chain);
    ASSERT_TRUE(popped.ok()) << popped.error().message();
    EXPECT_EQ(chain.readable_bytes(), 16u);
    EXPECT_EQ(chain.writable_bytes(), 64u);
}

struct Malformed {
    const char* name;
    std::function<void(Ring&)> build;
    const char* expect;  // substring of the error
};

class VirtqueueMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(VirtqueueMalformed, IsRejectedAndBreaksTheQueue) {
    Ring r;
    GetParam().build(r);
    std::string err = r.pop_error();
    EXPECT_NE(err.find(GetParam().expect), std::string::npos) << err;
    EXPECT_TRUE(r.q.broken());
    EXPECT_FALSE(r.q.ready());
    // A broken queue stays quiet: nothing more is popped, no used entries are written.
    EXPECT_EQ(r.pop_error(), "empty");
    r.q.add_used(0, 1);
    EXPECT_EQ(r.mem.read<uint16_t>(r.used + 2), 0);
}

uint64_t buf(Ring& r, uint64_t len = 64) {
    return r.mem.alloc(len);
}

INSTANTIATE_TEST_SUITE_P(
    Chains, VirtqueueMalformed,
    ::testing::Values(Malformed{"loop",
                                [](Ring& r) {
                                    uint64_t b = buf(r);
                                    r.set_desc(0, b, 8, kDescFlagNext, 1);
                                    r.set_desc(1, b, 8, kDescFlagNext, 0);
                                    r.publish(0);
                                },
                                "longer than the queue size"},
                      Malformed{"self_loop",
                                [](Ring& r) {
                                    r.set_desc(4, buf(r), 8, kDescFlagNext, 4);
                                    r.publish(4);
                                },
                                "longer than the queue size"},
                      Malformed{"next_out_of_table",
                                [](Ring& r) {
                                    r.set_desc(0, buf(r), 8, kDescFlagNext, 8);
                                    r.publish(0);
                                },
                                "outside its table"},
                      Malformed{"head_out_of_table", [](Ring& r) { r.publish(9); }, ">= queue size"},
                      Malformed{"address_outside_ram",
                                [](Ring& r) {
                                    r.set_desc(0, 1 << 20, 8, 0);
                                    r.publish(0);
                                },
                                "outside guest RAM"},
                      Malformed{"buffer_runs_past_ram",
                                [](Ring& r) {
                                    r.set_desc(0, (1 << 20) - 4, 8, 0);
                                    r.publish(0);
                                },
                                "outside guest RAM"},
                      Malformed{"address_wraps",
                                [](Ring& r) {
                                    r.set_desc(0, ~uint64_t{0} - 2, 16, 0);
                                    r.publish(0);
                                },
                                "outside guest RAM"},
                      Malformed{"huge_length",
                                [](Ring& r) {
                                    r.set_desc(0, 0x1000, 0xFFFF'FFFF, kDescFlagWrite);
                                    r.publish(0);
                                },
                                "outside guest RAM"},
                      Malformed{"zero_length",
                                [](Ring& r) {
                                    r.set_desc(0, buf(r), 0, 0);
                                    r.publish(0);
                                },
                                "length 0"},
                      Malformed{"readable_after_writable",
                                [](Ring& r) {
                                    r.set_desc(0, buf(r), 8, kDescFlagWrite | kDescFlagNext, 1);
                                    r.set_desc(1, buf(r), 8, 0);
                                    r.publish(0);
                                },
                                "device-readable after a device-writable"},
                      Malformed{"too_long_without_loop",
                                [](Ring& r) {
                                    // 8 descriptors is the limit on a queue of 8: an indirect pointer plus an
                                    // 8-entry table is 9.
                                    uint64_t table = r.mem.alloc(8 * 16);
                                    for (uint16_t i = 0; i < 8; ++i)
                                        r.set_desc(table, i, buf(r), 8, i < 7 ? kDescFlagNext : 0,
                                                   static_cast<uint16_t>(i + 1));
                                    r.set_desc(0, table, 8 * 16, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "longer than the queue size"},
                      Malformed{"indirect_loop",
                                [](Ring& r) {
                                    uint64_t table = r.mem.alloc(2 * 16);
                                    r.set_desc(table, 0, buf(r), 8, kDescFlagNext, 1);
                                    r.set_desc(table, 1, buf(r), 8, kDescFlagNext, 0);
                                    r.set_desc(0, table, 32, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "longer than the queue size"},
                      Malformed{"indirect_next_outside_table",
                                [](Ring& r) {
                                    uint64_t table = r.mem.alloc(2 * 16);
                                    r.set_desc(table, 0, buf(r), 8, kDescFlagNext, 2);
                                    r.set_desc(0, table, 32, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "outside its table"},
                      Malformed{"nested_indirect",
                                [](Ring& r) {
                                    uint64_t inner = r.mem.alloc(16), outer = r.mem.alloc(16);
                                    r.set_desc(inner, 0, buf(r), 8, 0);
                                    r.set_desc(outer, 0, inner, 16, kDescFlagIndirect);
                                    r.set_desc(0, outer, 16, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "another indirect"},
                      Malformed{"indirect_with_next",
                                [](Ring& r) {
                                    uint64_t table = r.mem.alloc(16);
                                    r.set_desc(table, 0, buf(r), 8, 0);
                                    r.set_desc(0, table, 16, kDescFlagIndirect | kDescFlagNext, 1);
                                    r.set_desc(1, buf(r), 8, 0);
                                    r.publish(0);
                                },
                                "both INDIRECT and NEXT"},
                      Malformed{"indirect_bad_length",
                                [](Ring& r) {
                                    r.set_desc(0, r.mem.alloc(32), 24, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "not a non-zero multiple of 16"},
                      Malformed{"indirect_zero_length",
                                [](Ring& r) {
                                    r.set_desc(0, r.mem.alloc(32), 0, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "not a non-zero multiple of 16"},
                      Malformed{"indirect_table_outside_ram",
                                [](Ring& r) {
                                    r.set_desc(0, (1 << 20) - 16, 32, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "outside guest RAM"},
                      Malformed{"indirect_table_too_big",
                                [](Ring& r) {
                                    r.set_desc(0, r.mem.alloc(16 * 16), 16 * 16, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "more than the queue size"},
                      Malformed{"indirect_zero_length_entry",
                                [](Ring& r) {
                                    uint64_t table = r.mem.alloc(16);
                                    r.set_desc(table, 0, buf(r), 0, 0);
                                    r.set_desc(0, table, 16, kDescFlagIndirect);
                                    r.publish(0);
                                },
                                "length 0"},
                      Malformed{"avail_index_jump",
                                [](Ring& r) {
                                    r.set_desc(0, buf(r), 8, 0);
                                    r.mem.write<uint16_t>(r.avail + 2, 9);
                                },
                                "jumped by 9"}),
    [](const ::testing::TestParamInfo<Malformed>& p) { return std::string(p.param.name); });

TEST(Virtqueue, IndirectNeedsTheFeature) {
    Ring r(feature_bit(kFeatureVersion1));
    uint64_t table = r.mem.alloc(16);
    r.set_desc(table, 0, buf(r), 8, 0);
    r.set_desc(0, table, 16, kDescFlagIndirect);
    r.publish(0);
    EXPECT_NE(r.pop_error().find("not negotiated"), std::string::npos);
}

TEST(Virtqueue, ActivationChecksRings) {
    FakeGuestMemory mem(1 << 16);
    Virtqueue q(16);
    q.set_desc_addr(0x1008);  // not 16-byte aligned
    q.set_driver_addr(0x2000);
    q.set_device_addr(0x3000);
    auto s = q.activate(mem.memory(), 0);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("misaligned"), std::string::npos);
    q.set_desc_addr(0x1000);
    q.set_device_addr(0xFFF0);  // used ring runs past RAM
    s = q.activate(mem.memory(), 0);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("device area"), std::string::npos);
    q.set_device_addr(0x3000);
    EXPECT_TRUE(q.activate(mem.memory(), 0).ok());
    EXPECT_FALSE(q.set_size(3));
    EXPECT_FALSE(q.set_size(32));
    EXPECT_FALSE(q.set_size(0));
    EXPECT_TRUE(q.set_size(4));
}

TEST(Virtqueue, UsedRingAndNoInterruptFlag) {
    Ring r(feature_bit(kFeatureVersion1));
    r.set_desc(0, buf(r), 8, kDescFlagWrite);
    r.publish(0);
    DescriptorChain chain;
    ASSERT_TRUE(*r.q.pop(chain));
    r.q.add_used(0, 7);
    EXPECT_EQ(r.mem.read<uint16_t>(r.used + 2), 1);
    EXPECT_EQ(r.mem.read<uint32_t>(r.used + 4), 0u);
    EXPECT_EQ(r.mem.read<uint32_t>(r.used + 8), 7u);
    EXPECT_TRUE(r.q.needs_notification());
    r.mem.write<uint16_t>(r.avail, kAvailFlagNoInterrupt);
    EXPECT_FALSE(r.q.needs_notification());
}

TEST(Virtqueue, EventIndexSuppression) {
    Ring r;
    for (uint16_t i = 0; i < 4; ++i) {
        r.set_desc(i, buf(r), 8, kDescFlagWrite);
        r.publish(i);
    }
    DescriptorChain chain;
    // used_event = 2: interrupt once used idx passes 2, i.e. when the third entry lands.
    r.mem.write<uint16_t>(r.avail + 4 + 2 * 8, 2);
    std::vector<bool> notified;
    for (int i = 0; i < 4; ++i) {
        ASSERT_TRUE(*r.q.pop(chain));
        r.q.add_used(chain.head(), 0);
        notified.push_back(r.q.needs_notification());
    }
    // The first check always notifies (nothing signalled yet), then only when crossing 2.
    EXPECT_EQ(notified, (std::vector<bool>{true, false, true, false}));
    // Before sleeping the device publishes avail_event = where it stopped.
    EXPECT_FALSE(r.q.enable_notification());
    EXPECT_EQ(r.mem.read<uint16_t>(r.used + 4 + 8 * 8), 4);
    r.set_desc(4, buf(r), 8, kDescFlagWrite);
    r.publish(4);
    EXPECT_TRUE(r.q.enable_notification());
}

TEST(Virtqueue, EnableNotificationPastChainsSeen) {
    // A device that popped 2 chains, found them too few and gave them back waits for a third.
    Ring r;
    for (uint16_t i = 0; i < 2; ++i) {
        r.set_desc(i, buf(r), 8, kDescFlagWrite);
        r.publish(i);
    }
    DescriptorChain chain;
    ASSERT_TRUE(*r.q.pop(chain));
    ASSERT_TRUE(*r.q.pop(chain));
    r.q.undo_pop(2);
    EXPECT_TRUE(r.q.enable_notification()) << "without `seen`, the two are news";
    EXPECT_FALSE(r.q.enable_notification(2));
    EXPECT_EQ(r.mem.read<uint16_t>(r.used + 4 + 8 * 8), 2) << "avail_event past the two";
    r.set_desc(2, buf(r), 8, kDescFlagWrite);
    r.publish(2);
    EXPECT_TRUE(r.q.enable_notification(2));
    EXPECT_EQ(r.q.pending(), 3);
}

TEST(Virtqueue, UndoPop) {
    Ring r;
    r.set_desc(0, buf(r), 8, kDescFlagWrite);
    r.publish(0);
    DescriptorChain chain;
    ASSERT_TRUE(*r.q.pop(chain));
    EXPECT_EQ(r.q.pending(), 0);
    r.q.undo_pop();
    EXPECT_EQ(r.q.pending(), 1);
    ASSERT_TRUE(*r.q.pop(chain));
    EXPECT_EQ(chain.head(), 0);
}

TEST(Virtqueue, IndexesWrapAround) {
    Ring r(feature_bit(kFeatureVersion1), 4);
    DescriptorChain chain;
    uint64_t b = buf(r);
    for (int i = 0; i < 70000; ++i) {
        uint16_t d = static_cast<uint16_t>(i % 4);
        r.set_desc(d, b, 8, kDescFlagWrite);
        r.publish(d);
        auto p = r.q.pop(chain);
        ASSERT_TRUE(p.ok() && *p) << i;
        ASSERT_EQ(chain.head(), d);
        r.q.add_used(d, 8);
    }
    EXPECT_EQ(r.q.next_used_idx(), static_cast<uint16_t>(70000));
}

TEST(Virtqueue, SaveAndRestore) {
    Ring r;
    r.set_desc(0, buf(r), 8, kDescFlagWrite);
    r.publish(0);
    DescriptorChain chain;
    ASSERT_TRUE(*r.q.pop(chain));
    r.q.add_used(0, 8);
    auto state = r.q.save_state();
    Virtqueue copy(8);
    ASSERT_TRUE(copy.restore_state(state).ok());
    EXPECT_EQ(copy.last_avail_idx(), 1);
    EXPECT_EQ(copy.next_used_idx(), 1);
    EXPECT_EQ(copy.desc_addr(), r.desc);
    ASSERT_TRUE(copy.activate(r.mem.memory(), kAllFeatures).ok());
    r.set_desc(1, buf(r), 8, kDescFlagWrite);
    r.publish(1);
    ASSERT_TRUE(*copy.pop(chain));
    EXPECT_EQ(chain.head(), 1);

    Virtqueue small(4);
    auto too_big = small.restore_state(state);  // size 8 > max 4
    EXPECT_FALSE(too_big.ok());
    EXPECT_FALSE(copy.restore_state(nlohmann::json{{"version", 1}}).ok());
}

}  // namespace
}  // namespace vireo::devices::virtio
