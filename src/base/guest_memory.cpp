// Bounds-checked guest memory access.
#include "base/guest_memory.hpp"

#include <algorithm>

namespace vireo {

GuestMemory::GuestMemory(std::vector<GuestRegion> regions) : m_regions(std::move(regions)) {
    std::sort(m_regions.begin(), m_regions.end(), [](const auto& a, const auto& b) { return a.gpa < b.gpa; });
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& r : m_regions)
        total += r.size;
    return total;
}

uint64_t GuestMemory::end() const {
    return m_regions.empty() ? 0 : m_regions.back().end();
}

const GuestRegion* GuestMemory::find(uint64_t gpa) const {
    // Last region whose start is <= gpa.
    auto it = std::upper_bound(m_regions.begin(), m_regions.end(), gpa,
                               [](uint64_t addr, const GuestRegion& r) { return addr < r.gpa; });
    if (it == m_regions.begin()) return nullptr;
    --it;
    return gpa <= it->end() ? &*it : nullptr;
}

uint8_t* GuestMemory::host_ptr(uint64_t gpa, uint64_t len) const {
    const GuestRegion* r = find(gpa);
    if (r == nullptr) return nullptr;
    uint64_t off = gpa - r->gpa;
    if (len > r->size - off) return nullptr;
    return r->host + off;
}

Result<std::span<uint8_t>> GuestMemory::checked_slice(uint64_t gpa, uint64_t len) const {
    uint8_t* p = host_ptr(gpa, len);
    if (p == nullptr) {
        return make_error("guest memory: range 0x{:x}+0x{:x} is outside guest RAM", gpa, len);
    }
    return std::span<uint8_t>(p, static_cast<size_t>(len));
}

Status GuestMemory::read(uint64_t gpa, std::span<uint8_t> out) const {
    VIREO_ASSIGN_OR_RETURN(auto slice, checked_slice(gpa, out.size()));
    std::memcpy(out.data(), slice.data(), out.size());
    return {};
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> in) const {
    VIREO_ASSIGN_OR_RETURN(auto slice, checked_slice(gpa, in.size()));
    std::memcpy(slice.data(), in.data(), in.size());
    return {};
}

}  // namespace vireo
