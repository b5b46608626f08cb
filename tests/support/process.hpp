// Test helpers for running peers (qemu-img, qemu-io, ...) and `vireo img serve` as child
// processes: output capture, waiting for the server's "Listening on" line, signals.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "base/unique_fd.hpp"

namespace vireo::test {

struct ProcessResult {
    int exit_code = -1;  // -1: killed by a signal or not started
    std::string output;  // stdout and stderr together
};

// True if `program` is found on PATH.
inline bool have_program(const std::string& program) {
    std::string cmd = "command -v " + program + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
}

inline std::string vireo_binary() {
    return std::string(VIREO_BINARY_DIR) + "/bin/vireo";
}

// Runs argv to completion, capturing stdout and stderr.
inline ProcessResult run_process(const std::vector<std::string>& argv) {
    ProcessResult result;
    int pipefd[2];
    if (::pipe2(pipefd, O_CLOEXEC) < 0) return result;
    pid_t pid = ::fork();
    if (pid < 0) return result;
    if (pid == 0) {
        ::dup2(pipefd[1], 1);
        ::dup2(pipefd[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    ::close(pipefd[1]);
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(pipefd[0], buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        result.output.append(buf, static_cast<size_t>(n));
    }
    ::close(pipefd[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return result;
}

// A running `vireo img serve` (or any server that prints one line when ready).
class ServerProcess {
  public:
    ServerProcess() = default;
    ServerProcess(const ServerProcess&) = delete;
    ServerProcess& operator=(const ServerProcess&) = delete;
    ServerProcess(ServerProcess&& o) noexcept { *this = std::move(o); }
    ServerProcess& operator=(ServerProcess&& o) noexcept {
        std::swap(m_pid, o.m_pid);
        std::swap(m_out, o.m_out);
        std::swap(m_first_line, o.m_first_line);
        return *this;
    }
    ~ServerProcess() { kill(SIGKILL); }

    // Starts argv and waits (up to timeout) for its first line of stdout.
    bool start(const std::vector<std::string>& argv,
               std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        kill(SIGKILL);  // a previous run of this object
        m_first_line.clear();
        int pipefd[2];
        if (::pipe2(pipefd, O_CLOEXEC) < 0) return false;
        m_pid = ::fork();
        if (m_pid < 0) return false;
        if (m_pid == 0) {
            ::dup2(pipefd[1], 1);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            ::_exit(127);
        }
        ::close(pipefd[1]);
        m_out = UniqueFd(pipefd[0]);
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (m_first_line.find('\n') == std::string::npos) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            pollfd p{m_out.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            char buf[256];
            ssize_t n = ::read(m_out.get(), buf, sizeof buf);
            if (n <= 0) return false;
            m_first_line.append(buf, static_cast<size_t>(n));
        }
        m_first_line.resize(m_first_line.find('\n'));
        return true;
    }
    const std::string& first_line() const { return m_first_line; }
    pid_t pid() const { return m_pid; }

    // Sends `sig` and reaps the process; returns its exit code (-1 if it died of a signal).
    int kill(int sig) {
        if (m_pid <= 0) return -1;
        ::kill(m_pid, sig);
        return wait();
    }
    int wait() {
        if (m_pid <= 0) return -1;
        int status = 0;
        while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
        }
        m_pid = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }

  private:
    pid_t m_pid = -1;
    UniqueFd m_out;
    std::string m_first_line;
};

}  // namespace vireo::test
