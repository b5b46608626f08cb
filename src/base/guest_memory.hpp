// GuestMemory: guest-physical ranges mapped into this process, with bounds-checked access.
// No device trusts a guest address or length: every access goes through checked_slice().
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <type_traits>
#include <vector>

#include "base/result.hpp"

namespace vireo {

struct GuestRegion {
    uint64_t gpa = 0;         // guest-physical start
    uint64_t size = 0;        // bytes
    uint8_t* host = nullptr;  // where it is mapped here
    uint64_t end() const { return gpa + size; }
};

class GuestMemory {
  public:
    GuestMemory() = default;
    // Regions must not overlap; they are kept sorted by gpa.
    explicit GuestMemory(std::vector<GuestRegion> regions);

    std::span<const GuestRegion> regions() const { return m_regions; }
    // Total bytes of guest RAM.
    uint64_t total_size() const;
    // One past the highest guest-physical RAM address.
    uint64_t end() const;

    // Host view of [gpa, gpa+len) if it lies wholly inside one region; otherwise an error
    // naming the range. A zero-length slice at a valid address (or region end) is allowed.
    Result<std::span<uint8_t>> checked_slice(uint64_t gpa, uint64_t len) const;
    // Like checked_slice but returns nullptr on failure (hot paths that count errors themselves).
    uint8_t* host_ptr(uint64_t gpa, uint64_t len) const;

    Status read(uint64_t gpa, std::span<uint8_t> out) const;
    Status write(uint64_t gpa, std::span<const uint8_t> in) const;

    template <typename T>
    requires std::is_trivially_copyable_v<T> Result<T> read_obj(uint64_t gpa)
    const {
        T value;
        VIREO_TRY(read(gpa, {reinterpret_cast<uint8_t*>(&value), sizeof value}));
        return value;
    }
    template <typename T>
    requires std::is_trivially_copyable_v<T> Status write_obj(uint64_t gpa, const T& value)
    const { return write(gpa, {reinterpret_cast<const uint8_t*>(&value), sizeof value}); }

  private:
    const GuestRegion* find(uint64_t gpa) const;
    std::vector<GuestRegion> m_regions;
};

}  // namespace vireo
