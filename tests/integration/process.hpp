// Runs a program with arguments, feeds it stdin, collects stdout and stderr, and kills it after
// a timeout or once a condition on its output holds (for guests that never stop on their own).
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <vector>

namespace vireo::testing {

struct ProcessResult {
    int exit_code = -1;  // -1 if killed by a signal
    int signal = 0;
    bool timed_out = false;
    bool stopped_early = false;  // killed because `stop_when` held
    std::string out;
    std::string err;
    std::string describe() const {
        return "exit " + std::to_string(exit_code) + " signal " + std::to_string(signal) +
               (timed_out ? " (timed out)" : "") + "\n--- stdout:\n" + out + "\n--- stderr:\n" + err;
    }
};

struct ProcessOptions {
    std::string input;  // written to stdin, which is then closed (unless keep_stdin_open)
    bool keep_stdin_open = false;
    double timeout_seconds = 60;
    // Called after each read; returning true kills the process (SIGKILL).
    std::function<bool(const std::string& out, const std::string& err)> stop_when;
    // Sent once `signal_when` holds.
    int signal_to_send = 0;
    std::function<bool(const std::string& out, const std::string& err)> signal_when;
    // Written to stdin once `write_when` holds.
    std::string late_input;
    std::function<bool(const std::string& out, const std::string& err)> write_when;
};

inline double monotonic_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

inline ProcessResult run_process(const std::vector<std::string>& argv, const ProcessOptions& opt = {}) {
    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return {};
    pid_t pid = ::fork();
    if (pid == 0) {
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        std::vector<char*> args;
        for (const auto& a : argv)
            args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execv(args[0], args.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    ProcessResult r;
    if (!opt.input.empty()) {
        [[maybe_unused]] ssize_t n = ::write(in[1], opt.input.data(), opt.input.size());
    }
    int stdin_fd = in[1];
    bool keep_open = opt.keep_stdin_open || opt.write_when;
    if (!keep_open) {
        ::close(stdin_fd);
        stdin_fd = -1;
    }
    double deadline = monotonic_seconds() + opt.timeout_seconds;
    bool out_open = true, err_open = true, signalled = false, wrote_late = false;
    while (out_open || err_open) {
        pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
        int left_ms = static_cast<int>((deadline - monotonic_seconds()) * 1000);
        if (left_ms <= 0) {
            r.timed_out = true;
            ::kill(pid, SIGKILL);
            break;
        }
        ::poll(fds, 2, std::min(left_ms, 200));
        char buf[4096];
        for (int i = 0; i < 2; ++i) {
            if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
            ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                (i == 0 ? out_open : err_open) = false;
            } else {
                (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
            }
        }
        if (opt.write_when && !wrote_late && opt.write_when(r.out, r.err)) {
            wrote_late = true;
            [[maybe_unused]] ssize_t n = ::write(stdin_fd, opt.late_input.data(), opt.late_input.size());
        }
        if (opt.signal_when && !signalled && opt.signal_when(r.out, r.err)) {
            signalled = true;
            ::kill(pid, opt.signal_to_send);
        }
        if (opt.stop_when && opt.stop_when(r.out, r.err)) {
            r.stopped_early = true;
            ::kill(pid, SIGKILL);
            break;
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (stdin_fd >= 0) ::close(stdin_fd);
    ::close(out[0]);
    ::close(err[0]);
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
    return r;
}

inline int count_of(const std::string& haystack, const std::string& needle) {
    int n = 0;
    for (size_t pos = haystack.find(needle); pos != std::string::npos; pos = haystack.find(needle, pos + 1))
        ++n;
    return n;
}

}  // namespace vireo::testing
