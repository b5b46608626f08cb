// iovec helpers.
#include "disk/iov.hpp"

#include <algorithm>
#include <cstring>

namespace vireo::disk {

IovSlice::IovSlice(std::span<const iovec> iov, uint64_t offset, uint64_t length) {
    for (const auto& v : iov) {
        if (length == 0) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t take = static_cast<size_t>(std::min<uint64_t>(v.iov_len - offset, length));
        push({static_cast<uint8_t*>(v.iov_base) + offset, take});
        length -= take;
        offset = 0;
    }
}

IovSlice& IovSlice::operator=(const IovSlice& other) {
    if (this == &other) return *this;
    m_inline = other.m_inline;
    m_count = other.m_count;
    m_heap = other.m_heap;
    return *this;
}

void IovSlice::push(iovec v) {
    if (m_heap.empty() && m_count < m_inline.size()) {
        m_inline[m_count++] = v;
        return;
    }
    if (m_heap.empty()) m_heap.assign(m_inline.begin(), m_inline.begin() + static_cast<ptrdiff_t>(m_count));
    m_heap.push_back(v);
}

namespace {

template <typename Fn>
void for_range(std::span<const iovec> iov, uint64_t offset, uint64_t length, Fn&& fn) {
    uint64_t done = 0;
    for (const auto& v : iov) {
        if (length == 0) break;
        if (offset >= v.iov_len) {
            offset -= v.iov_len;
            continue;
        }
        size_t take = static_cast<size_t>(std::min<uint64_t>(v.iov_len - offset, length));
        fn(static_cast<uint8_t*>(v.iov_base) + offset, take, done);
        done += take;
        length -= take;
        offset = 0;
    }
}

}  // namespace

void iov_fill(std::span<const iovec> iov, uint64_t offset, uint64_t length, uint8_t value) {
    for_range(iov, offset, length, [value](uint8_t* p, size_t n, uint64_t) { std::memset(p, value, n); });
}

void iov_copy_out(std::span<const iovec> iov, uint64_t offset, std::span<uint8_t> dst) {
    for_range(iov, offset, dst.size(),
              [&dst](uint8_t* p, size_t n, uint64_t at) { std::memcpy(dst.data() + at, p, n); });
}

void iov_copy_in(std::span<const iovec> iov, uint64_t offset, std::span<const uint8_t> src) {
    for_range(iov, offset, src.size(),
              [&src](uint8_t* p, size_t n, uint64_t at) { std::memcpy(p, src.data() + at, n); });
}

bool is_zero(std::span<const uint8_t> bytes) {
    const uint8_t* p = bytes.data();
    size_t n = bytes.size();
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
        if (*p != 0) return false;
        ++p;
        --n;
    }
    while (n >= 64) {
        uint64_t w[8];
        std::memcpy(w, p, 64);
        if ((w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7]) != 0) return false;
        p += 64;
        n -= 64;
    }
    while (n > 0) {
        if (*p != 0) return false;
        ++p;
        --n;
    }
    return true;
}

}  // namespace vireo::disk
