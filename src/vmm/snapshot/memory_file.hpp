// Guest memory in a snapshot: a sparse file holding only the pages the guest touched, and its
// lazy copy-on-write mapping on restore.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo::vmm::snapshot {

inline constexpr uint64_t kPageSize = 4096;

// Where guest memory lives in this process. The file offsets of the memory file are the
// offsets into this mapping.
struct MemorySource {
    const uint8_t* host = nullptr;  // start of the mapping
    uint64_t size = 0;              // bytes, a multiple of kPageSize
    // The file behind the mapping: the VM's memfd (shared mapping), or the memory file of the
    // snapshot this VM was restored from (private mapping). -1 for anonymous memory.
    int fd = -1;
    // A private mapping: pages the guest wrote are anonymous copies, no longer in `fd`.
    bool private_mapping = false;
};

struct MemoryWriteStats {
    uint64_t data_bytes = 0;     // bytes of pages written
    uint64_t touched_bytes = 0;  // bytes of pages ever touched (written + skipped zero pages)
    uint64_t zero_pages = 0;     // touched pages that held only zeros (left as holes)
};

// Writes the touched pages of `source` into a new file at `path` (which must not exist) of
// source.size bytes; untouched and all-zero pages stay holes. Touched pages are found without
// reading untouched memory: SEEK_DATA/SEEK_HOLE on the backing file, plus /proc/self/pagemap
// for anonymous pages (private or anonymous mappings). On error the file is removed. The data
// is not synced here: the caller syncs once the VM runs again.
Result<MemoryWriteStats> write_memory_file(const std::string& path, const MemorySource& source);

// A snapshot memory file mapped copy-on-write: pages are read from the file on first touch,
// guest writes go to private copies, and the file itself is never modified.
class MappedMemoryFile {
  public:
    // Maps the whole file, which must be exactly `expected_size` bytes.
    static Result<std::unique_ptr<MappedMemoryFile>> map(const std::string& path, uint64_t expected_size);
    ~MappedMemoryFile();
    MappedMemoryFile(const MappedMemoryFile&) = delete;
    MappedMemoryFile& operator=(const MappedMemoryFile&) = delete;

    uint8_t* data() const { return m_data; }
    uint64_t size() const { return m_size; }
    int fd() const { return m_fd.get(); }
    // Describes this mapping as the source of the next snapshot.
    MemorySource source() const { return {m_data, m_size, m_fd.get(), true}; }

  private:
    MappedMemoryFile(UniqueFd fd, uint8_t* data, uint64_t size)
        : m_fd(std::move(fd)), m_data(data), m_size(size) {}
    UniqueFd m_fd;
    uint8_t* m_data;
    uint64_t m_size;
};

}  // namespace vireo::vmm::snapshot
