// Read-only file mappings.
#include "vmm/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <utility>

#include "base/unique_fd.hpp"

namespace vireo::vmm {

Result<MappedFile> MappedFile::open(const std::string& path, std::string_view what) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return os_error(fmt::format("{} {}", what, path));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return os_error(fmt::format("{} {}", what, path));
    if (!S_ISREG(st.st_mode)) return make_error("{} {}: not a regular file", what, path);
    if (st.st_size == 0) return make_error("{} {}: the file is empty", what, path);
    void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) return os_error(fmt::format("{} {}: mmap", what, path));
    // Read once, front to back.
    ::madvise(p, static_cast<size_t>(st.st_size), MADV_SEQUENTIAL);
    return MappedFile(static_cast<const uint8_t*>(p), static_cast<size_t>(st.st_size));
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)), m_size(std::exchange(other.m_size, 0)) {}

MappedFile::~MappedFile() {
    if (m_data != nullptr) ::munmap(const_cast<uint8_t*>(m_data), m_size);
}

}  // namespace vireo::vmm
