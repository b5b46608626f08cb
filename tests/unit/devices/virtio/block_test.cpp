// Tests for virtio-blk through the PCI transport and the test driver, on a real raw image file
// with the io_uring IoContext: normal I/O, every request error path, read-only disks, backend
// failures, reset in the middle of I/O, and snapshots.
#include "devices/virtio/block.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "devices/virtio/pci_transport.hpp"
#include "disk/raw_backend.hpp"
#include "fakes/virtio_driver.hpp"

namespace vireo::devices::virtio {
namespace {

using testing::FakeGuestMemory;
using testing::VirtioTestDriver;
using Blk = VirtioBlock;

constexpr uint64_t kDiskSize = 4 << 20;
constexpr uint64_t kWanted = feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx) |
                             feature_bit(Blk::kFeatureFlush) | feature_bit(Blk::kFeatureDiscard) |
                             feature_bit(Blk::kFeatureWriteZeroes) | feature_bit(Blk::kFeatureSegMax) |
                             feature_bit(Blk::kFeatureBlkSize) | feature_bit(Blk::kFeatureRo) |
                             feature_bit(Blk::kFeatureTopology);

// A backend whose every asynchronous operation fails, to reach the I/O error path.
class FailingBackend final : public disk::BlockBackend {
  public:
    uint64_t size() const override { return kDiskSize; }
    bool read_only() const override { return false; }
    std::string describe() const override { return "failing"; }
    Status read(uint64_t, std::span<const iovec>) override { return make_error("failing: read"); }
    Status write(uint64_t, std::span<const iovec>) override { return make_error("failing: write"); }
    Status flush() override { return make_error("failing: flush"); }
    Status discard(uint64_t, uint64_t) override { return make_error("failing: discard"); }
    Status write_zeroes(uint64_t, uint64_t) override { return make_error("failing: write zeroes"); }
    void submit(disk::IoContext& ctx, disk::IoRequest& req) override {
        disk::IoRequest* r = &req;
        ctx.defer([r] { r->complete(*r, make_error("failing: injected I/O error")); });
    }
};

class BlockTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vireo-blk-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        m_path = tmpl;
        ASSERT_TRUE(disk::RawBackend::create(m_path, kDiskSize).ok());
        auto io = disk::IoContext::create();
        ASSERT_TRUE(io.ok()) << io.error().message();
        m_io = std::move(*io);
    }
    void TearDown() override {
        m_driver.reset();
        m_dev.reset();
        ::unlink(m_path.c_str());
    }

    void open(bool read_only = false, std::string serial = "vireo-test-disk") {
        auto backend = disk::RawBackend::open(m_path, disk::OpenOptions{.read_only = read_only});
        ASSERT_TRUE(backend.ok()) << backend.error().message();
        attach(std::shared_ptr<disk::BlockBackend>(std::move(*backend)), read_only, std::move(serial));
    }
    void attach(std::shared_ptr<disk::BlockBackend> backend, bool read_only = false,
                std::string serial = {}) {
        m_driver.reset();
        auto blk = std::make_unique<VirtioBlock>(
            std::move(backend), *m_io, BlockOptions{.serial = std::move(serial), .read_only = read_only});
        m_blk = blk.get();
        m_dev = std::make_shared<VirtioPciDevice>(std::move(blk), m_mem.memory());
        m_driver = std::make_unique<VirtioTestDriver>(m_mem, *m_dev);
    }
    VirtioTestDriver& drv() { return *m_driver; }

    // Builds header / data / status buffers for one request and posts it.
    struct Req {
        uint64_t hdr, data, status;
        uint16_t head;
    };
    Req post(uint32_t type, uint64_t sector, uint32_t data_len, bool data_writable, bool indirect = false) {
        Req r{};
        r.hdr = m_mem.alloc(16);
        m_mem.write<uint32_t>(r.hdr, type);
        m_mem.write<uint64_t>(r.hdr + 8, sector);
        r.status = m_mem.alloc(1);
        m_mem.write<uint8_t>(r.status, 0xEE);
        std::vector<VirtioTestDriver::Buffer> bufs{{r.hdr, 16, false}};
        if (data_len > 0) {
            r.data = m_mem.alloc(data_len, 512);
            bufs.push_back({r.data, data_len, data_writable});
        }
        bufs.push_back({r.status, 1, true});
        r.head = drv().post(0, bufs, indirect);
        return r;
    }
    // Kicks, runs the I/O thread's work until idle, returns the used entry of `r`.
    VirtioTestDriver::Used run(const Req& r) {
        drv().kick(0);
        EXPECT_TRUE(m_io->drain().ok());
        auto used = drv().pop_used(0);
        EXPECT_TRUE(used.has_value());
        if (!used) return {};
        EXPECT_EQ(used->id, r.head);
        return *used;
    }
    uint8_t status(const Req& r) { return m_mem.read<uint8_t>(r.status); }
    std::vector<uint8_t> file_bytes(uint64_t offset, size_t len) {
        std::vector<uint8_t> out(len);
        int fd = ::open(m_path.c_str(), O_RDONLY);
        EXPECT_EQ(::pread(fd, out.data(), len, static_cast<off_t>(offset)), static_cast<ssize_t>(len));
        ::close(fd);
        return out;
    }
    void write_file(uint64_t offset, const std::vector<uint8_t>& data) {
        int fd = ::open(m_path.c_str(), O_WRONLY);
        ASSERT_EQ(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)),
                  static_cast<ssize_t>(data.size()));
        ::close(fd);
    }

    std::string m_path;
    std::unique_ptr<disk::IoContext> m_io;
    FakeGuestMemory m_mem{16 << 20};
    std::shared_ptr<VirtioPciDevice> m_dev;
    VirtioBlock* m_blk = nullptr;
    std::unique_ptr<VirtioTestDriver> m_driver;
};

TEST_F(BlockTest, ConfigurationSpace) {
    open();
    auto features = drv().init(kWanted);
    ASSERT_TRUE(features);
    EXPECT_EQ(*features & feature_bit(Blk::kFeatureRo), 0u);
    EXPECT_NE(*features & feature_bit(Blk::kFeatureDiscard), 0u);
    EXPECT_EQ(drv().device_cfg_read(0, 8), kDiskSize / 512);  // capacity
    EXPECT_EQ(drv().device_cfg_read(12, 4), 254u);            // seg_max
    EXPECT_EQ(drv().device_cfg_read(20, 4), 512u);            // blk_size
    EXPECT_EQ(drv().device_cfg_read(34, 2), 1u);              // num_queues
    EXPECT_EQ(drv().device_cfg_read(36, 4), Blk::kMaxDiscardSectors);
    EXPECT_EQ(drv().device_cfg_read(40, 4), Blk::kMaxDiscardSegments);
    EXPECT_EQ(drv().device_cfg_read(48, 4), Blk::kMaxDiscardSectors);
    EXPECT_EQ(drv().device_cfg_read(56, 1), 1u);  // write_zeroes_may_unmap
    EXPECT_EQ(drv().cfg_read(0, 4), 0x1042'1AF4u);
    // The configuration is read-only.
    drv().device_cfg_write(0, 1, 8);
    EXPECT_EQ(drv().device_cfg_read(0, 8), kDiskSize / 512);
}

TEST_F(BlockTest, WriteThenRead) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    auto w = post(Blk::kTypeOut, 8, 4096, false);
    for (uint32_t i = 0; i < 4096; ++i)
        m_mem.write<uint8_t>(w.data + i, static_cast<uint8_t>(i * 7));
    auto used = run(w);
    EXPECT_EQ(status(w), Blk::kStatusOk);
    EXPECT_EQ(used.len, 1u);
    auto on_disk = file_bytes(8 * 512, 4096);
    EXPECT_EQ(std::memcmp(on_disk.data(), m_mem.host(w.data), 4096), 0);

    auto r = post(Blk::kTypeIn, 8, 4096, true, /*indirect=*/true);
    used = run(r);
    EXPECT_EQ(status(r), Blk::kStatusOk);
    EXPECT_EQ(used.len, 4097u);
    EXPECT_EQ(std::memcmp(m_mem.host(r.data), m_mem.host(w.data), 4096), 0);
    auto c = m_dev->counters();
    EXPECT_EQ(c["read_bytes"], 4096);
    EXPECT_EQ(c["write_bytes"], 4096);
    EXPECT_EQ(c["requests"], 2);
    EXPECT_EQ(c["errors"], 0);
}

TEST_F(BlockTest, ReadsWhatTheFileHolds) {
    std::vector<uint8_t> pattern(1024);
    for (size_t i = 0; i < pattern.size(); ++i)
        pattern[i] = static_cast<uint8_t>(i ^ 0x5A);
    write_file(kDiskSize - 1024, pattern);
    open();
    ASSERT_TRUE(drv().init(kWanted));
    auto r = post(Blk::kTypeIn, kDiskSize / 512 - 2, 1024, true);
    run(r);
    EXPECT_EQ(status(r), Blk::kStatusOk);
    EXPECT_EQ(std::memcmp(m_mem.host(r.data), pattern.data(), 1024), 0);
}

TEST_F(BlockTest, HeaderDataAndStatusInOneBuffer) {
    // §2.6.4: message framing is up to the driver; one buffer per direction is legal.
    open();
    ASSERT_TRUE(drv().init(kWanted));
    uint64_t out = m_mem.alloc(16 + 512);
    m_mem.write<uint32_t>(out, Blk::kTypeOut);
    m_mem.write<uint64_t>(out + 8, 3);
    m_mem.fill(out + 16, 0xA5, 512);
    uint64_t st = m_mem.alloc(1);
    uint16_t head = drv().post(0, {{out, 16 + 512, false}, {st, 1, true}});
    drv().kick(0);
    ASSERT_TRUE(m_io->drain().ok());
    auto used = drv().pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(m_mem.read<uint8_t>(st), Blk::kStatusOk);
    EXPECT_EQ(file_bytes(3 * 512, 512), std::vector<uint8_t>(512, 0xA5));
}

TEST_F(BlockTest, ManyRequestsInFlight) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    std::vector<Req> reqs;
    for (uint32_t i = 0; i < 64; ++i) {
        auto w = post(Blk::kTypeOut, i * 8, 4096, false, i % 2 == 1);
        m_mem.fill(w.data, static_cast<uint8_t>(i + 1), 4096);
        reqs.push_back(w);
    }
    drv().kick(0);
    EXPECT_GT(m_blk->in_flight(), 0u);
    ASSERT_TRUE(m_io->drain().ok());
    size_t done = 0;
    while (auto u = drv().pop_used(0)) {
        ++done;
        EXPECT_EQ(u->len, 1u);
    }
    EXPECT_EQ(done, 64u);
    for (uint32_t i = 0; i < 64; ++i) {
        EXPECT_EQ(status(reqs[i]), Blk::kStatusOk);
        EXPECT_EQ(file_bytes(i * 8 * 512, 4096), std::vector<uint8_t>(4096, static_cast<uint8_t>(i + 1)));
    }
    // Interrupts are batched per burst of completions, never more than one per request.
    EXPECT_GE(drv().interrupts(0), 1u);
    EXPECT_LE(drv().interrupts(0), 64u);
    EXPECT_EQ(m_blk->in_flight(), 0u);
}

TEST_F(BlockTest, FlushAndGetId) {
    open(false, "serial-0123456789-ABCDEF");  // longer than 20: cut
    ASSERT_TRUE(drv().init(kWanted));
    auto f = post(Blk::kTypeFlush, 0, 0, false);
    run(f);
    EXPECT_EQ(status(f), Blk::kStatusOk);
    auto id = post(Blk::kTypeGetId, 0, 20, true);
    auto used = run(id);
    EXPECT_EQ(status(id), Blk::kStatusOk);
    EXPECT_EQ(used.len, 21u);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(m_mem.host(id.data)), 20), "serial-0123456789-AB");
}

TEST_F(BlockTest, GetIdPadsWithNul) {
    open(false, "short");
    ASSERT_TRUE(drv().init(kWanted));
    auto id = post(Blk::kTypeGetId, 0, 20, true);
    m_mem.fill(id.data, 0xFF, 20);
    run(id);
    EXPECT_EQ(std::string(reinterpret_cast<char*>(m_mem.host(id.data))), "short");
    EXPECT_EQ(m_mem.read<uint8_t>(id.data + 19), 0);
}

TEST_F(BlockTest, WriteZeroesAndDiscard) {
    write_file(0, std::vector<uint8_t>(64 * 1024, 0x77));
    open();
    ASSERT_TRUE(drv().init(kWanted));
    auto post_segments = [&](uint32_t type, std::vector<Blk::DiscardSegment> segs) {
        Req r{};
        r.hdr = m_mem.alloc(16);
        m_mem.write<uint32_t>(r.hdr, type);
        uint64_t data = m_mem.alloc(16 * segs.size());
        for (size_t i = 0; i < segs.size(); ++i)
            m_mem.write(data + 16 * i, segs[i]);
        r.status = m_mem.alloc(1);
        r.head = drv().post(
            0, {{r.hdr, 16, false}, {data, uint32_t(16 * segs.size()), false}, {r.status, 1, true}});
        return r;
    };
    auto wz = post_segments(Blk::kTypeWriteZeroes, {{0, 8, 0}, {32, 16, Blk::kFlagUnmap}});
    run(wz);
    EXPECT_EQ(status(wz), Blk::kStatusOk);
    EXPECT_EQ(file_bytes(0, 4096), std::vector<uint8_t>(4096, 0));
    EXPECT_EQ(file_bytes(4096, 4096), std::vector<uint8_t>(4096, 0x77));
    EXPECT_EQ(file_bytes(32 * 512, 8192), std::vector<uint8_t>(8192, 0));

    auto d = post_segments(Blk::kTypeDiscard, {{64, 8, 0}});
    run(d);
    EXPECT_EQ(status(d), Blk::kStatusOk);

    // §5.2.6.2: unmap on a discard, or an unknown flag, is UNSUPP.
    auto unmap = post_segments(Blk::kTypeDiscard, {{64, 8, Blk::kFlagUnmap}});
    run(unmap);
    EXPECT_EQ(status(unmap), Blk::kStatusUnsupp);
    auto unknown = post_segments(Blk::kTypeWriteZeroes, {{64, 8, 2}});
    run(unknown);
    EXPECT_EQ(status(unknown), Blk::kStatusUnsupp);
    // Out of range, too long, too many segments, bad length: IOERR, and nothing was written.
    auto past = post_segments(Blk::kTypeWriteZeroes, {{0, 8, 0}, {kDiskSize / 512 - 4, 8, 0}});
    run(past);
    EXPECT_EQ(status(past), Blk::kStatusIoErr);
    EXPECT_EQ(file_bytes(4096, 512), std::vector<uint8_t>(512, 0x77));
    auto too_long = post_segments(Blk::kTypeDiscard, {{0, Blk::kMaxDiscardSectors + 1, 0}});
    run(too_long);
    EXPECT_EQ(status(too_long), Blk::kStatusIoErr);
    auto many = post_segments(Blk::kTypeDiscard,
                              std::vector<Blk::DiscardSegment>(Blk::kMaxDiscardSegments + 1, {0, 1, 0}));
    run(many);
    EXPECT_EQ(status(many), Blk::kStatusIoErr);
    auto ragged = post(Blk::kTypeDiscard, 0, 12, false);
    run(ragged);
    EXPECT_EQ(status(ragged), Blk::kStatusIoErr);
}

TEST_F(BlockTest, DiscardNotNegotiatedIsUnsupported) {
    open();
    ASSERT_TRUE(drv().init(kWanted & ~feature_bit(Blk::kFeatureDiscard)));
    auto d = post(Blk::kTypeDiscard, 0, 16, false);
    run(d);
    EXPECT_EQ(status(d), Blk::kStatusUnsupp);
}

TEST_F(BlockTest, ReadOnlyDisk) {
    write_file(0, std::vector<uint8_t>(4096, 0x33));
    open(/*read_only=*/true);
    auto features = drv().init(kWanted);
    ASSERT_TRUE(features);
    EXPECT_NE(*features & feature_bit(Blk::kFeatureRo), 0u);
    EXPECT_EQ(*features & feature_bit(Blk::kFeatureDiscard), 0u);
    EXPECT_EQ(*features & feature_bit(Blk::kFeatureWriteZeroes), 0u);
    auto w = post(Blk::kTypeOut, 0, 4096, false);
    m_mem.fill(w.data, 0x44, 4096);
    run(w);
    EXPECT_EQ(status(w), Blk::kStatusIoErr);  // §5.2.6.2
    EXPECT_EQ(file_bytes(0, 4096), std::vector<uint8_t>(4096, 0x33));
    auto wz = post(Blk::kTypeWriteZeroes, 0, 16, false);
    run(wz);
    EXPECT_EQ(status(wz), Blk::kStatusUnsupp);
    auto r = post(Blk::kTypeIn, 0, 4096, true);
    run(r);
    EXPECT_EQ(status(r), Blk::kStatusOk);
    EXPECT_EQ(m_mem.read<uint8_t>(r.data + 100), 0x33);
    auto flush = post(Blk::kTypeFlush, 0, 0, false);
    run(flush);
    EXPECT_EQ(status(flush), Blk::kStatusOk);
}

TEST_F(BlockTest, ReadOnlyOptionOnAWritableFile) {
    open(false);
    // A writable file attached with ",ro".
    auto backend = disk::RawBackend::open(m_path);
    ASSERT_TRUE(backend.ok());
    attach(std::shared_ptr<disk::BlockBackend>(std::move(*backend)), /*read_only=*/true);
    ASSERT_TRUE(drv().init(kWanted));
    auto w = post(Blk::kTypeOut, 0, 512, false);
    run(w);
    EXPECT_EQ(status(w), Blk::kStatusIoErr);
}

TEST_F(BlockTest, BadRequests) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    struct Case {
        const char* name;
        uint32_t type;
        uint64_t sector;
        uint32_t len;
        bool writable;
        uint8_t expect;
    };
    const Case cases[] = {
        {"read past end", Blk::kTypeIn, kDiskSize / 512 - 1, 1024, true, Blk::kStatusIoErr},
        {"read far past end", Blk::kTypeIn, ~uint64_t{0} - 1, 512, true, Blk::kStatusIoErr},
        {"write past end", Blk::kTypeOut, kDiskSize / 512, 512, false, Blk::kStatusIoErr},
        {"read not sector multiple", Blk::kTypeIn, 0, 100, true, Blk::kStatusIoErr},
        {"write not sector multiple", Blk::kTypeOut, 0, 513, false, Blk::kStatusIoErr},
        {"read into readable buffer", Blk::kTypeIn, 0, 512, false, Blk::kStatusIoErr},
        {"write from writable buffer", Blk::kTypeOut, 0, 512, true, Blk::kStatusIoErr},
        {"unknown type", 77, 0, 512, true, Blk::kStatusUnsupp},
        {"get lifetime", Blk::kTypeGetLifetime, 0, 8, true, Blk::kStatusUnsupp},
        {"secure erase", Blk::kTypeSecureErase, 0, 16, false, Blk::kStatusUnsupp},
    };
    for (const auto& c : cases) {
        auto r = post(c.type, c.sector, c.len, c.writable);
        run(r);
        EXPECT_EQ(status(r), c.expect) << c.name;
    }
    EXPECT_EQ(drv().status() & kStatusNeedsReset, 0) << "bad requests do not break the device";
    auto counters = m_dev->counters();
    EXPECT_EQ(counters["bad_requests"], 7);
    EXPECT_EQ(counters["unsupported"], 3);
}

TEST_F(BlockTest, ShortHeaderAndMissingStatus) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    uint64_t hdr = m_mem.alloc(8), st = m_mem.alloc(1);
    uint16_t head = drv().post(0, {{hdr, 8, false}, {st, 1, true}});
    drv().kick(0);
    ASSERT_TRUE(m_io->drain().ok());
    auto used = drv().pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(m_mem.read<uint8_t>(st), Blk::kStatusIoErr);

    // Nothing device-writable: no status to write; the chain comes back with length 0.
    uint64_t h2 = m_mem.alloc(16);
    m_mem.write<uint32_t>(h2, Blk::kTypeFlush);
    head = drv().post(0, {{h2, 16, false}});
    drv().kick(0);
    ASSERT_TRUE(m_io->drain().ok());
    used = drv().pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, head);
    EXPECT_EQ(used->len, 0u);
    EXPECT_EQ(drv().status() & kStatusNeedsReset, 0);
}

TEST_F(BlockTest, MalformedChainNeedsReset) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    drv().write_desc(0, 0, 0x7FFF'0000'0000ull, 16, 0, 0);
    drv().publish(0, 0);
    drv().kick(0);
    ASSERT_TRUE(m_io->drain().ok());
    EXPECT_NE(drv().status() & kStatusNeedsReset, 0);
    EXPECT_EQ(drv().config_interrupts(), 1u);
    EXPECT_FALSE(drv().pop_used(0));
}

TEST_F(BlockTest, BackendErrorsAreIoErr) {
    attach(std::make_shared<FailingBackend>());
    ASSERT_TRUE(drv().init(kWanted));
    for (uint32_t type : {Blk::kTypeIn, Blk::kTypeOut, Blk::kTypeFlush}) {
        auto r = post(type, 0, type == Blk::kTypeFlush ? 0 : 512, type == Blk::kTypeIn);
        auto used = run(r);
        EXPECT_EQ(status(r), Blk::kStatusIoErr) << type;
        EXPECT_EQ(used.len, 1u);
    }
    EXPECT_EQ(m_dev->counters()["io_errors"], 3);
}

TEST_F(BlockTest, ResetInTheMiddleOfIo) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    std::vector<Req> reqs;
    for (int i = 0; i < 16; ++i)
        reqs.push_back(post(Blk::kTypeIn, static_cast<uint64_t>(i) * 8, 4096, true));
    drv().kick(0);
    ASSERT_GT(m_blk->in_flight(), 0u);
    uint16_t used_before = drv().used_idx(0);
    drv().set_status(0);
    // §4.1.4.3.2: the reset is done when the status reads 0; in-flight reads finish first.
    EXPECT_NE(drv().status(), 0);
    drv().set_status(kStatusAcknowledge);  // ignored while the reset completes
    ASSERT_TRUE(m_io->drain().ok());
    EXPECT_EQ(drv().status(), 0);
    EXPECT_EQ(m_blk->in_flight(), 0u);
    // Completions of the old incarnation published nothing.
    EXPECT_EQ(drv().used_idx(0), used_before);
    EXPECT_EQ(m_dev->counters()["resets"], 2);  // init() resets first, then this one
    // The device starts over cleanly.
    ASSERT_TRUE(drv().init(kWanted));
    auto w = post(Blk::kTypeOut, 0, 512, false);
    run(w);
    EXPECT_EQ(status(w), Blk::kStatusOk);
}

TEST_F(BlockTest, SnapshotChecksTheDisk) {
    open();
    ASSERT_TRUE(drv().init(kWanted));
    auto w = post(Blk::kTypeOut, 0, 512, false);
    run(w);
    auto state = m_dev->save_state();
    EXPECT_EQ(state["device"]["capacity"], kDiskSize / 512);

    // Same disk: restores and keeps serving the same rings.
    auto backend = disk::RawBackend::open(m_path);
    ASSERT_TRUE(backend.ok());
    auto copy = std::make_shared<VirtioPciDevice>(
        std::make_unique<VirtioBlock>(std::shared_ptr<disk::BlockBackend>(std::move(*backend)), *m_io,
                                      BlockOptions{}),
        m_mem.memory());
    auto s = copy->restore_state(state);
    ASSERT_TRUE(s.ok()) << s.error().message();
    auto r = post(Blk::kTypeIn, 0, 512, true);
    copy->notify_queue(0);
    ASSERT_TRUE(m_io->drain().ok());
    auto used = drv().pop_used(0);
    ASSERT_TRUE(used);
    EXPECT_EQ(used->id, r.head);
    EXPECT_EQ(status(r), Blk::kStatusOk);

    // A disk of another size is refused.
    auto other = std::make_shared<VirtioPciDevice>(
        std::make_unique<VirtioBlock>(std::make_shared<FailingBackend>(), *m_io, BlockOptions{}),
        m_mem.memory());
    state["device"]["capacity"] = 1;
    auto refused = other->restore_state(state);
    ASSERT_FALSE(refused.ok());
    EXPECT_NE(refused.error().message().find("sectors"), std::string::npos);
}

}  // namespace
}  // namespace vireo::devices::virtio
