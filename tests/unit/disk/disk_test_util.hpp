// Helpers for disk tests: a temporary directory, whole-file access and deterministic data.
#pragma once

#include <sys/uio.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "disk/block_backend.hpp"

namespace vireo::disk::testing {

class TempDir {
  public:
    TempDir() {
        char tmpl[] = "/tmp/vireo-disk-XXXXXX";
        m_path = ::mkdtemp(tmpl);
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string path(const std::string& name) const { return m_path + "/" + name; }
    const std::string& dir() const { return m_path; }

  private:
    std::string m_path;
};

inline std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

inline void write_file(const std::string& path, const std::vector<uint8_t>& data) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
    std::vector<uint8_t> v(n);
    std::mt19937 rng(seed);
    for (auto& b : v)
        b = static_cast<uint8_t>(rng());
    return v;
}

inline Status write_at(BlockBackend& d, uint64_t offset, const std::vector<uint8_t>& data) {
    iovec v{const_cast<uint8_t*>(data.data()), data.size()};
    return d.write(offset, {&v, 1});
}

inline Result<std::vector<uint8_t>> read_at(BlockBackend& d, uint64_t offset, size_t n) {
    std::vector<uint8_t> buf(n);
    iovec v{buf.data(), buf.size()};
    VIREO_TRY(d.read(offset, {&v, 1}));
    return buf;
}

}  // namespace vireo::disk::testing
