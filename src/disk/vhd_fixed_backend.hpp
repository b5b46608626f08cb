// VhdFixedBackend: a fixed VHD, the disk's bytes in order followed by a 512-byte footer.
#pragma once

#include <memory>
#include <string>

#include "base/unique_fd.hpp"
#include "disk/block_backend.hpp"
#include "disk/raw_backend.hpp"

namespace vireo::disk {

class VhdFixedBackend final : public BlockBackend {
  public:
    // `size` is the virtual size the opener decided (it never covers the footer). `lock` holds
    // the shared lock that keeps maintenance operations away while the disk is open.
    VhdFixedBackend(std::unique_ptr<RawBackend> file, std::string path, uint64_t size, UniqueFd lock = {})
        : m_file(std::move(file)), m_path(std::move(path)), m_size(size), m_lock(std::move(lock)) {}

    uint64_t size() const override { return m_size; }
    bool read_only() const override { return m_file->read_only(); }
    std::string describe() const override { return "vhd fixed " + m_path; }

    Status read(uint64_t offset, std::span<const iovec> iov) override;
    Status write(uint64_t offset, std::span<const iovec> iov) override;
    Status flush() override { return m_file->flush(); }
    Status discard(uint64_t offset, uint64_t length) override;
    Status write_zeroes(uint64_t offset, uint64_t length) override;
    void submit(IoContext& ctx, IoRequest& req) override;
    Result<Extent> block_status(uint64_t offset, uint64_t length) override;

  private:
    Status check_range(uint64_t offset, uint64_t length, const char* what) const;

    std::unique_ptr<RawBackend> m_file;
    std::string m_path;
    uint64_t m_size;
    UniqueFd m_lock;
};

}  // namespace vireo::disk
