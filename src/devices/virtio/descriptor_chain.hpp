// DescriptorChain: one validated request popped from a virtqueue: the head index and the guest
// buffers as host iovecs (device-readable ones first, then device-writable ones).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

namespace vireo::devices::virtio {

class DescriptorChain {
  public:
    uint16_t head() const { return m_head; }
    std::span<const iovec> readable() const { return m_readable; }
    std::span<const iovec> writable() const { return m_writable; }
    uint64_t readable_bytes() const { return m_readable_bytes; }
    uint64_t writable_bytes() const { return m_writable_bytes; }
    // Descriptors walked, including the one that pointed at an indirect table.
    uint32_t descriptor_count() const { return m_descriptors; }

    // Copies out of the readable buffers from byte `offset` of their concatenation; returns
    // how many bytes were copied (less than out.size() at the end of the buffers).
    size_t read(uint64_t offset, std::span<uint8_t> out) const;
    // Copies into the writable buffers at byte `offset`; returns how many bytes fit.
    size_t write(uint64_t offset, std::span<const uint8_t> in) const;
    // The sub-range [offset, offset+length) of the readable/writable buffers as iovecs,
    // appended to `out`. Returns false if the range runs past the buffers.
    bool slice_readable(uint64_t offset, uint64_t length, std::vector<iovec>& out) const;
    bool slice_writable(uint64_t offset, uint64_t length, std::vector<iovec>& out) const;

    void clear();

  private:
    friend class Virtqueue;
    uint16_t m_head = 0;
    uint32_t m_descriptors = 0;
    uint64_t m_readable_bytes = 0;
    uint64_t m_writable_bytes = 0;
    std::vector<iovec> m_readable;
    std::vector<iovec> m_writable;
};

// Helpers over iovec arrays.
size_t iov_copy_from(std::span<const iovec> iov, uint64_t offset, std::span<uint8_t> out);
size_t iov_copy_to(std::span<const iovec> iov, uint64_t offset, std::span<const uint8_t> in);
bool iov_slice(std::span<const iovec> iov, uint64_t offset, uint64_t length, std::vector<iovec>& out);

}  // namespace vireo::devices::virtio
