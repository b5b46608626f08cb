// Shared by the Linux guest tests: the default guest from scripts/make-guest (Debian's cloud
// kernel and a busybox initramfs, cached), and what the kernel should print about our memory map.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <fmt/format.h>

#include <map>

#include "arch/x86/e820.hpp"
#include "integration/process.hpp"

namespace vireo::linux_guest {

using testing::ProcessOptions;
using testing::ProcessResult;
using testing::run_process;

inline const std::string kBin = std::string(VIREO_BINARY_DIR) + "/bin/";
inline const std::string kCache = std::string(VIREO_SOURCE_DIR) + "/.cache/guest/";

inline bool have_kvm() {
    return ::access("/dev/kvm", R_OK | W_OK) == 0;
}

// Runs scripts/make-guest (cached after the first run).
inline void make_guest() {
    ProcessOptions opt;
    opt.timeout_seconds = 900;
    ProcessResult r =
        run_process({"/bin/sh", "-c", std::string(VIREO_SOURCE_DIR) + "/scripts/make-guest " + kCache}, opt);
    ASSERT_EQ(r.exit_code, 0) << "scripts/make-guest failed\n" << r.describe();
}

// The map Linux prints after boot: ours plus, for PVH boots, the legacy ISA hole it adds itself
// (arch/x86/platform/pvh/enlighten.c), merged the way e820__update_table merges.
inline std::string expected_linux_e820(uint64_t ram, bool pvh) {
    auto map = arch::x86::build_e820(ram);
    if (pvh) map.push_back({0xa0000, 0x60000, arch::x86::E820Type::kReserved});
    std::sort(map.begin(), map.end(), [](auto& a, auto& b) { return a.addr < b.addr; });
    std::vector<arch::x86::E820Entry> merged;
    for (const auto& e : map) {
        if (!merged.empty() && merged.back().type == e.type && e.addr <= merged.back().end()) {
            merged.back().size = std::max(merged.back().end(), e.end()) - merged.back().addr;
        } else {
            merged.push_back(e);
        }
    }
    std::string out = "BIOS-provided physical RAM map:\n";
    for (const auto& e : merged) {
        out += fmt::format("BIOS-e820: [mem {:#018x}-{:#018x}] {}\n", e.addr, e.end() - 1,
                           arch::x86::e820_type_name(e.type));
    }
    return out;
}

// Drops the "[    0.000000] " timestamps so lines compare as text.
inline std::string strip_timestamps(const std::string& log) {
    std::string out;
    size_t pos = 0;
    while (pos < log.size()) {
        size_t end = log.find('\n', pos);
        if (end == std::string::npos) end = log.size();
        std::string line = log.substr(pos, end - pos);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.starts_with("[") && line.find("] ") != std::string::npos)
            line = line.substr(line.find("] ") + 2);
        out += line + "\n";
        pos = end + 1;
    }
    return out;
}

}  // namespace vireo::linux_guest
