// VirtioBlock: the block device (virtio 1.2 §5.2) on a disk::BlockBackend. Requests are parsed
// and checked on the I/O thread and handed to the backend asynchronously through the
// IoContext, with the guest's buffers as the I/O vectors (no copy), the first few of each
// notification pushed to the kernel as soon as they are parsed; completions publish the status
// and the used entry, with one interrupt per batch of completions.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "devices/virtio/virtio_device.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "disk/block_backend.hpp"
#include "disk/io_context.hpp"

namespace vireo::devices::virtio {

struct BlockOptions {
    std::string serial;      // VIRTIO_BLK_T_GET_ID; at most 20 bytes are used
    bool read_only = false;  // also set when the backend itself is read-only
    uint16_t queue_size = 256;
};

class VirtioBlock final : public VirtioDevice {
  public:
    // Feature bits (§5.2.3).
    static constexpr int kFeatureSizeMax = 1;
    static constexpr int kFeatureSegMax = 2;
    static constexpr int kFeatureGeometry = 4;
    static constexpr int kFeatureRo = 5;
    static constexpr int kFeatureBlkSize = 6;
    static constexpr int kFeatureFlush = 9;
    static constexpr int kFeatureTopology = 10;
    static constexpr int kFeatureConfigWce = 11;
    static constexpr int kFeatureMq = 12;
    static constexpr int kFeatureDiscard = 13;
    static constexpr int kFeatureWriteZeroes = 14;
    // Request types and status values (§5.2.6).
    static constexpr uint32_t kTypeIn = 0;
    static constexpr uint32_t kTypeOut = 1;
    static constexpr uint32_t kTypeFlush = 4;
    static constexpr uint32_t kTypeGetId = 8;
    static constexpr uint32_t kTypeGetLifetime = 10;
    static constexpr uint32_t kTypeDiscard = 11;
    static constexpr uint32_t kTypeWriteZeroes = 13;
    static constexpr uint32_t kTypeSecureErase = 14;
    static constexpr uint8_t kStatusOk = 0;
    static constexpr uint8_t kStatusIoErr = 1;
    static constexpr uint8_t kStatusUnsupp = 2;
    static constexpr uint32_t kSectorSize = 512;
    static constexpr uint32_t kIdBytes = 20;
    static constexpr uint32_t kFlagUnmap = 1;
    // Limits announced in the configuration space.
    static constexpr uint32_t kMaxDiscardSegments = 32;
    static constexpr uint32_t kMaxDiscardSectors = 0x3F'FFFF;  // 2 GiB - 512 per segment

    // The configuration layout (§5.2.4) up to write_zeroes_may_unmap and its padding.
    struct [[gnu::packed]] Config {
        Le<uint64_t> capacity;
        Le<uint32_t> size_max;
        Le<uint32_t> seg_max;
        Le<uint16_t> cylinders;
        uint8_t heads;
        uint8_t sectors;
        Le<uint32_t> blk_size;
        uint8_t physical_block_exp;
        uint8_t alignment_offset;
        Le<uint16_t> min_io_size;
        Le<uint32_t> opt_io_size;
        uint8_t writeback;
        uint8_t unused0;
        Le<uint16_t> num_queues;
        Le<uint32_t> max_discard_sectors;
        Le<uint32_t> max_discard_seg;
        Le<uint32_t> discard_sector_alignment;
        Le<uint32_t> max_write_zeroes_sectors;
        Le<uint32_t> max_write_zeroes_seg;
        uint8_t write_zeroes_may_unmap;
        uint8_t unused1[3];
    };
    static_assert(sizeof(Config) == 60);

    struct [[gnu::packed]] RequestHeader {
        Le<uint32_t> type;
        Le<uint32_t> reserved;
        Le<uint64_t> sector;
    };
    static_assert(sizeof(RequestHeader) == 16);

    struct [[gnu::packed]] DiscardSegment {
        Le<uint64_t> sector;
        Le<uint32_t> num_sectors;
        Le<uint32_t> flags;
    };
    static_assert(sizeof(DiscardSegment) == 16);

    // `io` is the I/O thread's context; every submission and completion happens there.
    VirtioBlock(std::shared_ptr<disk::BlockBackend> backend, disk::IoContext& io, BlockOptions options);
    ~VirtioBlock() override;

    uint16_t device_id() const override { return kDeviceIdBlock; }
    std::string name() const override;
    uint32_t pci_class() const override;
    uint64_t device_features() const override;
    uint16_t num_queues() const override { return 1; }
    uint16_t queue_max_size(uint16_t queue) const override { return queue == 0 ? m_options.queue_size : 0; }
    uint32_t config_size() const override { return sizeof(Config); }
    void read_config(uint32_t offset, std::span<uint8_t> data) override;
    Status activate() override { return {}; }
    void queue_notify(uint16_t queue) override;
    bool reset() override;
    size_t in_flight() const override { return m_in_flight; }
    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;
    nlohmann::json counters() const override;

    uint64_t capacity_sectors() const { return m_capacity; }
    bool read_only() const { return m_read_only; }

  private:
    struct Request;
    Request* take_request();
    void release(Request* r);
    // Parses and starts one request; returns true when it completed at once.
    bool start(Request* r);
    void complete_now(Request* r, uint8_t status);
    void on_io_done(Request* r, Status status);
    void finish(Request* r);
    void schedule_interrupt();

    std::shared_ptr<disk::BlockBackend> m_backend;
    disk::IoContext& m_io;
    BlockOptions m_options;
    bool m_read_only;
    uint64_t m_capacity;  // 512-byte sectors
    Config m_config{};

    std::vector<std::unique_ptr<Request>> m_requests;
    std::vector<Request*> m_free;
    size_t m_in_flight = 0;
    uint32_t m_generation = 0;  // bumped by reset: completions of older requests are dropped
    bool m_resetting = false;
    bool m_interrupt_scheduled = false;
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);  // deferred work checks it

    struct Counters {
        uint64_t read_requests = 0, read_bytes = 0;
        uint64_t write_requests = 0, write_bytes = 0;
        uint64_t flush_requests = 0, discard_requests = 0, write_zeroes_requests = 0, get_id_requests = 0;
        uint64_t io_errors = 0;     // the backend failed
        uint64_t bad_requests = 0;  // the guest asked for something invalid (IOERR)
        uint64_t unsupported = 0;   // UNSUPP
    } m_counters;
};

}  // namespace vireo::devices::virtio
