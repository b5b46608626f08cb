// Helpers over iovec arrays: a byte range of one as another (without heap allocation for the
// common short arrays), filling, copying and zero tests.
#pragma once

#include <sys/uio.h>

#include <array>
#include <cstdint>
#include <span>
#include <vector>

namespace vireo::disk {

// The iovecs covering bytes [offset, offset + length) of `iov`.
class IovSlice {
  public:
    IovSlice() = default;
    IovSlice(std::span<const iovec> iov, uint64_t offset, uint64_t length);
    IovSlice(const IovSlice& other) { *this = other; }
    IovSlice& operator=(const IovSlice& other);

    std::span<const iovec> span() const {
        return m_heap.empty() ? std::span<const iovec>(m_inline.data(), m_count)
                              : std::span<const iovec>(m_heap);
    }

  private:
    void push(iovec v);
    std::array<iovec, 4> m_inline{};
    size_t m_count = 0;
    std::vector<iovec> m_heap;
};

// Sets bytes [offset, offset + length) of `iov` to `value`.
void iov_fill(std::span<const iovec> iov, uint64_t offset, uint64_t length, uint8_t value);
// Copies between `iov` (from byte `offset`) and a flat buffer.
void iov_copy_out(std::span<const iovec> iov, uint64_t offset, std::span<uint8_t> dst);
void iov_copy_in(std::span<const iovec> iov, uint64_t offset, std::span<const uint8_t> src);

// Whether a buffer is all zero bytes (fast, word at a time).
bool is_zero(std::span<const uint8_t> bytes);

}  // namespace vireo::disk
