// Test helper: one HTTP request with curl over a Unix socket, returning status, body, headers.
#pragma once

#include <atomic>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "support/child_process.hpp"
#include "support/subprocess.hpp"

namespace vireo::testing {

struct CurlResult {
    int exit_code = -1;  // curl's own status (0: a response arrived)
    int status = 0;      // HTTP status
    std::string body;
    std::string headers;
    std::string err;
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// `scratch` is a directory for curl's output files.
inline CurlResult curl_unix(const std::string& socket, const std::string& method, const std::string& path,
                            const std::optional<std::string>& body = std::nullopt,
                            const std::vector<std::string>& extra = {},
                            const std::string& scratch = std::filesystem::temp_directory_path().string()) {
    static std::atomic<int> seq{0};
    std::string tag = std::to_string(::getpid()) + "-" + std::to_string(seq++);
    std::string body_file = scratch + "/curl-body-" + tag;
    std::string head_file = scratch + "/curl-head-" + tag;
    std::vector<std::string> argv = {"curl", "-sS",          "--unix-socket", socket, "-X",
                                     method, "-o",           body_file,       "-D",   head_file,
                                     "-w",   "%{http_code}", "--max-time",    "120"};
    if (body) {
        argv.push_back("--data-binary");
        argv.push_back(*body);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back("http://localhost" + path);
    auto p = run_process(argv);
    CurlResult r;
    r.exit_code = p.exit_code;
    r.status = p.out.empty() ? 0 : std::atoi(p.out.c_str());
    r.body = read_file(body_file);
    r.headers = read_file(head_file);
    r.err = p.err;
    std::filesystem::remove(body_file);
    std::filesystem::remove(head_file);
    return r;
}

}  // namespace vireo::testing
