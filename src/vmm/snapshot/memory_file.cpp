// Sparse memory files: finding touched pages (SEEK_DATA/SEEK_HOLE, pagemap), writing them,
// and mapping them back copy-on-write.
#include "vmm/snapshot/memory_file.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "base/io.hpp"

namespace vireo::vmm::snapshot {
namespace {

// One bit per page.
class PageSet {
  public:
    explicit PageSet(uint64_t pages) : m_bits((pages + 63) / 64), m_pages(pages) {}
    void set_range(uint64_t first, uint64_t count) {
        for (uint64_t p = first; p < first + count && p < m_pages; ++p)
            m_bits[p / 64] |= uint64_t{1} << (p % 64);
    }
    void set(uint64_t page) { m_bits[page / 64] |= uint64_t{1} << (page % 64); }
    bool test(uint64_t page) const { return (m_bits[page / 64] >> (page % 64)) & 1; }
    uint64_t pages() const { return m_pages; }

  private:
    std::vector<uint64_t> m_bits;
    uint64_t m_pages;
};

// Marks the pages of a mapping that are resident (mincore): for hugetlbfs, which has no
// SEEK_DATA, and where reading an untouched page would allocate a huge page to find it empty.
Status mark_resident(const uint8_t* host, uint64_t size, PageSet& pages) {
    constexpr uint64_t kChunk = 64 * 1024;  // pages per mincore call
    std::vector<unsigned char> vec(kChunk);
    for (uint64_t first = 0; first < pages.pages(); first += kChunk) {
        uint64_t n = std::min(kChunk, pages.pages() - first);
        if (::mincore(const_cast<uint8_t*>(host) + first * kPageSize, n * kPageSize, vec.data()) != 0)
            return os_error("memory: mincore");
        for (uint64_t i = 0; i < n; ++i) {
            if (vec[i] & 1) pages.set(first + i);
        }
    }
    (void)size;
    return {};
}

// Marks the pages of `fd` that hold data (allocated in the file), from SEEK_DATA/SEEK_HOLE.
Status mark_file_data(int fd, uint64_t size, PageSet& pages) {
    off_t pos = 0;
    while (static_cast<uint64_t>(pos) < size) {
        off_t data = ::lseek(fd, pos, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO) return {};  // no data past pos
            if (errno == EINVAL) {          // no SEEK_DATA here (hugetlbfs): everything counts
                pages.set_range(0, pages.pages());
                return {};
            }
            return os_error("memory: lseek(SEEK_DATA)");
        }
        off_t hole = ::lseek(fd, data, SEEK_HOLE);
        if (hole < 0) return os_error("memory: lseek(SEEK_HOLE)");
        uint64_t end = std::min<uint64_t>(static_cast<uint64_t>(hole), size);
        uint64_t first = static_cast<uint64_t>(data) / kPageSize;
        uint64_t last = (end + kPageSize - 1) / kPageSize;
        pages.set_range(first, last - first);
        pos = hole;
    }
    return {};
}

// Marks the anonymous pages of [host, host+size) that are present or swapped out, from
// /proc/self/pagemap (Documentation/admin-guide/mm/pagemap.rst): bit 63 present, bit 62
// swapped, bit 61 file-backed or shared-anonymous. PFNs are not needed, so no privilege is.
Status mark_anonymous_pages(const uint8_t* host, uint64_t size, PageSet& pages) {
    UniqueFd fd(::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC));
    if (!fd) return os_error("memory: open /proc/self/pagemap");
    constexpr uint64_t kBatch = 4096;
    std::vector<uint64_t> entries(kBatch);
    uint64_t first_vpage = reinterpret_cast<uintptr_t>(host) / kPageSize;
    uint64_t total = size / kPageSize;
    for (uint64_t done = 0; done < total; done += kBatch) {
        uint64_t n = std::min(kBatch, total - done);
        std::span<uint8_t> buf(reinterpret_cast<uint8_t*>(entries.data()), n * sizeof(uint64_t));
        VIREO_TRY_CTX(pread_exact(fd.get(), buf, (first_vpage + done) * sizeof(uint64_t)),
                      "memory: /proc/self/pagemap");
        for (uint64_t i = 0; i < n; ++i) {
            uint64_t e = entries[i];
            bool present = e >> 63 & 1, swapped = e >> 62 & 1, file = e >> 61 & 1;
            if ((present && !file) || swapped) pages.set(done + i);
        }
    }
    return {};
}

bool page_is_zero(const uint8_t* page) {
    const auto* words = reinterpret_cast<const uint64_t*>(page);
    uint64_t acc = 0;
    for (size_t i = 0; i < kPageSize / sizeof(uint64_t); ++i)
        acc |= words[i];
    return acc == 0;
}

}  // namespace

Result<MemoryWriteStats> write_memory_file(const std::string& path, const MemorySource& source) {
    if (source.size % kPageSize != 0)
        return make_error("memory: size 0x{:x} is not a whole number of pages", source.size);
    PageSet pages(source.size / kPageSize);
    struct statfs fs {};
    if (source.fd >= 0 && ::fstatfs(source.fd, &fs) == 0 &&
        static_cast<uint64_t>(fs.f_type) == HUGETLBFS_MAGIC) {
        VIREO_TRY(mark_resident(source.host, source.size, pages));
    } else if (source.fd >= 0) {
        VIREO_TRY(mark_file_data(source.fd, source.size, pages));
    }
    if (source.fd < 0 || source.private_mapping)
        VIREO_TRY(mark_anonymous_pages(source.host, source.size, pages));

    VIREO_ASSIGN_OR_RETURN(UniqueFd out, open_file(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    auto fail = [&path](Error e) {
        ::unlink(path.c_str());
        return std::move(e).context(fmt::format("memory file {}", path));
    };
    // The full size first, so everything not written below is a hole.
    if (::ftruncate(out.get(), static_cast<off_t>(source.size)) != 0) return fail(os_error("ftruncate"));

    MemoryWriteStats stats;
    uint64_t run_start = 0, run_len = 0;  // pages to write in one go
    auto flush_run = [&]() -> Status {
        if (run_len == 0) return {};
        uint64_t off = run_start * kPageSize, len = run_len * kPageSize;
        VIREO_TRY(pwrite_exact(out.get(), {source.host + off, len}, off));
        stats.data_bytes += len;
        run_len = 0;
        return {};
    };
    for (uint64_t p = 0; p < pages.pages(); ++p) {
        bool write = false;
        if (pages.test(p)) {
            stats.touched_bytes += kPageSize;
            if (page_is_zero(source.host + p * kPageSize))
                ++stats.zero_pages;
            else
                write = true;
        }
        if (write) {
            if (run_len == 0) run_start = p;
            ++run_len;
            constexpr uint64_t kMaxRun = 256;  // 1 MiB per write
            if (run_len == kMaxRun) {
                if (auto s = flush_run(); !s.ok()) return fail(s.error());
            }
        } else if (auto s = flush_run(); !s.ok()) {
            return fail(s.error());
        }
    }
    if (auto s = flush_run(); !s.ok()) return fail(s.error());
    return stats;
}

Result<std::unique_ptr<MappedMemoryFile>> MappedMemoryFile::map(const std::string& path,
                                                                uint64_t expected_size) {
    // Read-only: the snapshot stays intact however the restored guest writes to its memory.
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY | O_CLOEXEC));
    VIREO_ASSIGN_OR_RETURN(uint64_t size, file_size(fd.get()));
    if (size != expected_size)
        return make_error("memory file {}: {} bytes, the manifest says {}", path, size, expected_size);
    if (size == 0 || size % kPageSize != 0)
        return make_error("memory file {}: size {} is not whole pages", path, size);
    // MAP_NORESERVE: a 1 GiB guest that touched 32 MiB does not need 1 GiB of commit charge.
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd.get(), 0);
    if (p == MAP_FAILED) return os_error(fmt::format("memory file {}: mmap", path));
    return std::unique_ptr<MappedMemoryFile>(
        new MappedMemoryFile(std::move(fd), static_cast<uint8_t*>(p), size));
}

MappedMemoryFile::~MappedMemoryFile() {
    if (m_data != nullptr) ::munmap(m_data, m_size);
}

}  // namespace vireo::vmm::snapshot
