// FakeGuestMemory: a byte vector posing as guest RAM (one region at gpa 0), with a bump
// allocator for the test driver's rings and buffers.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/guest_memory.hpp"

namespace vireo::testing {

class FakeGuestMemory {
  public:
    explicit FakeGuestMemory(size_t size, uint64_t base = 0)
        : m_bytes(size, 0), m_base(base), m_next(base + 0x1000) {
        m_memory = GuestMemory({GuestRegion{base, size, m_bytes.data()}});
    }
    FakeGuestMemory(const FakeGuestMemory&) = delete;
    FakeGuestMemory& operator=(const FakeGuestMemory&) = delete;

    const GuestMemory& memory() const { return m_memory; }
    uint64_t base() const { return m_base; }
    uint64_t size() const { return m_bytes.size(); }
    uint8_t* host(uint64_t gpa) {
        assert(gpa >= m_base && gpa - m_base <= m_bytes.size());
        return m_bytes.data() + (gpa - m_base);
    }

    // Zeroed, aligned guest memory; asserts if the fake RAM runs out (a test bug).
    uint64_t alloc(uint64_t size, uint64_t align = 16) {
        uint64_t at = (m_next + align - 1) & ~(align - 1);
        assert(at + size <= m_base + m_bytes.size());
        m_next = at + size;
        std::memset(host(at), 0, size);
        return at;
    }

    template <typename T>
    T read(uint64_t gpa) {
        T v;
        std::memcpy(&v, host(gpa), sizeof v);
        return v;
    }
    template <typename T>
    void write(uint64_t gpa, const T& v) {
        std::memcpy(host(gpa), &v, sizeof v);
    }
    void fill(uint64_t gpa, uint8_t byte, size_t len) { std::memset(host(gpa), byte, len); }

  private:
    std::vector<uint8_t> m_bytes;
    uint64_t m_base;
    uint64_t m_next;
    GuestMemory m_memory;
};

}  // namespace vireo::testing
