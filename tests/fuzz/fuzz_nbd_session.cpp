// Fuzz target: the NBD handshake, option and request parser (nbd::Session) fed arbitrary client
// bytes in arbitrary chunks. It must never crash, never answer with malformed framing, and give
// back every byte of memory budget it took.
//
// Input: byte 0 picks the chunk size (low 7 bits + 1) and a read-only export (bit 7); the rest is
// what the client sends.
#include <cstdint>
#include <cstdlib>
#include <memory>

#include "disk/io_context.hpp"
#include "disk/nbd/session.hpp"
#include "fakes/memory_backend.hpp"

using namespace vireo;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::unique_ptr<disk::IoContext> ctx = [] {
        auto c = disk::IoContext::create_for_testing_without_io_uring();
        if (!c.ok()) std::abort();
        return std::move(*c);
    }();
    static fakes::MemoryBackend backend(1 << 20);
    if (size == 0) return 0;

    const size_t chunk = (data[0] & 0x7f) + 1u;
    disk::nbd::Export exp;
    exp.name = "fuzz";
    exp.description = "fuzzed export";
    exp.backend = &backend;
    exp.read_only = (data[0] & 0x80) != 0;
    disk::nbd::Limits limits;
    limits.max_option_length = 4096;
    limits.max_options = 64;
    disk::nbd::MemoryBudget budget(256 << 20);
    {
        disk::nbd::Session session(*ctx, exp, limits, budget);
        size_t pos = 1;
        auto pump = [&] {
            if (!ctx->drain().ok()) std::abort();
            while (session.has_output()) {
                iovec iov[16];
                size_t k = session.gather_output(iov);
                size_t total = 0;
                for (size_t i = 0; i < k; ++i)
                    total += iov[i].iov_len;
                if (k == 0 || total == 0) std::abort();  // has_output() promised bytes
                session.output_sent(total);
                if (!ctx->drain().ok()) std::abort();
            }
        };
        while (pos < size && !session.finished()) {
            auto space = session.input_space();
            if (space.empty()) {
                pump();
                if (session.input_space().empty()) break;
                continue;
            }
            size_t n = std::min({space.size(), chunk, size - pos});
            std::memcpy(space.data(), data + pos, n);
            session.input_received(n);
            pos += n;
            pump();
        }
        pump();
        session.hard_close("fuzz input over");
        if (!ctx->drain().ok()) std::abort();
        if (!session.idle()) std::abort();
    }
    if (budget.used() != 0) std::abort();
    return 0;
}
