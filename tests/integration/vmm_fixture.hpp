// Shared by the KVM tests of the control API and snapshots: runs vireo-vmm with a tiny test
// guest in the background, talks to its API socket with curl, reads its serial output.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/curl.hpp"
#include "support/subprocess.hpp"

namespace vireo::testing {

inline std::string vmm_binary() {
    return std::string(VIREO_BINARY_DIR) + "/bin/vireo-vmm";
}
inline std::string guest_path(const std::string& name) {
    return std::string(VIREO_BINARY_DIR) + "/guests/" + name;
}

// The numbers of the "count: N" lines in serial output (a line cut off at the end is left out).
inline std::vector<uint64_t> counts_in(const std::string& text) {
    std::vector<uint64_t> out;
    size_t pos = 0;
    while ((pos = text.find("count: ", pos)) != std::string::npos) {
        size_t start = pos + 7;
        size_t end = text.find('\n', start);
        if (end == std::string::npos) break;
        out.push_back(std::stoull(text.substr(start, end - start)));
        pos = end;
    }
    return out;
}

// Whether counts are 1, 2, 3, ... with no gap and no repeat.
inline ::testing::AssertionResult consecutive_from_one(const std::vector<uint64_t>& counts) {
    for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] != i + 1) {
            return ::testing::AssertionFailure() << "count " << counts[i] << " at position " << i + 1
                                                 << " (previous: " << (i ? counts[i - 1] : 0) << ")";
        }
    }
    return ::testing::AssertionSuccess();
}

class VmmTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is not usable here";
        if (!have_program("curl")) GTEST_SKIP() << "curl is not installed (package curl)";
        if (!std::filesystem::exists(guest_path("pvh64.elf")))
            GTEST_SKIP() << "test guests were not built (needs gcc, ld, objcopy)";
    }

    // Starts vireo-vmm with `args` plus --api-socket NAME.sock --serial file:NAME.out.
    std::unique_ptr<ChildProcess> start_vmm(const std::string& name, std::vector<std::string> args) {
        std::vector<std::string> argv = {vmm_binary()};
        argv.insert(argv.end(), args.begin(), args.end());
        argv.insert(argv.end(), {"--api-socket", sock(name), "--serial", "file:" + serial(name)});
        auto p = std::make_unique<ChildProcess>(argv, dir.file(name + ".stdout"), dir.file(name + ".stderr"));
        // Up means the API answers and the VM has started (a stale socket file may exist before).
        bool up = wait_until(
            [&] {
                if (!p->running()) return true;
                std::string s = state(name);
                return s != "?" && s != "created";
            },
            std::chrono::seconds(30));
        EXPECT_TRUE(up && p->running())
            << "vireo-vmm did not come up: " << read_file(dir.file(name + ".stderr"));
        return p;
    }
    std::unique_ptr<ChildProcess> start_counting(const std::string& name,
                                                 const std::string& extra_cmdline = "",
                                                 std::vector<std::string> extra_args = {}) {
        std::vector<std::string> args = {"--kernel",  guest_path("pvh64.elf"),
                                         "--memory",  "64",
                                         "--cmdline", "count delay=2000 " + extra_cmdline};
        args.insert(args.end(), extra_args.begin(), extra_args.end());
        return start_vmm(name, args);
    }

    std::string sock(const std::string& name) const { return dir.file(name + ".sock"); }
    std::string serial(const std::string& name) const { return dir.file(name + ".out"); }
    std::string stderr_of(const std::string& name) const { return read_file(dir.file(name + ".stderr")); }

    CurlResult api(const std::string& name, const std::string& method, const std::string& path,
                   const std::optional<std::string>& body = std::nullopt) {
        return curl_unix(sock(name), method, path, body, {}, dir.path().string());
    }
    std::string state(const std::string& name) {
        auto j = api(name, "GET", "/api/v1/vm").json();
        return j.is_object() && j.contains("state") ? j["state"].get<std::string>() : "?";
    }
    // Waits until the guest has printed at least `n` counts.
    bool wait_for_counts(const std::string& name, size_t n) {
        return wait_until([&] { return counts_in(read_file(serial(name))).size() >= n; },
                          std::chrono::seconds(60));
    }

    TempDir dir{"vireo-vmm-test"};
};

}  // namespace vireo::testing
