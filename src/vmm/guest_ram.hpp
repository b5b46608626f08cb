// GuestRam: the VM's RAM as one memfd mapped MAP_SHARED (so a snapshot can write it out and a
// migration or restore can map the same file), laid out around the 32-bit MMIO hole, with
// optional huge pages. Pages are allocated by the host only when first touched.
#pragma once

#include <cstdint>
#include <vector>

#include "arch/x86/e820.hpp"
#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"

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
    GuestRam(GuestRam&& other) noexcept;
    GuestRam& operator=(GuestRam&&) = delete;
    GuestRam(const GuestRam&) = delete;
    ~GuestRam();

    const GuestMemory& memory() const { return m_memory; }
    const std::vector<Slot>& slots() const { return m_slots; }
    int fd() const { return m_fd.get(); }
    uint64_t size() const { return m_size; }
    bool hugepages() const { return m_hugepages; }
    // Bytes of guest RAM the host has allocated so far (pages the guest or the VMM touched).
    Result<uint64_t> resident_bytes() const;

  private:
    GuestRam() = default;

    UniqueFd m_fd;
    uint8_t* m_base = nullptr;
    uint64_t m_size = 0;
    bool m_hugepages = false;
    std::vector<Slot> m_slots;
    GuestMemory m_memory;
};

}  // namespace vireo::vmm
