// VhdDynamicBackend: dynamic and differencing VHDs — sparse blocks found through the BAT, each a
// sector bitmap followed by data; a differencing disk reads the sectors it does not hold from its
// parent.
//
// Write ordering (crash safety). Allocating a block at the current end of data F:
//   1. reserve the block and a new footer position with fallocate (best effort);
//   2. write the footer at F + bitmap + block: the file now ends with a valid footer; the old
//      footer at F sits inside the unreferenced new block;
//   3. write the block's sector bitmap at F (all ones for dynamic disks, whose new data area is
//      zeros; all zeros for differencing disks, so the block still reads from the parent);
//   4. publish the BAT entry in memory; guest data may now be written into the block.
// The BAT entry reaches the file only at the next flush: fdatasync (steps 1-3 and all completed
// data), then the dirty BAT sectors and sector bitmaps, then fdatasync again before the flush
// completes. So a BAT entry never points at a block whose bitmap and zeroed data are not durable,
// a bitmap bit never claims a sector whose data is not durable, and a process killed at any point
// leaves at worst unreferenced blocks (leaks that `check --repair` reclaims). Writes completed
// before a flush was submitted are durable when it completes.
//
// Thread-safety: the BAT and per-block states are atomics, read without locks on the data path;
// reads and writes of allocated blocks go straight to the file. One mutex (m_mutex) guards
// allocation, partial bitmaps, dirty metadata and the footer position; metadata writes of a
// flush happen under it so they reach the file in capture order even when flushes overlap.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/unique_fd.hpp"
#include "disk/block_backend.hpp"
#include "disk/vhd_layout.hpp"

namespace vireo::disk {

class VhdDynamicBackend final : public BlockBackend {
  public:
    // `data_fd` carries guest data (O_DIRECT when asked), `meta_fd` is a buffered descriptor of
    // the same file for metadata. `parent` is null for dynamic disks, and for differencing disks
    // opened without their chain.
    static Result<std::unique_ptr<VhdDynamicBackend>> create(VhdLayout layout, UniqueFd data_fd,
                                                             UniqueFd meta_fd, bool read_only,
                                                             std::unique_ptr<BlockBackend> parent);
    ~VhdDynamicBackend() override;

    uint64_t size() const override { return m_size; }
    bool read_only() const override { return m_read_only; }
    std::string describe() const override;

    Status read(uint64_t offset, std::span<const iovec> iov) override;
    Status write(uint64_t offset, std::span<const iovec> iov) override;
    Status flush() override;
    Status discard(uint64_t offset, uint64_t length) override;
    Status write_zeroes(uint64_t offset, uint64_t length) override;
    void submit(IoContext& ctx, IoRequest& req) override;
    Result<Extent> block_status(uint64_t offset, uint64_t length) override;

    bool differencing() const { return m_differencing; }
    uint32_t block_size() const { return m_block_size; }
    BlockBackend* parent() const { return m_parent.get(); }

    // Where each part of a request goes.
    enum class SegKind : uint8_t { kFile, kParent, kZero };
    struct Segment {
        SegKind kind = SegKind::kZero;
        uint64_t pos = 0;  // offset within the request
        uint64_t len = 0;
        uint64_t src = 0;       // file offset (kFile) or virtual offset (kParent)
        bool set_bits = false;  // writes: mark these sectors present once written
        uint32_t block = 0;
        uint32_t first_sector = 0;
        uint32_t sectors = 0;
    };

  private:
    enum BlockState : uint8_t { kUnloaded = 0, kFull = 1, kPartial = 2 };
    struct Fanout;
    struct FlushOp;
    struct MetaWrite {
        bool is_bat = false;
        uint32_t index = 0;  // BAT chunk (128 entries) or block number
        uint64_t offset = 0;
        std::vector<uint8_t> data;
    };
    struct MetaBatch {
        uint64_t seq = 0;
        std::vector<MetaWrite> writes;
    };

    VhdDynamicBackend() = default;
    Status check_range(uint64_t offset, uint64_t length, const char* what, bool modifies) const;
    uint64_t block_data_offset(uint32_t entry) const { return uint64_t{entry} * 512 + m_bitmap_size; }
    uint32_t sectors_in_block(uint32_t block) const;
    Result<uint8_t> ensure_state(uint32_t block, uint32_t entry);
    Result<uint32_t> allocate(uint32_t block);
    Status plan_read(uint64_t offset, uint64_t length, std::vector<Segment>& out);
    // Sets *rmw when a sub-sector edge needs the old contents of a sector (write_slow handles it).
    Status plan_write(uint64_t offset, uint64_t length, std::vector<Segment>& out, bool* rmw);
    void add_unallocated(uint64_t pos, uint64_t len, uint64_t virt, std::vector<Segment>& out) const;
    Status run_read(std::span<const iovec> iov, const std::vector<Segment>& plan);
    Status write_slow(uint64_t offset, std::span<const iovec> iov);
    void set_bits(uint32_t block, uint32_t first, uint32_t count);
    Status zero_range(uint64_t offset, uint64_t length, bool discard_only);
    MetaBatch capture_metadata();
    Status write_metadata(const MetaBatch& batch);
    // Writes metadata at `offset`; callers hold m_mutex or run alone.
    Status write_meta(std::span<const uint8_t> data, uint64_t offset);
    // Moves the end footer back over reserved room no block took and trims the file (on close).
    Status release_reserved();
    void restore_dirty(const MetaBatch& batch);
    void submit_flush(IoContext& ctx, IoRequest& req);

    std::string m_path;
    bool m_read_only = true;
    bool m_differencing = false;
    UniqueFd m_fd;
    UniqueFd m_meta_fd;
    std::atomic<bool> m_direct{false};  // m_fd is O_DIRECT and takes 512-byte metadata writes
    uint64_t m_size = 0;
    uint32_t m_block_size = 0;
    uint32_t m_block_shift = 0;
    uint32_t m_bitmap_size = 0;
    uint32_t m_sectors_per_block = 0;
    uint32_t m_entries = 0;
    uint64_t m_bat_offset = 0;
    vhd::Footer m_footer{};
    std::unique_ptr<std::atomic<uint32_t>[]> m_bat;
    std::unique_ptr<std::atomic<uint8_t>[]> m_state;
    std::unique_ptr<BlockBackend> m_parent;

    std::mutex m_mutex;                                            // guards everything below
    std::unordered_map<uint32_t, std::vector<uint8_t>> m_bitmaps;  // blocks in state kPartial
    uint64_t m_footer_offset = 0;                                  // end footer
    uint64_t m_next_block = 0;   // end of the last block; up to m_footer_offset is reserved room
    uint32_t m_unallocated = 0;  // BAT entries still unallocated
    uint64_t m_file_size = 0;
    std::set<uint32_t> m_dirty_bat;      // BAT chunks of 128 entries
    std::set<uint32_t> m_dirty_bitmaps;  // block numbers
    std::vector<uint64_t> m_bat_written_seq;
    std::unordered_map<uint32_t, uint64_t> m_bitmap_written_seq;
    uint64_t m_commit_seq = 0;
    std::mutex m_rmw_mutex;  // serializes read-modify-write of partial sectors
};

}  // namespace vireo::disk
