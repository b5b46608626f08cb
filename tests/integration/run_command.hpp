// Running shell commands from integration tests: exit status and output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace vireo::testing {

struct CommandResult {
    int status = -1;  // exit status, or -1 when the command did not exit normally
    std::string output;
};

// Runs `command` with /bin/sh; captures stdout (and stderr when `with_stderr`).
inline CommandResult run_command(const std::string& command, bool with_stderr = true) {
    CommandResult r;
    FILE* p = ::popen((command + (with_stderr ? " 2>&1" : "")).c_str(), "r");
    if (p == nullptr) return r;
    std::array<char, 4096> buf;
    size_t n;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        r.output.append(buf.data(), n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

inline bool have_program(const std::string& name) {
    return run_command("command -v " + name + " >/dev/null").status == 0;
}

// Single-quotes a path for the shell.
inline std::string sh(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

}  // namespace vireo::testing
