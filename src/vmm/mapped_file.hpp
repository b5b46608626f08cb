// MappedFile: a whole file mapped read-only (kernel and initrd images), unmapped when done.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "base/result.hpp"

namespace vireo::vmm {

class MappedFile {
  public:
    // `what` names the file in errors ("--kernel").
    static Result<MappedFile> open(const std::string& path, std::string_view what);
    MappedFile(MappedFile&& other) noexcept;
    MappedFile& operator=(MappedFile&&) = delete;
    ~MappedFile();

    std::span<const uint8_t> bytes() const { return {m_data, m_size}; }

  private:
    MappedFile(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    const uint8_t* m_data = nullptr;
    size_t m_size = 0;
};

}  // namespace vireo::vmm
