// MemoryBackend: a BlockBackend held in memory, for fuzzing and tests that need no file.
// Asynchronous requests run at once and complete from the IoContext, as the contract requires.
#pragma once

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "disk/block_backend.hpp"
#include "disk/io_context.hpp"

namespace vireo::fakes {

class MemoryBackend final : public disk::BlockBackend {
  public:
    explicit MemoryBackend(uint64_t size, bool read_only = false) : m_data(size), m_read_only(read_only) {}

    uint64_t size() const override { return m_data.size(); }
    bool read_only() const override { return m_read_only; }
    std::string describe() const override { return "memory"; }
    std::vector<uint8_t>& data() { return m_data; }

    Status read(uint64_t offset, std::span<const iovec> iov) override {
        VIREO_TRY(check(offset, total(iov), false));
        for (const auto& v : iov) {
            std::memcpy(v.iov_base, m_data.data() + offset, v.iov_len);
            offset += v.iov_len;
        }
        return {};
    }
    Status write(uint64_t offset, std::span<const iovec> iov) override {
        VIREO_TRY(check(offset, total(iov), true));
        for (const auto& v : iov) {
            std::memcpy(m_data.data() + offset, v.iov_base, v.iov_len);
            offset += v.iov_len;
        }
        return {};
    }
    Status flush() override { return {}; }
    Status discard(uint64_t offset, uint64_t length) override { return write_zeroes(offset, length); }
    Status write_zeroes(uint64_t offset, uint64_t length) override {
        VIREO_TRY(check(offset, length, true));
        std::fill_n(m_data.begin() + static_cast<long>(offset), length, 0);
        return {};
    }
    void submit(disk::IoContext& ctx, disk::IoRequest& req) override {
        Status s;
        switch (req.op) {
            case disk::IoOp::kRead:
                s = read(req.offset, req.iov);
                break;
            case disk::IoOp::kWrite:
                s = write(req.offset, req.iov);
                break;
            case disk::IoOp::kFlush:
                s = flush();
                break;
            case disk::IoOp::kDiscard:
                s = discard(req.offset, req.length);
                break;
            case disk::IoOp::kWriteZeroes:
                s = write_zeroes(req.offset, req.length);
                break;
        }
        disk::IoRequest* r = &req;
        ctx.defer([r, s = std::move(s)]() mutable { r->complete(*r, std::move(s)); });
    }

  private:
    static uint64_t total(std::span<const iovec> iov) {
        uint64_t n = 0;
        for (const auto& v : iov)
            n += v.iov_len;
        return n;
    }
    Status check(uint64_t offset, uint64_t length, bool modifies) const {
        if (offset > m_data.size() || length > m_data.size() - offset) {
            return Error(fmt::format("memory: {} bytes at offset {} past the end", length, offset), EINVAL);
        }
        if (modifies && m_read_only) return Error("memory: read-only", EROFS);
        return {};
    }

    std::vector<uint8_t> m_data;
    bool m_read_only;
};

}  // namespace vireo::fakes
