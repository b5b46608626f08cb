// Retrying pread/pwrite wrappers.
#include "base/io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace vireo {

Result<size_t> pread_some(int fd, std::span<uint8_t> buf, uint64_t offset) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error(fmt::format("read at offset {}", offset + done));
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return done;
}

Status pread_exact(int fd, std::span<uint8_t> buf, uint64_t offset) {
    VIREO_ASSIGN_OR_RETURN(size_t n, pread_some(fd, buf, offset));
    if (n != buf.size()) {
        return make_error("short read at offset {}: wanted {} bytes, file ends after {}", offset, buf.size(),
                          n);
    }
    return {};
}

Status pwrite_exact(int fd, std::span<const uint8_t> buf, uint64_t offset) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = ::pwrite(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error(fmt::format("write at offset {}", offset + done));
        }
        if (n == 0) return make_error("write at offset {}: no progress", offset + done);
        done += static_cast<size_t>(n);
    }
    return {};
}

namespace {

template <typename Fn>
Status vectored_exact(std::span<const iovec> iov_in, uint64_t offset, const char* what, Fn&& fn) {
    std::vector<iovec> iov(iov_in.begin(), iov_in.end());
    size_t first = 0;
    while (first < iov.size()) {
        if (iov[first].iov_len == 0) {
            ++first;
            continue;
        }
        int count = static_cast<int>(std::min<size_t>(iov.size() - first, IOV_MAX));
        ssize_t n = fn(iov.data() + first, count, static_cast<off_t>(offset));
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error(fmt::format("{} at offset {}", what, offset));
        }
        if (n == 0) return make_error("{} at offset {}: end of file", what, offset);
        offset += static_cast<uint64_t>(n);
        size_t left = static_cast<size_t>(n);
        while (left > 0 && first < iov.size()) {
            size_t take = std::min(left, iov[first].iov_len);
            iov[first].iov_base = static_cast<uint8_t*>(iov[first].iov_base) + take;
            iov[first].iov_len -= take;
            left -= take;
            if (iov[first].iov_len == 0) ++first;
        }
    }
    return {};
}

}  // namespace

Status preadv_exact(int fd, std::span<const iovec> iov, uint64_t offset) {
    return vectored_exact(iov, offset, "read",
                          [fd](const iovec* v, int n, off_t off) { return ::preadv(fd, v, n, off); });
}

Status pwritev_exact(int fd, std::span<const iovec> iov, uint64_t offset) {
    return vectored_exact(iov, offset, "write",
                          [fd](const iovec* v, int n, off_t off) { return ::pwritev(fd, v, n, off); });
}

Status write_all(int fd, std::span<const uint8_t> buf) {
    size_t done = 0;
    while (done < buf.size()) {
        ssize_t n = ::write(fd, buf.data() + done, buf.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error("write");
        }
        done += static_cast<size_t>(n);
    }
    return {};
}

Result<UniqueFd> open_file(const std::string& path, int flags, mode_t mode) {
    int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
    if (fd < 0) return os_error(fmt::format("open {}", path));
    return UniqueFd(fd);
}

Result<uint64_t> file_size(int fd) {
    struct stat st {};
    if (::fstat(fd, &st) < 0) return os_error("fstat");
    return static_cast<uint64_t>(st.st_size);
}

}  // namespace vireo
