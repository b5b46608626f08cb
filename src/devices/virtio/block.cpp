// Block device: request parsing and validation, asynchronous backend I/O, completion.
#include "devices/virtio/block.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "base/log.hpp"
#include "devices/pci/pci_regs.hpp"
#include "devices/pci/state_util.hpp"

namespace vireo::devices::virtio {

namespace {
// Requests of one notification submitted to the kernel one by one before the rest go together
// (see queue_notify): a guest's whole queue at the usual depth of 32, while a refill of a longer
// queue costs at most 32 system calls. Measured on 4 KiB random I/O at depth 32
// (docs/BENCHMARKS.md, virtio-blk): 16, 32 and all one by one wrote 4-9% more than 8 did and
// read as fast; 4 lost writes.
constexpr unsigned kEagerSubmissions = 32;
}  // namespace

struct VirtioBlock::Request {
    DescriptorChain chain;
    uint32_t generation = 0;
    uint32_t type = 0;
    uint8_t* status = nullptr;  // the last device-writable byte
    uint32_t used_len = 0;      // bytes written into the chain, status included
    uint64_t bytes = 0;         // data bytes for the counters
    std::vector<iovec> iov;
    std::vector<disk::IoRequest> io;
    uint32_t pending = 0;
    bool failed = false;
};

VirtioBlock::VirtioBlock(std::shared_ptr<disk::BlockBackend> backend, disk::IoContext& io,
                         BlockOptions options)
    : m_backend(std::move(backend)),
      m_io(io),
      m_options(std::move(options)),
      m_read_only(m_options.read_only || m_backend->read_only()),
      m_capacity(m_backend->size() / kSectorSize) {
    uint32_t block = std::max<uint32_t>(m_backend->logical_block_size(), kSectorSize);
    m_config.capacity = m_capacity;
    // Every descriptor but the header and the status can carry data.
    m_config.seg_max = static_cast<uint32_t>(m_options.queue_size - 2);
    m_config.blk_size = block;
    m_config.physical_block_exp = 0;
    m_config.alignment_offset = 0;
    m_config.min_io_size = 1;
    m_config.opt_io_size = 0;
    m_config.writeback = 1;  // a write cache the driver flushes (VIRTIO_BLK_F_FLUSH)
    m_config.num_queues = 1;
    m_config.max_discard_sectors = kMaxDiscardSectors;
    m_config.max_discard_seg = kMaxDiscardSegments;
    m_config.discard_sector_alignment = block / kSectorSize;
    m_config.max_write_zeroes_sectors = kMaxDiscardSectors;
    m_config.max_write_zeroes_seg = kMaxDiscardSegments;
    m_config.write_zeroes_may_unmap = 1;
}

VirtioBlock::~VirtioBlock() {
    *m_alive = false;
}

std::string VirtioBlock::name() const {
    return fmt::format("virtio-blk {}", m_backend->describe());
}

uint32_t VirtioBlock::pci_class() const {
    return pci::kClassMassStorageOther;
}

uint64_t VirtioBlock::device_features() const {
    uint64_t f = feature_bit(kFeatureSegMax) | feature_bit(kFeatureBlkSize) | feature_bit(kFeatureFlush) |
                 feature_bit(kFeatureTopology) | feature_bit(kFeatureRingIndirectDesc) |
                 feature_bit(kFeatureRingEventIdx);
    if (m_read_only) {
        f |= feature_bit(kFeatureRo);
    } else {
        f |= feature_bit(kFeatureDiscard) | feature_bit(kFeatureWriteZeroes);
    }
    return f;
}

void VirtioBlock::read_config(uint32_t offset, std::span<uint8_t> data) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(&m_config);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < sizeof m_config ? bytes[offset + i] : 0;
}

VirtioBlock::Request* VirtioBlock::take_request() {
    if (m_free.empty()) {
        // In flight at most one per descriptor head, so the pool stays bounded by the queue size.
        if (m_requests.size() >= m_options.queue_size) return nullptr;
        m_requests.push_back(std::make_unique<Request>());
        m_requests.back()->io.reserve(kMaxDiscardSegments);
        return m_requests.back().get();
    }
    Request* r = m_free.back();
    m_free.pop_back();
    return r;
}

void VirtioBlock::release(Request* r) {
    r->iov.clear();
    r->io.clear();
    m_free.push_back(r);
}

void VirtioBlock::queue_notify(uint16_t queue) {
    if (queue != 0) return;
    Virtqueue& q = m_transport->queue(0);
    bool used = false;
    unsigned started = 0;  // requests handed to the backend
    auto submit = [this] {
        if (auto s = m_io.submit(); !s.ok()) log::get("virtio").error("{}: {}", name(), s.error().message());
    };
    for (;;) {
        for (;;) {
            Request* r = take_request();
            if (r == nullptr) {
                // Cannot happen with a well-formed ring (every pending request holds a head);
                // a driver re-posting heads still in flight is told to reset.
                m_transport->queue_error(0, make_error("more requests in flight than the queue size"));
                return;
            }
            auto popped = q.pop(r->chain);
            if (!popped.ok()) {
                release(r);
                m_transport->queue_error(0, popped.error());
                return;
            }
            if (!*popped) {
                release(r);
                break;
            }
            r->generation = m_generation;
            if (start(r)) {
                used = true;
                continue;
            }
            // The first requests of a notification go to the kernel one by one as they are
            // parsed, the rest together at the end. io_uring plugs a multi-entry submission
            // and the block layer dispatches none of it until all of it is prepared: with the
            // whole ring in one submission, the first request of a 20-request burst waited for
            // the other 19 and the disk ran shallower than the guest's queue. Submitting every
            // request alone costs one io_uring_enter (and a host disk kick) each, which lost
            // random writes on a busy host (docs/BENCHMARKS.md, virtio-blk).
            if (++started <= kEagerSubmissions) submit();
        }
        if (!q.enable_notification()) break;
    }
    if (started > kEagerSubmissions) submit();
    if (used) m_transport->notify_used(0);
}

bool VirtioBlock::start(Request* r) {
    const DescriptorChain& c = r->chain;
    r->used_len = 0;
    r->bytes = 0;
    r->failed = false;
    r->pending = 0;
    // §5.2.6: the status byte is the last device-writable byte. Without one nothing can be
    // reported: the chain is returned with nothing written.
    if (c.writable_bytes() == 0) {
        ++m_counters.bad_requests;
        m_transport->guest_error("block request without a status byte");
        m_transport->queue(0).add_used(c.head(), 0);
        release(r);
        return true;
    }
    const iovec& last = c.writable().back();
    r->status = static_cast<uint8_t*>(last.iov_base) + last.iov_len - 1;
    uint64_t data_in = c.writable_bytes() - 1;  // device-writable bytes before the status

    RequestHeader hdr{};
    if (c.readable_bytes() < sizeof hdr) {
        ++m_counters.bad_requests;
        m_transport->guest_error("block request header shorter than 16 bytes");
        complete_now(r, kStatusIoErr);
        return true;
    }
    c.read(0, {reinterpret_cast<uint8_t*>(&hdr), sizeof hdr});
    r->type = hdr.type;
    uint64_t sector = hdr.sector;
    uint64_t data_out = c.readable_bytes() - sizeof hdr;  // device-readable bytes after the header

    auto bad = [&](std::string_view why) {
        ++m_counters.bad_requests;
        m_transport->guest_error(why);
        complete_now(r, kStatusIoErr);
        return true;
    };
    auto in_range = [&](uint64_t first, uint64_t count) {
        return first <= m_capacity && count <= m_capacity - first;
    };
    auto submit = [&](disk::IoOp op, uint64_t offset, uint64_t length, bool with_iov) {
        r->io.emplace_back();
        disk::IoRequest& io = r->io.back();
        io.op = op;
        io.offset = offset;
        io.length = length;
        if (with_iov) io.iov = r->iov;
        io.complete = [this, r](disk::IoRequest&, Status s) { on_io_done(r, std::move(s)); };
        ++r->pending;
    };

    switch (r->type) {
        case kTypeIn: {
            // Data buffers the device could only read cannot receive a read (§2.7.4.2).
            if (data_out != 0) return bad("read request with device-readable data buffers");
            if (data_in % kSectorSize != 0) return bad("read length not a multiple of 512");
            if (!in_range(sector, data_in / kSectorSize)) return bad("read past the end of the disk");
            if (data_in == 0) {
                complete_now(r, kStatusOk);
                return true;
            }
            c.slice_writable(0, data_in, r->iov);
            r->bytes = data_in;
            r->used_len = static_cast<uint32_t>(std::min<uint64_t>(data_in, UINT32_MAX - 1));
            ++m_counters.read_requests;
            submit(disk::IoOp::kRead, sector * kSectorSize, data_in, true);
            break;
        }
        case kTypeOut: {
            // §5.2.6.2: a read-only device fails writes with IOERR and writes nothing.
            if (m_read_only) return bad("write to a read-only disk");
            if (data_in != 0) return bad("write request with device-writable data buffers");
            if (data_out % kSectorSize != 0) return bad("write length not a multiple of 512");
            if (!in_range(sector, data_out / kSectorSize)) return bad("write past the end of the disk");
            if (data_out == 0) {
                complete_now(r, kStatusOk);
                return true;
            }
            c.slice_readable(sizeof hdr, data_out, r->iov);
            r->bytes = data_out;
            ++m_counters.write_requests;
            submit(disk::IoOp::kWrite, sector * kSectorSize, data_out, true);
            break;
        }
        case kTypeFlush:
            ++m_counters.flush_requests;
            submit(disk::IoOp::kFlush, 0, 0, false);
            break;
        case kTypeGetId: {
            ++m_counters.get_id_requests;
            uint8_t id[kIdBytes] = {};
            std::memcpy(id, m_options.serial.data(), std::min<size_t>(m_options.serial.size(), kIdBytes));
            size_t n = std::min<uint64_t>(data_in, kIdBytes);
            c.write(0, {id, n});
            r->used_len = static_cast<uint32_t>(n);
            complete_now(r, kStatusOk);
            return true;
        }
        case kTypeDiscard:
        case kTypeWriteZeroes: {
            bool discard = r->type == kTypeDiscard;
            uint64_t negotiated = m_transport->negotiated_features();
            if ((negotiated & feature_bit(discard ? kFeatureDiscard : kFeatureWriteZeroes)) == 0) {
                ++m_counters.unsupported;
                complete_now(r, kStatusUnsupp);
                return true;
            }
            if (data_out == 0 || data_out % sizeof(DiscardSegment) != 0)
                return bad("discard/write-zeroes data not a non-zero multiple of 16 bytes");
            uint64_t segments = data_out / sizeof(DiscardSegment);
            if (segments > kMaxDiscardSegments)
                return bad("more discard/write-zeroes segments than max_*_seg");
            // Validate every segment before starting any.
            for (uint64_t i = 0; i < segments; ++i) {
                DiscardSegment seg;
                c.read(sizeof hdr + i * sizeof seg, {reinterpret_cast<uint8_t*>(&seg), sizeof seg});
                uint32_t flags = seg.flags;
                // §5.2.6.2: unknown flags, and unmap on a discard, are UNSUPP.
                if ((flags & ~kFlagUnmap) != 0 || (discard && (flags & kFlagUnmap) != 0)) {
                    ++m_counters.unsupported;
                    complete_now(r, kStatusUnsupp);
                    return true;
                }
                if (seg.num_sectors > kMaxDiscardSectors) return bad("discard/write-zeroes segment too long");
                if (!in_range(seg.sector, seg.num_sectors))
                    return bad("discard/write-zeroes past the end of the disk");
            }
            discard ? ++m_counters.discard_requests : ++m_counters.write_zeroes_requests;
            for (uint64_t i = 0; i < segments; ++i) {
                DiscardSegment seg;
                c.read(sizeof hdr + i * sizeof seg, {reinterpret_cast<uint8_t*>(&seg), sizeof seg});
                if (seg.num_sectors == 0) continue;
                r->bytes += uint64_t{seg.num_sectors} * kSectorSize;
                submit(discard ? disk::IoOp::kDiscard : disk::IoOp::kWriteZeroes, seg.sector * kSectorSize,
                       uint64_t{seg.num_sectors} * kSectorSize, false);
            }
            if (r->pending == 0) {
                complete_now(r, kStatusOk);
                return true;
            }
            break;
        }
        default:
            // GET_LIFETIME, SECURE_ERASE, zoned commands and anything unknown (§5.2.6.2).
            ++m_counters.unsupported;
            complete_now(r, kStatusUnsupp);
            return true;
    }
    ++m_in_flight;
    // Submit after the whole request is described: a backend may complete an operation from
    // its own deferred work, never from inside submit(), so r stays consistent.
    for (auto& io : r->io)
        m_backend->submit(m_io, io);
    return false;
}

void VirtioBlock::complete_now(Request* r, uint8_t status) {
    *r->status = status;
    m_transport->queue(0).add_used(r->chain.head(), r->used_len + 1);
    release(r);
}

void VirtioBlock::on_io_done(Request* r, Status status) {
    std::lock_guard lock(m_transport->lock());
    if (!status.ok()) {
        if (!r->failed && r->generation == m_generation)
            log::get("virtio").warn("{}: {}", name(), status.error().message());
        r->failed = true;
    }
    if (--r->pending > 0) return;
    finish(r);
}

void VirtioBlock::finish(Request* r) {
    --m_in_flight;
    if (r->generation != m_generation) {
        // Reset while this was in flight: the queue it came from is gone.
        release(r);
        if (m_resetting && m_in_flight == 0) {
            m_resetting = false;
            m_transport->reset_complete();
        }
        return;
    }
    if (r->failed) {
        ++m_counters.io_errors;
        r->used_len = 0;
    } else if (r->type == kTypeIn) {
        m_counters.read_bytes += r->bytes;
    } else if (r->type == kTypeOut) {
        m_counters.write_bytes += r->bytes;
    }
    *r->status = r->failed ? kStatusIoErr : kStatusOk;
    m_transport->queue(0).add_used(r->chain.head(), r->used_len + 1);
    release(r);
    schedule_interrupt();
}

void VirtioBlock::schedule_interrupt() {
    // Completions arrive in bursts from one IoContext poll; deferred work runs after the
    // burst, so the driver gets one interrupt per burst rather than one per request.
    if (m_interrupt_scheduled) return;
    m_interrupt_scheduled = true;
    m_io.defer([this, alive = m_alive] {
        if (!*alive) return;
        std::lock_guard lock(m_transport->lock());
        m_interrupt_scheduled = false;
        m_transport->notify_used(0);
    });
}

bool VirtioBlock::reset() {
    ++m_generation;
    if (m_in_flight == 0) return true;
    m_resetting = true;
    return false;
}

nlohmann::json VirtioBlock::save_state() const {
    return nlohmann::json{{"version", 1}, {"capacity", m_capacity}, {"read_only", m_read_only}};
}

Status VirtioBlock::restore_state(const nlohmann::json& state) {
    pci::StateFields f(state, name(), 1);
    uint64_t capacity = f.number("capacity", ~uint64_t{0});
    bool read_only = f.boolean("read_only");
    VIREO_TRY(f.status());
    // The guest has cached the size and whether it may write; a different disk would lie.
    if (capacity != m_capacity)
        return make_error("{} snapshot: disk had {} sectors, now {}", name(), capacity, m_capacity);
    if (read_only != m_read_only)
        return make_error("{} snapshot: disk was {}, now {}", name(), read_only ? "read-only" : "writable",
                          m_read_only ? "read-only" : "writable");
    return {};
}

nlohmann::json VirtioBlock::counters() const {
    const Counters& c = m_counters;
    return nlohmann::json{
        {"read_requests", c.read_requests},
        {"read_bytes", c.read_bytes},
        {"write_requests", c.write_requests},
        {"write_bytes", c.write_bytes},
        {"flush_requests", c.flush_requests},
        {"discard_requests", c.discard_requests},
        {"write_zeroes_requests", c.write_zeroes_requests},
        {"get_id_requests", c.get_id_requests},
        {"requests", c.read_requests + c.write_requests + c.flush_requests + c.discard_requests +
                         c.write_zeroes_requests + c.get_id_requests},
        {"bytes", c.read_bytes + c.write_bytes},
        {"io_errors", c.io_errors},
        {"bad_requests", c.bad_requests},
        {"unsupported", c.unsupported},
        {"errors", c.io_errors + c.bad_requests + c.unsupported},
        {"in_flight", m_in_flight},
    };
}

}  // namespace vireo::devices::virtio
