// Fixed VHD backend: the raw backend limited to the data area before the footer.
#include "disk/vhd_fixed_backend.hpp"

#include "disk/io_context.hpp"

namespace vireo::disk {

Status VhdFixedBackend::check_range(uint64_t offset, uint64_t length, const char* what) const {
    if (offset > m_size || length > m_size - offset) {
        return make_error("vhd {}: {} of {} bytes at offset {} is past the end of the disk ({} bytes)",
                          m_path, what, length, offset, m_size);
    }
    return {};
}

Status VhdFixedBackend::read(uint64_t offset, std::span<const iovec> iov) {
    VIREO_TRY(check_range(offset, iov_length(iov), "read"));
    return m_file->read(offset, iov);
}

Status VhdFixedBackend::write(uint64_t offset, std::span<const iovec> iov) {
    VIREO_TRY(check_range(offset, iov_length(iov), "write"));
    return m_file->write(offset, iov);
}

Status VhdFixedBackend::discard(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "discard"));
    return m_file->discard(offset, length);
}

Status VhdFixedBackend::write_zeroes(uint64_t offset, uint64_t length) {
    VIREO_TRY(check_range(offset, length, "write-zeroes"));
    return m_file->write_zeroes(offset, length);
}

void VhdFixedBackend::submit(IoContext& ctx, IoRequest& req) {
    uint64_t length = (req.op == IoOp::kRead || req.op == IoOp::kWrite) ? iov_length(req.iov) : req.length;
    if (req.op != IoOp::kFlush) {
        if (auto s = check_range(req.offset, length, "request"); !s.ok()) {
            IoRequest* r = &req;
            ctx.defer([r, e = std::move(s).error()]() mutable { r->complete(*r, std::move(e)); });
            return;
        }
    }
    m_file->submit(ctx, req);  // the footer lies past m_size, so the raw file's own checks suffice
}

Result<Extent> VhdFixedBackend::block_status(uint64_t offset, uint64_t length) {
    if (offset >= m_size)
        return make_error("vhd {}: block status at {} is past the end of the disk", m_path, offset);
    // Every byte of a fixed disk belongs to the image (as qemu-img reports it too).
    Extent e;
    e.offset = offset;
    e.length = std::min(length, m_size - offset);
    e.file_offset = offset;
    return e;
}

}  // namespace vireo::disk
