// Guest RAM from a memfd.
#include "vmm/guest_ram.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <utility>

namespace vireo::vmm {

namespace {
constexpr uint64_t kHugePage = 2 << 20;
}

Result<GuestRam> GuestRam::create(const Options& options) {
    uint64_t align = options.hugepages ? kHugePage : 4096;
    if (options.size == 0 || options.size % align != 0) {
        return make_error("guest RAM: {} bytes is not a positive multiple of {} KiB", options.size,
                          align >> 10);
    }
    unsigned flags = MFD_CLOEXEC;
    if (options.hugepages) flags |= MFD_HUGETLB;  // MFD_HUGE_2MB is the default size
    int fd = ::memfd_create("vireo-guest-ram", flags);
    if (fd < 0) {
        if (options.hugepages && (errno == EINVAL || errno == ENOENT)) {
            return os_error("guest RAM: memfd_create with huge pages (is hugetlbfs available?)");
        }
        return os_error("guest RAM: memfd_create");
    }
    GuestRam ram;
    ram.m_fd.reset(fd);
    ram.m_size = options.size;
    ram.m_hugepages = options.hugepages;
    if (::ftruncate(fd, static_cast<off_t>(options.size)) < 0)
        return os_error(fmt::format("guest RAM: sizing the memory file to {} MiB", options.size >> 20));
    // Without MAP_NORESERVE a huge-page mapping reserves its pages now, so a host without
    // enough of them fails here with a clear error instead of SIGBUS in the guest later.
    int map_flags = MAP_SHARED | (options.hugepages ? 0 : MAP_NORESERVE);
    void* base = ::mmap(nullptr, options.size, PROT_READ | PROT_WRITE, map_flags, fd, 0);
    if (base == MAP_FAILED) {
        int err = errno;
        if (options.hugepages) {
            return os_error(fmt::format("guest RAM: cannot reserve {} huge pages of 2 MiB (raise "
                                        "/proc/sys/vm/nr_hugepages or drop --hugepages)",
                                        options.size / kHugePage),
                            err);
        }
        return os_error(fmt::format("guest RAM: mapping {} MiB", options.size >> 20), err);
    }
    ram.m_base = static_cast<uint8_t*>(base);
    // Guest memory must not end up in a core dump of the VMM, nor be shared with a fork.
    ::madvise(base, options.size, MADV_DONTDUMP);
    ::madvise(base, options.size, MADV_DONTFORK);

    std::vector<GuestRegion> regions;
    uint64_t offset = 0;
    for (const arch::x86::RamRange& r : arch::x86::ram_ranges(options.size)) {
        ram.m_slots.push_back({r.gpa, r.size, offset, ram.m_base + offset});
        regions.push_back({r.gpa, r.size, ram.m_base + offset});
        offset += r.size;
    }
    ram.m_memory = GuestMemory(std::move(regions));
    return ram;
}

GuestRam::GuestRam(GuestRam&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_base(std::exchange(other.m_base, nullptr)),
      m_size(std::exchange(other.m_size, 0)),
      m_hugepages(other.m_hugepages),
      m_slots(std::move(other.m_slots)),
      m_memory(std::move(other.m_memory)) {}

GuestRam::~GuestRam() {
    if (m_base != nullptr) ::munmap(m_base, m_size);
}

Result<uint64_t> GuestRam::resident_bytes() const {
    const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    const uint64_t chunk_pages = 4096;
    std::vector<unsigned char> vec(chunk_pages);
    uint64_t resident = 0;
    for (uint64_t off = 0; off < m_size; off += chunk_pages * page) {
        uint64_t len = std::min(chunk_pages * page, m_size - off);
        if (::mincore(m_base + off, len, vec.data()) < 0) return os_error("guest RAM: mincore");
        for (uint64_t i = 0; i < (len + page - 1) / page; ++i)
            resident += (vec[i] & 1) ? page : 0;
    }
    return resident;
}

}  // namespace vireo::vmm
