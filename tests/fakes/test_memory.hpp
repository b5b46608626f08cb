// TestMemory: guest RAM for tests, in ordinary heap memory, laid out like a VM's (one region
// from 0, or below the hole and above 4 GiB with the same split as the VMM).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "base/guest_memory.hpp"

namespace vireo::testing {

class TestMemory {
  public:
    // One region [0, size).
    explicit TestMemory(uint64_t size) : m_bytes(new uint8_t[size]()), m_size(size) {
        m_memory = GuestMemory({GuestRegion{0, size, m_bytes.get()}});
    }
    const GuestMemory& memory() const { return m_memory; }
    uint8_t* host(uint64_t gpa) { return m_bytes.get() + gpa; }
    uint64_t size() const { return m_size; }

  private:
    std::unique_ptr<uint8_t[]> m_bytes;
    uint64_t m_size;
    GuestMemory m_memory;
};

}  // namespace vireo::testing
