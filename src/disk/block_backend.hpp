// BlockBackend: a virtual disk as the VMM, the NBD server and `vireo img` see it, whatever the
// format underneath (raw, VHD fixed/dynamic/differencing).
//
// Thread-safety contract:
//  - The synchronous calls (read, write, flush, discard, write_zeroes) may be made from several
//    threads at once; a backend serializes its own metadata updates internally.
//  - The asynchronous path (submit) belongs to one thread: the one that drives the IoContext.
//    Every submit() for a given IoContext happens on that thread, and every completion callback
//    runs there too. Mixing sync and async calls on one backend is allowed; the backend keeps
//    its metadata consistent across both.
//  - Ordering: requests in flight at once may complete in any order. A flush completes after
//    every write that completed before the flush was submitted is durable.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>

#include "base/result.hpp"

namespace vireo::disk {

class IoContext;

enum class IoOp : uint8_t { kRead, kWrite, kFlush, kDiscard, kWriteZeroes };

// One asynchronous request. The submitter owns it and keeps it, and the buffers its iovecs
// point at, alive until `complete` has run.
struct IoRequest {
    IoOp op = IoOp::kRead;
    uint64_t offset = 0;         // bytes
    uint64_t length = 0;         // bytes; for reads and writes, the total of iov
    std::span<const iovec> iov;  // reads and writes only
    // Called exactly once, on the IoContext's thread, never from inside submit() itself.
    std::function<void(IoRequest&, Status)> complete;
};

// What backs a range of the virtual disk: for `vireo img map`, sparse-aware copies and NBD block
// status. Every byte of [offset, offset + length) has the same status.
struct Extent {
    uint64_t offset = 0;
    uint64_t length = 0;
    bool allocated = true;  // stored in this image or a parent; false: never written, reads as zeros
    bool zero = false;      // known to read as zeros (holes, unallocated blocks)
    int depth = 0;          // 0: this image, 1: its parent, ...; -1 when not allocated anywhere
    std::optional<uint64_t> file_offset;  // where the range starts in the file at `depth`
};

class BlockBackend {
  public:
    virtual ~BlockBackend() = default;

    virtual uint64_t size() const = 0;  // virtual disk size in bytes
    virtual uint32_t logical_block_size() const { return 512; }
    virtual bool read_only() const = 0;
    virtual std::string describe() const = 0;  // "vhd dynamic /path/disk.vhd"

    // Ranges past size() are errors naming the offset. Writes to a read-only backend fail.
    virtual Status read(uint64_t offset, std::span<const iovec> iov) = 0;
    virtual Status write(uint64_t offset, std::span<const iovec> iov) = 0;
    virtual Status flush() = 0;
    virtual Status discard(uint64_t offset, uint64_t length) = 0;
    virtual Status write_zeroes(uint64_t offset, uint64_t length) = 0;

    // Starts `req` and returns at once. See the contract above.
    virtual void submit(IoContext& ctx, IoRequest& req) = 0;

    // The status of the range starting at `offset`: the returned extent starts there and covers
    // between 1 and `length` bytes (fewer when the status changes). Synchronous; thread-safe.
    virtual Result<Extent> block_status(uint64_t offset, uint64_t length) {
        if (offset >= size()) return Error("block status past the end of the disk");
        Extent e;
        e.offset = offset;
        e.length = std::min(length, size() - offset);
        e.file_offset = offset;
        return e;
    }
};

}  // namespace vireo::disk
