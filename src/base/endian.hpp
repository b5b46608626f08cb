// Byte-order helpers and endian-typed fields for packed wire/disk structs.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace vireo {

template <typename T>
requires std::is_integral_v<T>
constexpr T byteswap(T v) {
    if constexpr (sizeof(T) == 1) {
        return v;
    } else if constexpr (sizeof(T) == 2) {
        return static_cast<T>(__builtin_bswap16(static_cast<uint16_t>(v)));
    } else if constexpr (sizeof(T) == 4) {
        return static_cast<T>(__builtin_bswap32(static_cast<uint32_t>(v)));
    } else {
        static_assert(sizeof(T) == 8);
        return static_cast<T>(__builtin_bswap64(static_cast<uint64_t>(v)));
    }
}

template <typename T>
constexpr T to_be(T v) {
    if constexpr (std::endian::native == std::endian::big) return v;
    return byteswap(v);
}
template <typename T>
constexpr T from_be(T v) {
    return to_be(v);
}
template <typename T>
constexpr T to_le(T v) {
    if constexpr (std::endian::native == std::endian::little) return v;
    return byteswap(v);
}
template <typename T>
constexpr T from_le(T v) {
    return to_le(v);
}

template <typename T>
inline T load_be(const void* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return from_be(v);
}
template <typename T>
inline void store_be(void* p, T v) {
    v = to_be(v);
    std::memcpy(p, &v, sizeof v);
}
template <typename T>
inline T load_le(const void* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return from_le(v);
}
template <typename T>
inline void store_le(void* p, T v) {
    v = to_le(v);
    std::memcpy(p, &v, sizeof v);
}

// A field stored big-endian; reads and writes convert. Safe inside packed structs.
template <typename T>
class [[gnu::packed]] Be {
  public:
    constexpr Be() = default;
    constexpr Be(T v) : m_raw(to_be(v)) {}
    constexpr operator T() const { return from_be(m_raw); }
    constexpr T get() const { return from_be(m_raw); }

  private:
    T m_raw{};
};

// A field stored little-endian.
template <typename T>
class [[gnu::packed]] Le {
  public:
    constexpr Le() = default;
    constexpr Le(T v) : m_raw(to_le(v)) {}
    constexpr operator T() const { return from_le(m_raw); }
    constexpr T get() const { return from_le(m_raw); }

  private:
    T m_raw{};
};

static_assert(sizeof(Be<uint64_t>) == 8 && sizeof(Le<uint16_t>) == 2);

}  // namespace vireo
