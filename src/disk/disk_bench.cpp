// Disk benchmark engine: qemu-img bench's request schedule over BlockBackend::submit.
#include "disk/disk_bench.hpp"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "disk/io_context.hpp"

namespace vireo::disk {

namespace {

constexpr size_t kAlign = 4096;  // buffers suit O_DIRECT on any common device
constexpr uint64_t kMaxBufferBytes = 4ull << 30;

struct FreeDeleter {
    void operator()(uint8_t* p) const { std::free(p); }
};

// The schedule follows qemu-img bench so that both tools run the same workload: a request
// completes, then (every flush_interval requests) a flush is sent — after the queue drained
// unless --no-drain —, then the queue is refilled up to the depth; offsets advance by `step`
// and wrap at the disk size.
class BenchRun {
  public:
    BenchRun(BlockBackend& disk, IoContext& ctx, const BenchConfig& config)
        : m_disk(disk),
          m_ctx(ctx),
          m_config(config),
          m_step(config.step != 0 ? config.step : config.size),
          m_remaining(config.count),
          m_offset(config.offset) {}

    Result<BenchResult> run() {
        const uint64_t padded = (m_config.size + kAlign - 1) / kAlign * kAlign;
        if (m_config.depth == 0) return make_error("bench: queue depth must be at least 1");
        if (padded > kMaxBufferBytes / m_config.depth) {
            return make_error("bench: {} requests of {} bytes in flight need more than {} bytes of buffers",
                              m_config.depth, m_config.size, kMaxBufferBytes);
        }
        const size_t slots =
            static_cast<size_t>(std::min<uint64_t>(m_config.depth, std::max<uint64_t>(m_config.count, 1)));
        m_buffer.reset(
            static_cast<uint8_t*>(std::aligned_alloc(kAlign, std::max<uint64_t>(padded, kAlign) * slots)));
        if (!m_buffer) return make_error("bench: cannot allocate {} bytes of buffers", padded * slots);
        std::memset(m_buffer.get(), m_config.pattern, std::max<uint64_t>(padded, kAlign) * slots);
        m_slots.resize(slots);
        for (size_t i = 0; i < slots; ++i) {
            Slot& s = m_slots[i];
            s.iov = {m_buffer.get() + i * std::max<uint64_t>(padded, kAlign), m_config.size};
            s.req.complete = [this, &s](IoRequest&, Status status) { slot_done(s, std::move(status)); };
            m_free.push_back(&s);
        }

        m_start = std::chrono::steady_clock::now();
        m_end = m_start;
        submit_more();
        while (!m_failure && m_remaining > 0) {
            auto r = m_ctx.wait(-1);
            if (!r.ok()) return std::move(r).error();
        }
        // Whatever is still in flight (an undrained or final flush) finishes outside the timing,
        // as in qemu-img bench.
        VIREO_TRY(m_ctx.drain());
        if (m_failure) return *m_failure;
        BenchResult result;
        result.seconds = std::chrono::duration<double>(m_end - m_start).count();
        result.requests = m_config.count;
        result.flushes = m_flushes;
        return result;
    }

  private:
    struct Slot {
        IoRequest req;
        iovec iov{};
        bool flushing = false;
    };
    struct Flush {
        IoRequest req;
        bool drained = false;
    };

    void submit_more() {
        while (!m_failure && m_remaining > m_in_flight && m_in_flight < m_slots.size()) {
            Slot* s = m_free.back();
            m_free.pop_back();
            ++m_in_flight;
            const uint64_t at = m_offset;
            m_offset += m_step;
            const uint64_t disk_size = m_disk.size();
            m_offset = disk_size == 0 ? 0 : m_offset % disk_size;
            s->flushing = false;
            s->req.op = m_config.write ? IoOp::kWrite : IoOp::kRead;
            s->req.offset = at;
            s->req.length = m_config.size;
            s->req.iov = {&s->iov, 1};
            m_disk.submit(m_ctx, s->req);
        }
    }

    void slot_done(Slot& s, Status status) {
        if (!status.ok()) {
            fail(std::move(status).error());
            return;
        }
        if (m_config.write && m_config.flush_every_write && !m_config.ignore_flushes && !s.flushing) {
            // Write-through cache modes: the write is complete once it is durable.
            s.flushing = true;
            s.req.op = IoOp::kFlush;
            s.req.offset = 0;
            s.req.length = 0;
            s.req.iov = {};
            m_disk.submit(m_ctx, s.req);
            return;
        }
        m_free.push_back(&s);
        const uint64_t not_submitted = m_remaining - m_in_flight;
        --m_remaining;
        --m_in_flight;
        if (m_remaining == 0) m_end = std::chrono::steady_clock::now();
        if (m_config.flush_interval != 0 && not_submitted % m_config.flush_interval == 0) {
            if (m_in_flight == 0 || !m_config.drain_on_flush) start_flush(m_config.drain_on_flush);
            if (m_config.drain_on_flush) return;  // refilled when the flush completes
        }
        submit_more();
    }

    void start_flush(bool drained) {
        auto f = std::make_unique<Flush>();
        f->drained = drained;
        Flush* raw = f.get();
        m_flush_reqs.push_back(std::move(f));
        raw->req.op = IoOp::kFlush;
        raw->req.complete = [this, raw](IoRequest&, Status status) { flush_done(*raw, std::move(status)); };
        if (m_config.ignore_flushes) {
            m_ctx.defer([raw] { raw->req.complete(raw->req, Status{}); });
        } else {
            m_disk.submit(m_ctx, raw->req);
        }
    }

    void flush_done(Flush& f, Status status) {
        if (!status.ok()) {
            fail(std::move(status).error());
            return;
        }
        ++m_flushes;
        if (f.drained) submit_more();
    }

    void fail(Error e) {
        if (!m_failure) m_failure = std::move(e);
    }

    BlockBackend& m_disk;
    IoContext& m_ctx;
    const BenchConfig& m_config;
    const uint64_t m_step;
    uint64_t m_remaining;  // requests not yet completed
    uint64_t m_in_flight = 0;
    uint64_t m_offset;
    uint64_t m_flushes = 0;
    std::unique_ptr<uint8_t, FreeDeleter> m_buffer;
    std::vector<Slot> m_slots;
    std::vector<Slot*> m_free;
    std::vector<std::unique_ptr<Flush>> m_flush_reqs;
    std::optional<Error> m_failure;
    std::chrono::steady_clock::time_point m_start;
    std::chrono::steady_clock::time_point m_end;
};

}  // namespace

Result<BenchResult> run_bench(BlockBackend& disk, IoContext& ctx, const BenchConfig& config) {
    BenchRun run(disk, ctx, config);
    return run.run();
}

}  // namespace vireo::disk
