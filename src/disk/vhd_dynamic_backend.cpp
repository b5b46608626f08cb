// Dynamic and differencing VHD backend: data path, block allocation, metadata commits.
#include "disk/vhd_dynamic_backend.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <deque>

#include "base/io.hpp"
#include "base/log.hpp"
#include "disk/io_context.hpp"
#include "disk/iov.hpp"
#include "disk/raw_backend.hpp"

namespace vireo::disk {

using namespace vhd;

namespace {

constexpr uint32_t kEntriesPerChunk = 128;  // BAT entries per 512-byte sector
constexpr size_t kZeroBufferSize = 1 << 20;
constexpr uint32_t kReserveBytes = 16 << 20;  // blocks reserved per footer move

// Aligned for O_DIRECT; shared and never written.
const uint8_t* zero_buffer() {
    static const uint8_t* buffer = [] {
        void* p = std::aligned_alloc(4096, kZeroBufferSize);
        std::memset(p, 0, kZeroBufferSize);
        return static_cast<const uint8_t*>(p);
    }();
    return buffer;
}

struct AlignedSector {
    AlignedSector() : data(static_cast<uint8_t*>(std::aligned_alloc(4096, 4096))) {}
    ~AlignedSector() { std::free(data); }
    AlignedSector(const AlignedSector&) = delete;
    AlignedSector& operator=(const AlignedSector&) = delete;
    uint8_t* data;
};

}  // namespace

struct VhdDynamicBackend::Fanout {
    VhdDynamicBackend* self = nullptr;
    IoRequest* req = nullptr;
    bool is_write = false;
    size_t pending = 1;  // one for the submitting call itself, released from a deferred callback
    Status status;
    std::vector<Segment> segs;
    std::deque<IovSlice> slices;
    std::deque<IoRequest> subs;

    void done(Status s) {
        if (!s.ok() && status.ok()) status = std::move(s);
        if (--pending > 0) return;
        IoRequest* r = req;
        Status st = std::move(status);
        delete this;
        r->complete(*r, std::move(st));
    }
};

struct VhdDynamicBackend::FlushOp {
    VhdDynamicBackend* self = nullptr;
    IoRequest* req = nullptr;
    MetaBatch batch;
};

Result<std::unique_ptr<VhdDynamicBackend>> VhdDynamicBackend::create(VhdLayout layout, UniqueFd data_fd,
                                                                     UniqueFd meta_fd, bool read_only,
                                                                     std::unique_ptr<BlockBackend> parent) {
    if (!read_only && !layout.end_footer_valid) {
        return make_error("disk.vhd {}: cannot open for writing: {} (run `vireo img check --repair`)",
                          layout.path, layout.end_footer_error);
    }
    std::unique_ptr<VhdDynamicBackend> b(new VhdDynamicBackend());
    b->m_path = layout.path;
    b->m_read_only = read_only;
    b->m_differencing = layout.type == DiskType::kDifferencing;
    b->m_fd = std::move(data_fd);
    b->m_meta_fd = std::move(meta_fd);
    int fl = ::fcntl(b->m_fd.get(), F_GETFL);
    b->m_direct = fl >= 0 && (fl & O_DIRECT) != 0;
    b->m_size = layout.size.size;
    b->m_block_size = layout.block_size;
    b->m_block_shift = static_cast<uint32_t>(std::countr_zero(layout.block_size));
    b->m_bitmap_size = layout.bitmap_size;
    b->m_sectors_per_block = layout.block_size / 512;
    b->m_entries = layout.max_table_entries;
    b->m_bat_offset = layout.bat_offset;
    b->m_footer = layout.footer;
    b->m_bat = std::make_unique<std::atomic<uint32_t>[]>(b->m_entries);
    b->m_state = std::make_unique<std::atomic<uint8_t>[]>(b->m_entries);
    for (uint32_t i = 0; i < b->m_entries; ++i) {
        b->m_bat[i].store(layout.bat[i], std::memory_order_relaxed);
        b->m_state[i].store(kUnloaded, std::memory_order_relaxed);
    }
    b->m_parent = std::move(parent);
    b->m_footer_offset = (layout.footer_offset + 511) / 512 * 512;
    b->m_file_size = layout.file_size;
    b->m_next_block = b->m_footer_offset;
    b->m_unallocated = static_cast<uint32_t>(std::count(layout.bat.begin(), layout.bat.end(), kUnallocated));
    b->m_bat_written_seq.assign((b->m_entries + kEntriesPerChunk - 1) / kEntriesPerChunk, 0);
    return b;
}

VhdDynamicBackend::~VhdDynamicBackend() {
    if (m_read_only) return;
    if (auto s = flush(); !s.ok()) {
        log::get("disk").error("{}: flush on close: {}", describe(), s.error().message());
        return;
    }
    if (auto s = release_reserved(); !s.ok())
        log::get("disk").error("{}: release reserved space on close: {}", describe(), s.error().message());
}

std::string VhdDynamicBackend::describe() const {
    if (!m_differencing) return "vhd dynamic " + m_path;
    return fmt::format("vhd differencing {} (parent: {})", m_path,
                       m_parent ? m_parent->describe() : std::string("not open"));
}

Status VhdDynamicBackend::check_range(uint64_t offset, uint64_t length, const char* what,
                                      bool modifies) const {
    if (offset > m_size || length > m_size - offset) {
        return make_error("vhd {}: {} of {} bytes at offset {} is past the end of the disk ({} bytes)",
                          m_path, what, length, offset, m_size);
    }
    if (modifies && m_read_only) return Error(fmt::format("vhd {}: disk is read-only", m_path), EROFS);
    return {};
}

uint32_t VhdDynamicBackend::sectors_in_block(uint32_t block) const {
    uint64_t start = uint64_t{block} << m_block_shift;
    if (start >= m_size) return m_sectors_per_block;
    return static_cast<uint32_t>(std::min<uint64_t>(m_sectors_per_block, (m_size - start + 511) / 512));
}

Result<uint8_t> VhdDynamicBackend::ensure_state(uint32_t block, uint32_t entry) {
    uint8_t st = m_state[block].load(std::memory_order_acquire);
    if (st != kUnloaded) return st;
    std::vector<uint8_t> bitmap(m_bitmap_size);
    VIREO_TRY_CTX(pread_exact(m_meta_fd.get(), bitmap, uint64_t{entry} * 512),
                  fmt::format("vhd {}: sector bitmap of block {}", m_path, block));
    std::lock_guard lock(m_mutex);
    st = m_state[block].load(std::memory_order_acquire);
    if (st != kUnloaded) return st;
    if (bitmap_all_set(bitmap.data(), 0, sectors_in_block(block))) {
        m_state[block].store(kFull, std::memory_order_release);
        return uint8_t{kFull};
    }
    m_bitmaps[block] = std::move(bitmap);
    m_state[block].store(kPartial, std::memory_order_release);
    return uint8_t{kPartial};
}

Status VhdDynamicBackend::write_meta(std::span<const uint8_t> data, uint64_t offset) {
    // Metadata goes through the O_DIRECT data descriptor when there is one: a buffered write next
    // to in-flight direct writes leaves page-cache pages (and, at the end of the file, a delayed
    // size update) that make the file system serialize and defer the direct writes of the whole
    // file; measured on ext4, allocating 4 KiB writes at depth 32 ran 3x slower with buffered
    // metadata. Both descriptors name the same inode, so fdatasync orders them alike. Devices
    // whose logical block is larger than a sector refuse 512-byte direct writes (EINVAL): those
    // fall back to the buffered descriptor.
    if (m_direct.load(std::memory_order_relaxed) && offset % 512 == 0 && data.size() % 512 == 0) {
        size_t len = data.size();
        auto* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, (len + 4095) / 4096 * 4096));
        if (buf == nullptr) return make_error("vhd {}: out of memory for {} bytes of metadata", m_path, len);
        std::memcpy(buf, data.data(), len);
        Status s = pwrite_exact(m_fd.get(), {buf, len}, offset);
        std::free(buf);
        if (s.ok() || s.error().os_error() != EINVAL) return s;
        m_direct.store(false, std::memory_order_relaxed);
    }
    return pwrite_exact(m_meta_fd.get(), data, offset);
}

Result<uint32_t> VhdDynamicBackend::allocate(uint32_t block) {
    std::lock_guard lock(m_mutex);
    uint32_t entry = m_bat[block].load(std::memory_order_acquire);
    if (entry != kUnallocated) return entry;

    uint64_t free_at = m_next_block;  // end of the last block: the old footer, or reserved space
    uint64_t at = aligned_block_start(free_at, m_bitmap_size);
    uint64_t total = uint64_t{m_bitmap_size} + m_block_size;
    if ((at + total) / 512 >= kUnallocated) {
        return make_error("vhd {}: no room for block {}: VHD block offsets are 32-bit sector numbers", m_path,
                          block);
    }
    int fd = m_meta_fd.get();
    if (free_at == m_footer_offset) {
        // No reserved space left. The footer moves past this block and, at the end of the file, past
        // room for a few more (kReserveBytes), so that the next allocations cost only their bitmap
        // write. Reserved room nobody used is a leak if the process dies; closing gives it back.
        uint64_t end = at + total;
        bool at_file_end = m_file_size <= free_at + kFooterSize;
        uint32_t extra =
            at_file_end ? std::min(m_unallocated, std::max<uint32_t>(1, kReserveBytes / m_block_size)) : 1;
        for (uint32_t i = 1; i < extra; ++i) {
            uint64_t next = aligned_block_start(end, m_bitmap_size) + total;
            if (next / 512 >= kUnallocated) break;
            end = next;
        }
        // 1. Reserve the blocks and the footer behind them in one extent (not all file systems can).
        if (::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(free_at),
                        static_cast<off_t>(end - free_at + kFooterSize)) < 0 &&
            errno != EOPNOTSUPP && errno != ENOSYS) {
            return os_error(fmt::format("vhd {}: reserve {} bytes for block {} at offset {}", m_path,
                                        end - free_at, block, at));
        }
        if (!at_file_end) {
            // Not the end of the file (never the case for images this code wrote): zero what the
            // new block's data area holds, since dynamic disks read it without consulting the bitmap.
            uint64_t data = at + m_bitmap_size;
            if (::fallocate(fd, FALLOC_FL_ZERO_RANGE, static_cast<off_t>(data),
                            static_cast<off_t>(m_block_size)) < 0) {
                for (uint64_t done = 0; done < m_block_size; done += kZeroBufferSize) {
                    size_t n = static_cast<size_t>(std::min<uint64_t>(kZeroBufferSize, m_block_size - done));
                    VIREO_TRY_CTX(pwrite_exact(fd, {zero_buffer(), n}, data + done), "vhd " + m_path);
                }
            }
        }
        // 2. The footer moves first, so the file ends with a valid footer at every moment.
        VIREO_TRY_CTX(write_meta({reinterpret_cast<const uint8_t*>(&m_footer), kFooterSize}, end),
                      fmt::format("vhd {}: footer for block {}", m_path, block));
        m_footer_offset = end;
        m_file_size = std::max(m_file_size, end + kFooterSize);
    }
    // 3. The bitmap, with zeros over the alignment padding before it; together they cover the old
    //    footer (reserved space past the old end of the file reads as zeros already).
    std::vector<uint8_t> head(at - free_at + m_bitmap_size, 0);
    std::fill(head.begin() + static_cast<ptrdiff_t>(at - free_at), head.end(), m_differencing ? 0x00 : 0xFF);
    VIREO_TRY_CTX(write_meta(head, free_at), fmt::format("vhd {}: sector bitmap of block {}", m_path, block));
    std::vector<uint8_t> bitmap(head.begin() + static_cast<ptrdiff_t>(at - free_at), head.end());
    // 4. Publish: state first, then the entry (readers load the entry, then the state).
    m_next_block = at + total;
    --m_unallocated;
    if (m_differencing) {
        m_bitmaps[block] = std::move(bitmap);
        m_state[block].store(kPartial, std::memory_order_release);
    } else {
        m_state[block].store(kFull, std::memory_order_release);
    }
    entry = static_cast<uint32_t>(at / 512);
    m_bat[block].store(entry, std::memory_order_release);
    m_dirty_bat.insert(block / kEntriesPerChunk);
    return entry;
}

Status VhdDynamicBackend::release_reserved() {
    std::lock_guard lock(m_mutex);
    if (m_next_block == m_footer_offset) return {};
    // Footer first at the end of the last block, then cut the file behind it: a crash in between
    // leaves a valid end footer either way (and at worst the reserved room as a leak).
    VIREO_TRY_CTX(write_meta({reinterpret_cast<const uint8_t*>(&m_footer), kFooterSize}, m_next_block),
                  fmt::format("vhd {}: footer at the end of the last block", m_path));
    if (::fdatasync(m_fd.get()) < 0) return os_error(fmt::format("vhd {}: fdatasync", m_path));
    if (::ftruncate(m_meta_fd.get(), static_cast<off_t>(m_next_block + kFooterSize)) < 0)
        return os_error(fmt::format("vhd {}: trim reserved space", m_path));
    m_footer_offset = m_next_block;
    m_file_size = m_next_block + kFooterSize;
    if (::fdatasync(m_fd.get()) < 0) return os_error(fmt::format("vhd {}: fdatasync", m_path));
    return {};
}

namespace {

void add_segment(std::vector<VhdDynamicBackend::Segment>& out, const VhdDynamicBackend::Segment& s) {
    using Kind = VhdDynamicBackend::SegKind;
    if (!out.empty()) {
        auto& last = out.back();
        bool adjacent = last.kind == s.kind && last.pos + last.len == s.pos && !last.set_bits && !s.set_bits;
        if (adjacent && (s.kind == Kind::kZero || last.src + last.len == s.src)) {
            last.len += s.len;
            return;
        }
    }
    out.push_back(s);
}

}  // namespace

void VhdDynamicBackend::add_unallocated(uint64_t pos, uint64_t len, uint64_t virt,
                                        std::vector<Segment>& out) const {
    if (!m_differencing) {
        add_segment(out, {SegKind::kZero, pos, len, 0});
        return;
    }
    uint64_t psize = m_parent ? m_parent->size() : UINT64_MAX;
    uint64_t in_parent = virt >= psize ? 0 : std::min(len, psize - virt);
    if (in_parent > 0) add_segment(out, {SegKind::kParent, pos, in_parent, virt});
    if (in_parent < len) add_segment(out, {SegKind::kZero, pos + in_parent, len - in_parent, 0});
}

Status VhdDynamicBackend::plan_read(uint64_t offset, uint64_t length, std::vector<Segment>& out) {
    uint64_t pos = 0;
    while (pos < length) {
        uint64_t off = offset + pos;
        auto block = static_cast<uint32_t>(off >> m_block_shift);
        uint64_t inoff = off & (m_block_size - 1);
        uint64_t n = std::min<uint64_t>(length - pos, m_block_size - inoff);
        uint32_t entry = m_bat[block].load(std::memory_order_acquire);
        if (entry == kUnallocated) {
            add_unallocated(pos, n, off, out);
            pos += n;
            continue;
        }
        VIREO_ASSIGN_OR_RETURN(uint8_t st, ensure_state(block, entry));
        if (st == kFull) {
            add_segment(out, {SegKind::kFile, pos, n, block_data_offset(entry) + inoff});
            pos += n;
            continue;
        }
        std::lock_guard lock(m_mutex);
        auto it = m_bitmaps.find(block);
        if (it == m_bitmaps.end()) {  // became full meanwhile
            add_segment(out, {SegKind::kFile, pos, n, block_data_offset(entry) + inoff});
            pos += n;
            continue;
        }
        const uint8_t* bm = it->second.data();
        auto s = static_cast<uint32_t>(inoff / 512);
        auto s_end = static_cast<uint32_t>((inoff + n + 511) / 512);
        uint64_t block_start = off - inoff;
        while (s < s_end) {
            bool present;
            uint32_t run = bitmap_run(bm, s, s_end - s, &present);
            uint64_t rb = std::max<uint64_t>(uint64_t{s} * 512, inoff);
            uint64_t re = std::min<uint64_t>(uint64_t{s + run} * 512, inoff + n);
            uint64_t p = pos + (rb - inoff);
            if (present) {
                add_segment(out, {SegKind::kFile, p, re - rb, block_data_offset(entry) + rb});
            } else {
                add_unallocated(p, re - rb, block_start + rb, out);
            }
            s += run;
        }
        pos += n;
    }
    return {};
}

Status VhdDynamicBackend::plan_write(uint64_t offset, uint64_t length, std::vector<Segment>& out, bool* rmw) {
    *rmw = false;
    uint64_t pos = 0;
    while (pos < length) {
        uint64_t off = offset + pos;
        auto block = static_cast<uint32_t>(off >> m_block_shift);
        uint64_t inoff = off & (m_block_size - 1);
        uint64_t n = std::min<uint64_t>(length - pos, m_block_size - inoff);
        uint32_t entry = m_bat[block].load(std::memory_order_acquire);
        if (entry == kUnallocated) {
            VIREO_ASSIGN_OR_RETURN(entry, allocate(block));
        }
        VIREO_ASSIGN_OR_RETURN(uint8_t st, ensure_state(block, entry));
        Segment seg{SegKind::kFile, pos, n, block_data_offset(entry) + inoff};
        if (st != kFull) {
            std::lock_guard lock(m_mutex);
            auto it = m_bitmaps.find(block);
            if (it != m_bitmaps.end()) {
                const uint8_t* bm = it->second.data();
                auto s0 = static_cast<uint32_t>(inoff / 512);
                auto s1 = static_cast<uint32_t>((inoff + n + 511) / 512);
                if (!bitmap_all_set(bm, s0, s1 - s0)) {
                    // A sector not yet in this image holds parent data (or, in a dynamic disk,
                    // undefined bytes that read as zeros): a partial write must fill the rest.
                    if ((inoff % 512 != 0 && !bitmap_test(bm, s0)) ||
                        ((inoff + n) % 512 != 0 && !bitmap_test(bm, s1 - 1))) {
                        *rmw = true;
                    }
                    seg.set_bits = true;
                    seg.block = block;
                    seg.first_sector = s0;
                    seg.sectors = s1 - s0;
                }
            }
        }
        add_segment(out, seg);
        pos += n;
    }
    return {};
}

void VhdDynamicBackend::set_bits(uint32_t block, uint32_t first, uint32_t count) {
    std::lock_guard lock(m_mutex);
    auto it = m_bitmaps.find(block);
    if (it == m_bitmaps.end()) return;  // already full
    bitmap_set_range(it->second.data(), first, count);
    m_dirty_bitmaps.insert(block);
    if (bitmap_all_set(it->second.data(), 0, sectors_in_block(block))) {
        m_state[block].store(kFull, std::memory_order_release);
        m_bitmaps.erase(it);
    }
}

Status VhdDynamicBackend::run_read(std::span<const iovec> iov, const std::vector<Segment>& plan) {
    for (const auto& seg : plan) {
        IovSlice slice(iov, seg.pos, seg.len);
        switch (seg.kind) {
            case SegKind::kZero:
                iov_fill(iov, seg.pos, seg.len, 0);
                break;
            case SegKind::kFile:
                VIREO_TRY_CTX(preadv_exact(m_fd.get(), slice.span(), seg.src), "vhd " + m_path);
                break;
            case SegKind::kParent:
                if (!m_parent)
                    return make_error("vhd {}: sectors at {} live in the parent, which is not open", m_path,
                                      seg.src);
                VIREO_TRY(m_parent->read(seg.src, slice.span()));
                break;
        }
    }
    return {};
}

Status VhdDynamicBackend::read(uint64_t offset, std::span<const iovec> iov) {
    uint64_t length = iov_length(iov);
    VIREO_TRY(check_range(offset, length, "read", false));
    std::vector<Segment> plan;
    VIREO_TRY(plan_read(offset, length, plan));
    return run_read(iov, plan);
}

Status VhdDynamicBackend::write(uint64_t offset, std::span<const iovec> iov) {
    uint64_t length = iov_length(iov);
    VIREO_TRY(check_range(offset, length, "write", true));
    std::vector<Segment> plan;
    bool rmw = false;
    VIREO_TRY(plan_write(offset, length, plan, &rmw));
    if (rmw) return write_slow(offset, iov);
    for (const auto& seg : plan) {
        IovSlice slice(iov, seg.pos, seg.len);
        VIREO_TRY_CTX(pwritev_exact(m_fd.get(), slice.span(), seg.src), "vhd " + m_path);
        if (seg.set_bits) set_bits(seg.block, seg.first_sector, seg.sectors);
    }
    return {};
}

Status VhdDynamicBackend::write_slow(uint64_t offset, std::span<const iovec> iov) {
    // Widen the write to whole sectors with the sectors' current contents, then write that.
    std::lock_guard lock(m_rmw_mutex);
    uint64_t length = iov_length(iov);
    uint64_t end = offset + length;
    uint64_t a = offset / 512 * 512;
    uint64_t z = (end + 511) / 512 * 512;
    AlignedSector head, tail;
    std::vector<iovec> v;
    if (a < offset) {
        iovec h{head.data, 512};
        VIREO_TRY(read(a, {&h, 1}));
        v.push_back({head.data, static_cast<size_t>(offset - a)});
    }
    v.insert(v.end(), iov.begin(), iov.end());
    if (z > end) {
        uint64_t last = z - 512;
        uint8_t* src = tail.data;
        if (last == a && a < offset) {
            src = head.data;  // the write starts and ends in the same sector
        } else {
            iovec t{tail.data, 512};
            VIREO_TRY(read(last, {&t, 1}));
        }
        v.push_back({src + (end - last), static_cast<size_t>(z - end)});
    }
    return write(a, v);
}

Status VhdDynamicBackend::zero_range(uint64_t offset, uint64_t length, bool discard_only) {
    // Discard is advisory. A differencing disk keeps its data: freeing it could not make the
    // sectors fall back to the parent without rewriting bitmaps, and zeros would be a surprise.
    if (discard_only && m_differencing) return {};
    uint64_t pos = 0;
    while (pos < length) {
        uint64_t off = offset + pos;
        auto block = static_cast<uint32_t>(off >> m_block_shift);
        uint64_t inoff = off & (m_block_size - 1);
        uint64_t n = std::min<uint64_t>(length - pos, m_block_size - inoff);
        pos += n;
        uint32_t entry = m_bat[block].load(std::memory_order_acquire);
        bool write_zeros = false;
        if (entry == kUnallocated) {
            write_zeros = m_differencing && !discard_only;
        } else {
            VIREO_ASSIGN_OR_RETURN(uint8_t st, ensure_state(block, entry));
            if (st == kFull) {
                // Every sector is in this image: freeing the host blocks makes them read as zeros.
                if (::fallocate(m_meta_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                static_cast<off_t>(block_data_offset(entry) + inoff),
                                static_cast<off_t>(n)) == 0) {
                    continue;
                }
                write_zeros = !discard_only;
            } else {
                write_zeros = !discard_only;
            }
        }
        if (!write_zeros) continue;
        for (uint64_t done = 0; done < n;) {
            size_t chunk = static_cast<size_t>(std::min<uint64_t>(n - done, kZeroBufferSize));
            iovec z{const_cast<uint8_t*>(zero_buffer()), chunk};
            VIREO_TRY(write(off + done, {&z, 1}));
            done += chunk;
        }
    }
    return {};
}

Status VhdDynamicBackend::discard(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "discard", true));
    return zero_range(offset, length, true);
}

Status VhdDynamicBackend::write_zeroes(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "write-zeroes", true));
    return zero_range(offset, length, false);
}

VhdDynamicBackend::MetaBatch VhdDynamicBackend::capture_metadata() {
    std::lock_guard lock(m_mutex);
    MetaBatch batch;
    if (m_dirty_bat.empty() && m_dirty_bitmaps.empty()) return batch;
    batch.seq = ++m_commit_seq;
    for (uint32_t chunk : m_dirty_bat) {
        MetaWrite w;
        w.is_bat = true;
        w.index = chunk;
        w.offset = m_bat_offset + uint64_t{chunk} * kEntriesPerChunk * 4;
        uint32_t first = chunk * kEntriesPerChunk;
        uint32_t count = std::min(kEntriesPerChunk, m_entries - first);
        w.data.resize(size_t{count} * 4);
        for (uint32_t i = 0; i < count; ++i)
            store_be<uint32_t>(w.data.data() + i * 4, m_bat[first + i].load(std::memory_order_relaxed));
        batch.writes.push_back(std::move(w));
    }
    for (uint32_t block : m_dirty_bitmaps) {
        MetaWrite w;
        w.index = block;
        w.offset = uint64_t{m_bat[block].load(std::memory_order_relaxed)} * 512;
        auto it = m_bitmaps.find(block);
        if (it == m_bitmaps.end()) {
            w.data.assign(m_bitmap_size, 0xFF);
        } else {
            w.data = it->second;
        }
        batch.writes.push_back(std::move(w));
    }
    m_dirty_bat.clear();
    m_dirty_bitmaps.clear();
    return batch;
}

Status VhdDynamicBackend::write_metadata(const MetaBatch& batch) {
    // Under the lock, so overlapping flushes write in capture order; a unit already written by a
    // later capture (a superset: entries and bits are only ever added) is skipped.
    std::lock_guard lock(m_mutex);
    for (const auto& w : batch.writes) {
        uint64_t& written = w.is_bat ? m_bat_written_seq[w.index] : m_bitmap_written_seq[w.index];
        if (written >= batch.seq) continue;
        VIREO_TRY_CTX(write_meta(w.data, w.offset),
                      fmt::format("vhd {}: {} {}", m_path, w.is_bat ? "BAT sector" : "sector bitmap of block",
                                  w.index));
        written = batch.seq;
    }
    return {};
}

void VhdDynamicBackend::restore_dirty(const MetaBatch& batch) {
    std::lock_guard lock(m_mutex);
    for (const auto& w : batch.writes) {
        if (w.is_bat) {
            m_dirty_bat.insert(w.index);
        } else {
            m_dirty_bitmaps.insert(w.index);
        }
    }
}

Status VhdDynamicBackend::flush() {
    if (m_read_only) return {};
    MetaBatch batch = capture_metadata();
    if (::fdatasync(m_fd.get()) < 0) {
        int err = errno;
        restore_dirty(batch);
        return os_error(fmt::format("vhd {}: fdatasync", m_path), err);
    }
    if (batch.writes.empty()) return {};
    if (auto s = write_metadata(batch); !s.ok()) {
        restore_dirty(batch);
        return s;
    }
    if (::fdatasync(m_fd.get()) < 0) return os_error(fmt::format("vhd {}: fdatasync", m_path));
    return {};
}

void VhdDynamicBackend::submit_flush(IoContext& ctx, IoRequest& req) {
    IoRequest* r = &req;
    if (m_read_only) {
        ctx.defer([r] { r->complete(*r, Status{}); });
        return;
    }
    auto* op = new FlushOp{this, r, capture_metadata()};
    auto fail = [](FlushOp* o, Error e) {
        o->self->restore_dirty(o->batch);
        IoRequest* rq = o->req;
        delete o;
        rq->complete(*rq, std::move(e));
    };
    ctx.fsync(m_fd.get(), true, [op, &ctx, fail](int64_t res) {
        if (res < 0) {
            fail(op, os_error(fmt::format("vhd {}: fdatasync", op->self->m_path), static_cast<int>(-res)));
            return;
        }
        if (op->batch.writes.empty()) {
            IoRequest* rq = op->req;
            delete op;
            rq->complete(*rq, Status{});
            return;
        }
        if (auto s = op->self->write_metadata(op->batch); !s.ok()) {
            fail(op, std::move(s).error());
            return;
        }
        ctx.fsync(op->self->m_fd.get(), true, [op](int64_t res2) {
            IoRequest* rq = op->req;
            Status st;
            if (res2 < 0)
                st = os_error(fmt::format("vhd {}: fdatasync", op->self->m_path), static_cast<int>(-res2));
            delete op;
            rq->complete(*rq, std::move(st));
        });
    });
}

namespace {

Status transfer_status(const std::string& path, bool is_read, uint64_t offset, int64_t result,
                       uint64_t expected) {
    if (result < 0) {
        return os_error(fmt::format("vhd {}: {} at offset {}", path, is_read ? "read" : "write", offset),
                        static_cast<int>(-result));
    }
    if (static_cast<uint64_t>(result) != expected) {
        return make_error("vhd {}: short {} at offset {} ({} of {} bytes)", path, is_read ? "read" : "write",
                          offset, result, expected);
    }
    return {};
}

}  // namespace

void VhdDynamicBackend::submit(IoContext& ctx, IoRequest& req) {
    IoRequest* r = &req;
    auto fail = [&ctx, r](Error e) {
        ctx.defer([r, e = std::move(e)]() mutable { r->complete(*r, std::move(e)); });
    };
    switch (req.op) {
        case IoOp::kFlush:
            submit_flush(ctx, req);
            return;
        case IoOp::kDiscard:
        case IoOp::kWriteZeroes: {
            Status s = req.op == IoOp::kDiscard ? discard(req.offset, req.length)
                                                : write_zeroes(req.offset, req.length);
            ctx.defer([r, s = std::move(s)]() mutable { r->complete(*r, std::move(s)); });
            return;
        }
        case IoOp::kRead:
        case IoOp::kWrite:
            break;
    }
    const bool is_read = req.op == IoOp::kRead;
    uint64_t length = iov_length(req.iov);
    if (auto s = check_range(req.offset, length, is_read ? "read" : "write", !is_read); !s.ok()) {
        fail(std::move(s).error());
        return;
    }
    // Fast path: the request lies in one block that is wholly in this image.
    auto block = static_cast<uint32_t>(req.offset >> m_block_shift);
    uint64_t inoff = req.offset & (m_block_size - 1);
    if (length > 0 && inoff + length <= m_block_size) {
        uint32_t entry = m_bat[block].load(std::memory_order_acquire);
        if (entry == kUnallocated && is_read && !m_differencing) {
            iov_fill(req.iov, 0, length, 0);
            ctx.defer([r] { r->complete(*r, Status{}); });
            return;
        }
        if (entry == kUnallocated && !is_read) {
            auto e = allocate(block);
            if (!e.ok()) {
                fail(std::move(e).error());
                return;
            }
            entry = *e;
        }
        if (entry != kUnallocated) {
            auto st = ensure_state(block, entry);
            if (!st.ok()) {
                fail(std::move(st).error());
                return;
            }
            if (*st == kFull) {
                uint64_t at = block_data_offset(entry) + inoff;
                auto done = [this, r](int64_t res) {
                    r->complete(*r, transfer_status(m_path, r->op == IoOp::kRead, r->offset, res,
                                                    iov_length(r->iov)));
                };
                if (is_read) {
                    ctx.readv(m_fd.get(), req.iov, at, std::move(done));
                } else {
                    ctx.writev(m_fd.get(), req.iov, at, std::move(done));
                }
                return;
            }
        }
    }

    auto* fan = new Fanout();
    fan->self = this;
    fan->req = r;
    fan->is_write = !is_read;
    Status planned;
    if (is_read) {
        planned = plan_read(req.offset, length, fan->segs);
    } else {
        bool rmw = false;
        planned = plan_write(req.offset, length, fan->segs, &rmw);
        if (planned.ok() && rmw) {
            // Sub-sector writes into sectors still in the parent: rare, done synchronously.
            delete fan;
            Status s = write_slow(req.offset, req.iov);
            ctx.defer([r, s = std::move(s)]() mutable { r->complete(*r, std::move(s)); });
            return;
        }
    }
    if (!planned.ok()) {
        delete fan;
        fail(std::move(planned).error());
        return;
    }
    for (size_t i = 0; i < fan->segs.size(); ++i) {
        const Segment& seg = fan->segs[i];
        switch (seg.kind) {
            case SegKind::kZero:
                iov_fill(req.iov, seg.pos, seg.len, 0);
                break;
            case SegKind::kFile: {
                ++fan->pending;
                IovSlice slice(req.iov, seg.pos, seg.len);
                auto cb = [fan, i](int64_t res) {
                    const Segment& s = fan->segs[i];
                    Status st = transfer_status(fan->self->m_path, !fan->is_write, s.src, res, s.len);
                    if (st.ok() && s.set_bits) fan->self->set_bits(s.block, s.first_sector, s.sectors);
                    fan->done(std::move(st));
                };
                if (is_read) {
                    ctx.readv(m_fd.get(), slice.span(), seg.src, std::move(cb));
                } else {
                    ctx.writev(m_fd.get(), slice.span(), seg.src, std::move(cb));
                }
                break;
            }
            case SegKind::kParent: {
                ++fan->pending;
                if (!m_parent) {
                    fan->done(make_error("vhd {}: sectors at {} live in the parent, which is not open",
                                         m_path, seg.src));
                    break;
                }
                IovSlice& slice = fan->slices.emplace_back(req.iov, seg.pos, seg.len);
                IoRequest& sub = fan->subs.emplace_back();
                sub.op = IoOp::kRead;
                sub.offset = seg.src;
                sub.length = seg.len;
                sub.iov = slice.span();
                sub.complete = [fan](IoRequest&, Status s) { fan->done(std::move(s)); };
                m_parent->submit(ctx, sub);
                break;
            }
        }
    }
    ctx.defer([fan] { fan->done(Status{}); });
}

Result<Extent> VhdDynamicBackend::block_status(uint64_t offset, uint64_t length) {
    if (offset >= m_size)
        return make_error("vhd {}: block status at {} is past the end of the disk", m_path, offset);
    length = std::min(length, m_size - offset);
    auto block = static_cast<uint32_t>(offset >> m_block_shift);
    uint64_t inoff = offset & (m_block_size - 1);
    uint64_t n = std::min<uint64_t>(length, m_block_size - inoff);
    Extent e;
    e.offset = offset;

    auto not_here = [this, &e](uint64_t off, uint64_t len) -> Result<Extent> {
        e.length = len;
        e.allocated = false;
        e.depth = -1;
        e.zero = !m_differencing;
        if (!m_differencing || !m_parent) return e;
        uint64_t psize = m_parent->size();
        if (off >= psize) {
            e.zero = true;
            return e;
        }
        VIREO_ASSIGN_OR_RETURN(Extent p, m_parent->block_status(off, std::min(len, psize - off)));
        p.offset = off;
        if (p.depth >= 0) p.depth += 1;
        return p;
    };

    uint32_t entry = m_bat[block].load(std::memory_order_acquire);
    if (entry == kUnallocated) {
        if (m_differencing) return not_here(offset, n);
        // Runs of unallocated blocks form one extent.
        uint64_t len = n;
        while (len < length) {
            auto next = static_cast<uint32_t>((offset + len) >> m_block_shift);
            if (m_bat[next].load(std::memory_order_acquire) != kUnallocated) break;
            len += std::min<uint64_t>(length - len, m_block_size);
        }
        return not_here(offset, len);
    }
    VIREO_ASSIGN_OR_RETURN(uint8_t st, ensure_state(block, entry));
    if (st != kFull) {
        bool partial = false;
        bool present = true;
        uint64_t len = n;
        {
            std::lock_guard lock(m_mutex);
            auto it = m_bitmaps.find(block);
            if (it != m_bitmaps.end()) {
                partial = true;
                auto s = static_cast<uint32_t>(inoff / 512);
                auto s_end = static_cast<uint32_t>((inoff + n + 511) / 512);
                uint32_t run = bitmap_run(it->second.data(), s, s_end - s, &present);
                len = std::min<uint64_t>(uint64_t{s + run} * 512, inoff + n) - inoff;
            }
        }
        if (partial && !present) return not_here(offset, len);
        n = len;
    }
    e.length = n;
    e.allocated = true;
    e.depth = 0;
    e.file_offset = block_data_offset(entry) + inoff;
    return e;
}

}  // namespace vireo::disk
