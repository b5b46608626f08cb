// GuestRam: the VM's RAM as one memfd mapped MAP_SHARED (so a snapshot can write it out and a
// migration or restore can map the same file), laid out around the 32-bit MMIO hole, with
// optional huge pages. Pages are allocated by the host only when first touched.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "arch/x86/e820.hpp"
#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "vmm/snapshot/memory_file.hpp"

namespace vireo::vmm {

class GuestRam {
  public:
    struct Options {
        uint64_t size = 0;       // bytes; a multiple of 4 KiB (2 MiB with huge pages)
        bool hugepages = false;  // back with hugetlbfs pages (needs /proc/sys/vm/nr_hugepages)
    };

    // One region per arch::x86::ram_ranges() entry; the memfd holds them back to back.
    struct Slot {
        uint64_t gpa = 0;
        uint64_t size = 0;
        uint64_t file_offset = 0;
        uint8_t* host = nullptr;
    };

    static Result<GuestRam> create(const Options& options);
    // RAM restored from a snapshot's memory file, mapped copy-on-write: pages load from the
    // file on first touch, guest writes go to private copies, the file is never written.
    static Result<GuestRam> map_snapshot(const std::string& path, uint64_t size);
    GuestRam(GuestRam&& other) noexcept;
    GuestRam& operator=(GuestRam&&) = delete;
    GuestRam(const GuestRam&) = delete;
    ~GuestRam();

    const GuestMemory& memory() const { return m_memory; }
    const std::vector<Slot>& slots() const { return m_slots; }
    // The memfd, or the snapshot memory file of a restored VM.
    int fd() const { return m_snapshot ? m_snapshot->fd() : m_fd.get(); }
    // Where the guest's pages are, for writing a snapshot of them.
    snapshot::MemorySource snapshot_source() const {
        return m_snapshot ? m_snapshot->source() : snapshot::MemorySource{m_base, m_size, m_fd.get(), false};
    }
    uint64_t size() const { return m_size; }
    bool hugepages() const { return m_hugepages; }
    // Bytes of guest RAM the host has allocated so far (pages the guest or the VMM touched).
    Result<uint64_t> resident_bytes() const;

  private:
    GuestRam() = default;
    void build_slots();

    UniqueFd m_fd;
    std::unique_ptr<snapshot::MappedMemoryFile> m_snapshot;  // owns the mapping when restored
    uint8_t* m_base = nullptr;
    uint64_t m_size = 0;
    bool m_hugepages = false;
    std::vector<Slot> m_slots;
    GuestMemory m_memory;
};

}  // namespace vireo::vmm
