// Test helpers: a program running in the background (its output to files), waiting for a
// condition with a deadline, reading a file whole.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace vireo::testing {

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Polls `condition` every 20 ms until it holds or `timeout` passes; returns whether it held.
// A deadline, not a timing assertion: slow hosts only make the wait longer.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (condition()) return true;
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

class ChildProcess {
  public:
    // Starts argv with stdin from /dev/null and stdout/stderr appended to the given files.
    ChildProcess(const std::vector<std::string>& argv, const std::string& out_path,
                 const std::string& err_path) {
        m_pid = ::fork();
        if (m_pid == 0) {
            int in = ::open("/dev/null", O_RDONLY);
            int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
            ::dup2(in, 0);
            ::dup2(out, 1);
            ::dup2(err, 2);
            std::vector<char*> args;
            for (const auto& a : argv)
                args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            ::execvp(args[0], args.data());
            _exit(127);
        }
    }
    ~ChildProcess() {
        if (running()) {
            ::kill(m_pid, SIGKILL);
            (void)wait_for(std::chrono::seconds(10));
        }
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    pid_t pid() const { return m_pid; }
    bool running() {
        if (m_status) return false;
        poll();
        return !m_status.has_value();
    }
    void kill(int sig) {
        if (running()) ::kill(m_pid, sig);
    }
    // The exit status (128 + signal for a signal), or nullopt if it is still running.
    std::optional<int> wait_for(std::chrono::milliseconds timeout) {
        wait_until([this] { return !running(); }, timeout);
        return m_status;
    }

  private:
    void poll() {
        int status = 0;
        pid_t r = ::waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid) m_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    pid_t m_pid = -1;
    std::optional<int> m_status;
};

}  // namespace vireo::testing
