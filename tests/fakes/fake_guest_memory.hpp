// FakeGuestMemory: page-aligned host memory posing as guest RAM (one region), with a bump
// allocator for the test driver's rings and buffers. Page alignment keeps 4 KiB guest buffers
// usable for O_DIRECT I/O, as real guest RAM is.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "base/guest_memory.hpp"

namespace vireo::testing {

class FakeGuestMemory {
  public:
    explicit FakeGuestMemory(size_t size, uint64_t base = 0)
        : m_bytes(static_cast<uint8_t*>(std::aligned_alloc(4096, (size + 4095) & ~size_t{4095}))),
          m_size(size),
          m_base(base),
          m_next(base + 0x1000) {
        assert(m_bytes);
        std::memset(m_bytes.get(), 0, size);
        m_memory = GuestMemory({GuestRegion{base, size, m_bytes.get()}});
    }
    FakeGuestMemory(const FakeGuestMemory&) = delete;
    FakeGuestMemory& operator=(const FakeGuestMemory&) = delete;

    const GuestMemory& memory() const { return m_memory; }
    uint64_t base() const { return m_base; }
    uint64_t size() const { return m_size; }
    uint8_t* host(uint64_t gpa) {
        assert(gpa >= m_base && gpa - m_base <= m_size);
        return m_bytes.get() + (gpa - m_base);
    }
    // Forgets every allocation (the memory keeps its contents).
    void reset_allocator() { m_next = m_base + 0x1000; }

    // Zeroed, aligned guest memory; asserts if the fake RAM runs out (a test bug).
    uint64_t alloc(uint64_t size, uint64_t align = 16) {
        uint64_t at = (m_next + align - 1) & ~(align - 1);
        assert(at + size <= m_base + m_size);
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
    struct Free {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    std::unique_ptr<uint8_t, Free> m_bytes;
    size_t m_size;
    uint64_t m_base;
    uint64_t m_next;
    GuestMemory m_memory;
};

}  // namespace vireo::testing
