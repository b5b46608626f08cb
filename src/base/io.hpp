// File I/O helpers that retry short transfers and EINTR and return Result.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo {

// Reads exactly buf.size() bytes at offset; a short file is an error naming the offset.
Status pread_exact(int fd, std::span<uint8_t> buf, uint64_t offset);
// Reads up to buf.size() bytes; returns how many were read before end of file.
Result<size_t> pread_some(int fd, std::span<uint8_t> buf, uint64_t offset);
Status pwrite_exact(int fd, std::span<const uint8_t> buf, uint64_t offset);
Status preadv_exact(int fd, std::span<const iovec> iov, uint64_t offset);
Status pwritev_exact(int fd, std::span<const iovec> iov, uint64_t offset);
Status write_all(int fd, std::span<const uint8_t> buf);

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode = 0644);
Result<uint64_t> file_size(int fd);

}  // namespace vireo
