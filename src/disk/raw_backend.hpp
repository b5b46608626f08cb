// RawBackend: a disk image that is a plain file (or block device), byte for byte.
#pragma once

#include <memory>
#include <string>

#include "base/unique_fd.hpp"
#include "disk/block_backend.hpp"

namespace vireo::disk {

struct OpenOptions {
    bool read_only = false;
    bool direct = false;  // O_DIRECT: bypass the host page cache (buffers must be aligned)
};

class RawBackend final : public BlockBackend {
  public:
    static Result<std::unique_ptr<RawBackend>> open(const std::string& path, const OpenOptions& options = {});
    // Creates (or truncates) a sparse raw image of `size` bytes.
    static Status create(const std::string& path, uint64_t size);

    uint64_t size() const override { return m_size; }
    bool read_only() const override { return m_read_only; }
    std::string describe() const override;
    int fd() const { return m_fd.get(); }

    Status read(uint64_t offset, std::span<const iovec> iov) override;
    Status write(uint64_t offset, std::span<const iovec> iov) override;
    Status flush() override;
    Status discard(uint64_t offset, uint64_t length) override;
    Status write_zeroes(uint64_t offset, uint64_t length) override;
    void submit(IoContext& ctx, IoRequest& req) override;
    // Holes of a sparse file read as zeros and are reported unallocated (SEEK_DATA/SEEK_HOLE).
    Result<Extent> block_status(uint64_t offset, uint64_t length) override;

  private:
    RawBackend(UniqueFd fd, std::string path, uint64_t size, bool read_only, bool block_device)
        : m_fd(std::move(fd)),
          m_path(std::move(path)),
          m_size(size),
          m_read_only(read_only),
          m_block_device(block_device) {}
    Status check_range(uint64_t offset, uint64_t length, const char* what, bool modifies) const;

    UniqueFd m_fd;
    std::string m_path;
    uint64_t m_size;
    bool m_read_only;
    bool m_block_device;
};

// Total byte count of an iovec array.
uint64_t iov_length(std::span<const iovec> iov);

}  // namespace vireo::disk
