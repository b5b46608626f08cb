// Scatter-gather copies over a chain's guest buffers.
#include "devices/virtio/descriptor_chain.hpp"

#include <algorithm>
#include <cstring>

namespace vireo::devices::virtio {

size_t iov_copy_from(std::span<const iovec> iov, uint64_t offset, std::span<uint8_t> out) {
    size_t done = 0;
    for (const iovec& v : iov) {
        if (done == out.size()) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t take = std::min<uint64_t>(v.iov_len - offset, out.size() - done);
        std::memcpy(out.data() + done, static_cast<const uint8_t*>(v.iov_base) + offset, take);
        done += take;
        offset = 0;
    }
    return done;
}

size_t iov_copy_to(std::span<const iovec> iov, uint64_t offset, std::span<const uint8_t> in) {
    size_t done = 0;
    for (const iovec& v : iov) {
        if (done == in.size()) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t take = std::min<uint64_t>(v.iov_len - offset, in.size() - done);
        std::memcpy(static_cast<uint8_t*>(v.iov_base) + offset, in.data() + done, take);
        done += take;
        offset = 0;
    }
    return done;
}

bool iov_slice(std::span<const iovec> iov, uint64_t offset, uint64_t length, std::vector<iovec>& out) {
    for (const iovec& v : iov) {
        if (length == 0) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t take = std::min<uint64_t>(v.iov_len - offset, length);
        out.push_back(iovec{static_cast<uint8_t*>(v.iov_base) + offset, take});
        length -= take;
        offset = 0;
    }
    return length == 0;
}

size_t DescriptorChain::read(uint64_t offset, std::span<uint8_t> out) const {
    return iov_copy_from(m_readable, offset, out);
}

size_t DescriptorChain::write(uint64_t offset, std::span<const uint8_t> in) const {
    return iov_copy_to(m_writable, offset, in);
}

bool DescriptorChain::slice_readable(uint64_t offset, uint64_t length, std::vector<iovec>& out) const {
    return iov_slice(m_readable, offset, length, out);
}

bool DescriptorChain::slice_writable(uint64_t offset, uint64_t length, std::vector<iovec>& out) const {
    return iov_slice(m_writable, offset, length, out);
}

void DescriptorChain::clear() {
    m_head = 0;
    m_descriptors = 0;
    m_readable_bytes = 0;
    m_writable_bytes = 0;
    m_readable.clear();
    m_writable.clear();
}

}  // namespace vireo::devices::virtio
