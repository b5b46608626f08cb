// Names of KVM exit reasons as vm.counters reports them, and the process RSS.
#pragma once

#include <cstdint>
#include <string_view>

namespace vireo::vmm {

// "io", "mmio", "hlt", "shutdown", ...; "other" for reasons without a name here.
std::string_view exit_reason_name(uint32_t reason);

// Resident set size of this process in bytes (/proc/self/statm), 0 if unreadable.
uint64_t process_rss_bytes();

}  // namespace vireo::vmm
