// Raw image backend.
#include "disk/raw_backend.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <vector>

#include "base/io.hpp"
#include "disk/io_context.hpp"

namespace vireo::disk {

uint64_t iov_length(std::span<const iovec> iov) {
    uint64_t total = 0;
    for (const auto& v : iov)
        total += v.iov_len;
    return total;
}

Result<std::unique_ptr<RawBackend>> RawBackend::open(const std::string& path, const OpenOptions& options) {
    int flags = options.read_only ? O_RDONLY : O_RDWR;
    if (options.direct) flags |= O_DIRECT;
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, flags));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return os_error(fmt::format("raw: stat {}", path));
    uint64_t size = 0;
    bool block_device = S_ISBLK(st.st_mode);
    if (block_device) {
        if (::ioctl(fd.get(), BLKGETSIZE64, &size) < 0) return os_error(fmt::format("raw: size of {}", path));
    } else if (S_ISREG(st.st_mode)) {
        size = static_cast<uint64_t>(st.st_size);
    } else {
        return make_error("raw: {} is neither a regular file nor a block device", path);
    }
    return std::unique_ptr<RawBackend>(
        new RawBackend(std::move(fd), path, size, options.read_only, block_device));
}

Status RawBackend::create(const std::string& path, uint64_t size) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDWR | O_CREAT | O_TRUNC, 0644));
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) < 0) {
        return os_error(fmt::format("raw: set size of {} to {}", path, size));
    }
    return {};
}

std::string RawBackend::describe() const {
    return fmt::format("raw {}", m_path);
}

Status RawBackend::check_range(uint64_t offset, uint64_t length, const char* what, bool modifies) const {
    if (offset > m_size || length > m_size - offset) {
        return make_error("raw {}: {} of {} bytes at offset {} is past the end of the disk ({} bytes)",
                          m_path, what, length, offset, m_size);
    }
    if (m_read_only && modifies) return Error(fmt::format("raw {}: disk is read-only", m_path), EROFS);
    return {};
}

Status RawBackend::read(uint64_t offset, std::span<const iovec> iov) {
    VIREO_TRY(check_range(offset, iov_length(iov), "read", false));
    VIREO_TRY_CTX(preadv_exact(m_fd.get(), iov, offset), "raw " + m_path);
    return {};
}

Status RawBackend::write(uint64_t offset, std::span<const iovec> iov) {
    VIREO_TRY(check_range(offset, iov_length(iov), "write", true));
    VIREO_TRY_CTX(pwritev_exact(m_fd.get(), iov, offset), "raw " + m_path);
    return {};
}

Status RawBackend::flush() {
    if (m_read_only) return {};
    if (::fdatasync(m_fd.get()) < 0) return os_error(fmt::format("raw {}: fdatasync", m_path));
    return {};
}

Status RawBackend::discard(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "discard", true));
    if (length == 0) return {};
    if (m_block_device) {
        uint64_t range[2] = {offset, length};
        if (::ioctl(m_fd.get(), BLKDISCARD, range) < 0 && errno != EOPNOTSUPP) {
            return os_error(fmt::format("raw {}: discard", m_path));
        }
        return {};
    }
    // Discard is advisory: a file system without hole punching just keeps the data.
    if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset),
                    static_cast<off_t>(length)) < 0 &&
        errno != EOPNOTSUPP) {
        return os_error(fmt::format("raw {}: punch hole at {}", m_path, offset));
    }
    return {};
}

Status RawBackend::write_zeroes(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "write-zeroes", true));
    if (length == 0) return {};
    if (m_block_device) {
        uint64_t range[2] = {offset, length};
        if (::ioctl(m_fd.get(), BLKZEROOUT, range) == 0) return {};
    } else {
        auto off = static_cast<off_t>(offset);
        auto len = static_cast<off_t>(length);
        if (::fallocate(m_fd.get(), FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, off, len) == 0) return {};
        if (::fallocate(m_fd.get(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len) == 0) return {};
    }
    // No help from the file system: write zeroes.
    static const std::vector<uint8_t> zeroes(1 << 20);
    while (length > 0) {
        size_t chunk = static_cast<size_t>(std::min<uint64_t>(length, zeroes.size()));
        VIREO_TRY_CTX(pwrite_exact(m_fd.get(), {zeroes.data(), chunk}, offset), "raw " + m_path);
        offset += chunk;
        length -= chunk;
    }
    return {};
}

Result<Extent> RawBackend::block_status(uint64_t offset, uint64_t length) {
    if (offset >= m_size)
        return make_error("raw {}: block status at {} is past the end of the disk", m_path, offset);
    Extent e;
    e.offset = offset;
    e.length = std::min(length, m_size - offset);
    e.file_offset = offset;
    if (m_block_device) return e;
    auto off = static_cast<off_t>(offset);
    off_t data = ::lseek(m_fd.get(), off, SEEK_DATA);
    if (data < 0) {
        if (errno == ENXIO) {  // only a hole up to the end of the file
            e.allocated = false;
            e.zero = true;
            e.depth = -1;
            return e;
        }
        return e;  // no SEEK_DATA support: everything is data
    }
    if (data > off) {
        e.allocated = false;
        e.zero = true;
        e.depth = -1;
        e.length = std::min<uint64_t>(e.length, static_cast<uint64_t>(data) - offset);
        return e;
    }
    off_t hole = ::lseek(m_fd.get(), off, SEEK_HOLE);
    if (hole > off) e.length = std::min<uint64_t>(e.length, static_cast<uint64_t>(hole) - offset);
    return e;
}

void RawBackend::submit(IoContext& ctx, IoRequest& req) {
    IoRequest* r = &req;
    auto fail = [&ctx, r](Error e) {
        ctx.defer([r, e = std::move(e)]() mutable { r->complete(*r, std::move(e)); });
    };
    switch (req.op) {
        case IoOp::kRead:
        case IoOp::kWrite: {
            const bool is_read = req.op == IoOp::kRead;
            uint64_t length = iov_length(req.iov);
            if (auto s = check_range(req.offset, length, is_read ? "read" : "write", !is_read); !s.ok()) {
                fail(std::move(s).error());
                return;
            }
            // Two pointers fit std::function's inline storage: no allocation per request.
            auto done = [this, r](int64_t result) {
                const bool read = r->op == IoOp::kRead;
                const uint64_t expected = iov_length(r->iov);
                if (result < 0) {
                    r->complete(*r, os_error(fmt::format("raw {}: {} at offset {}", m_path,
                                                         read ? "read" : "write", r->offset),
                                             static_cast<int>(-result)));
                } else if (static_cast<uint64_t>(result) != expected) {
                    r->complete(*r, make_error("raw {}: short {} at offset {} ({} of {} bytes)", m_path,
                                               read ? "read" : "write", r->offset, result, expected));
                } else {
                    r->complete(*r, Status{});
                }
            };
            if (is_read) {
                ctx.readv(m_fd.get(), req.iov, req.offset, std::move(done));
            } else {
                ctx.writev(m_fd.get(), req.iov, req.offset, std::move(done));
            }
            return;
        }
        case IoOp::kFlush:
            if (m_read_only) {
                ctx.defer([r] { r->complete(*r, Status{}); });
                return;
            }
            ctx.fsync(m_fd.get(), true, [this, r](int64_t result) {
                r->complete(*r, result < 0 ? Status(os_error(fmt::format("raw {}: fdatasync", m_path),
                                                             static_cast<int>(-result)))
                                           : Status{});
            });
            return;
        case IoOp::kDiscard:
        case IoOp::kWriteZeroes: {
            // Rare and cheap to issue: run synchronously, complete from the context.
            Status s = req.op == IoOp::kDiscard ? discard(req.offset, req.length)
                                                : write_zeroes(req.offset, req.length);
            ctx.defer([r, s = std::move(s)]() mutable { r->complete(*r, std::move(s)); });
            return;
        }
    }
}

}  // namespace vireo::disk
