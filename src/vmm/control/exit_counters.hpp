// Per-vCPU KVM exit counts by reason, cheap enough to bump on every exit.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace vireo::vmm {

// One per vCPU. Only that vCPU's thread counts, so an increment is a relaxed load and store
// (no locked instruction); readers (the API thread) see values at most one exit old.
class ExitCounters {
  public:
    static constexpr uint32_t kMaxReason = 63;  // KVM exit reasons are below 64; others land here

    void count(uint32_t reason) {
        auto& c = m_counts[reason < kMaxReason ? reason : kMaxReason];
        c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    }
    uint64_t get(uint32_t reason) const {
        return m_counts[reason < kMaxReason ? reason : kMaxReason].load(std::memory_order_relaxed);
    }
    // Non-zero counts by reason name ("io", "mmio", "hlt", ...).
    std::map<std::string, uint64_t> by_name() const;

  private:
    std::array<std::atomic<uint64_t>, kMaxReason + 1> m_counts{};
};

// The name of a KVM exit reason as the API reports it: "io", "mmio", "hlt", "shutdown", ...,
// "other" for reasons without a name here.
std::string_view exit_reason_name(uint32_t reason);

// Resident set size of this process in bytes (/proc/self/statm), 0 if unreadable.
uint64_t process_rss_bytes();

}  // namespace vireo::vmm
