// The serial console.
#include "vmm/console.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <termios.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <cstring>

#include "base/log.hpp"
#include "devices/legacy/serial_16550.hpp"

namespace vireo::vmm {
namespace {

termios g_saved_termios;
std::atomic<bool> g_terminal_saved{false};

void restore_on_fatal_signal(int sig) {
    restore_terminal();
    ::signal(sig, SIG_DFL);
    ::raise(sig);
}

Status enter_raw_mode() {
    termios t;
    if (::tcgetattr(STDIN_FILENO, &t) < 0) return os_error("console: tcgetattr on stdin");
    g_saved_termios = t;
    g_terminal_saved = true;
    std::atexit(restore_terminal);
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT})
        ::signal(sig, restore_on_fatal_signal);
    ::cfmakeraw(&t);
    // Keep output processing (as QEMU's stdio console does) so guest "\n" still starts a line.
    t.c_oflag |= OPOST;
    if (::tcsetattr(STDIN_FILENO, TCSANOW, &t) < 0) return os_error("console: tcsetattr on stdin");
    return {};
}

}  // namespace

void restore_terminal() {
    if (g_terminal_saved.exchange(false)) ::tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_termios);
}

Result<std::unique_ptr<Console>> Console::create(const SerialConfig& config, EventLoop& loop,
                                                 std::function<void()> on_quit) {
    std::unique_ptr<Console> console(new Console(config, loop, std::move(on_quit)));
    switch (config.mode) {
        case SerialMode::kStdio:
            console->m_out_fd = STDOUT_FILENO;
            VIREO_TRY(console->start_input());
            break;
        case SerialMode::kFile: {
            int fd = ::open(config.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) return os_error(fmt::format("--serial file:{}", config.path));
            console->m_file.reset(fd);
            console->m_out_fd = fd;
            break;
        }
        case SerialMode::kNone:
            break;
    }
    return console;
}

Console::~Console() {
    if (m_input_open) m_loop.remove(m_input_token);
    if (m_raw_terminal) restore_terminal();
}

Status Console::start_input() {
    if (::isatty(STDIN_FILENO)) {
        VIREO_TRY(enter_raw_mode());
        m_raw_terminal = true;
    }
    int flags = ::fcntl(STDIN_FILENO, F_GETFL);
    if (flags < 0) return {};  // no stdin at all: output only
    auto token = m_loop.add(STDIN_FILENO, EPOLLIN, [this](uint32_t) { on_stdin_readable(); });
    if (!token.ok()) {
        // A regular file or /dev/null cannot be polled; the guest simply gets no input.
        log::get("vmm").debug("console: stdin is not pollable ({}); no serial input",
                              token.error().message());
        return {};
    }
    // stdin stays blocking: it may share its open file with stdout, and epoll only reports it
    // readable when a read will not block.
    m_input_token = *token;
    m_input_open = true;
    return {};
}

void Console::write_output(std::span<const uint8_t> bytes) {
    if (m_out_fd < 0) return;
    std::lock_guard lock(m_output_lock);
    while (!bytes.empty()) {
        ssize_t n = ::write(m_out_fd, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN) {
                // Non-blocking stdout (shared with the terminal's stdin flags): wait for room.
                fd_set set;
                FD_ZERO(&set);
                FD_SET(m_out_fd, &set);
                ::select(m_out_fd + 1, nullptr, &set, nullptr, nullptr);
                continue;
            }
            ++m_output_errors;  // e.g. EPIPE: the reader went away; the guest goes on
            return;
        }
        bytes = bytes.subspan(static_cast<size_t>(n));
    }
}

void Console::attach(std::shared_ptr<devices::Serial16550> uart) {
    m_uart = std::move(uart);
    push_pending();
}

void Console::input_space_available() {
    m_loop.post([this] { push_pending(); });
}

void Console::on_stdin_readable() {
    uint8_t buf[1024];
    ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        n = 0;
    }
    if (n == 0) {  // end of input: stop watching, the VM runs on
        m_loop.remove(m_input_token);
        m_input_open = false;
        return;
    }
    EscapeFilter::Output out = m_filter.feed({buf, static_cast<size_t>(n)});
    if (out.help)
        write_output({reinterpret_cast<const uint8_t*>(EscapeFilter::help_text()),
                      std::strlen(EscapeFilter::help_text())});
    m_pending.insert(m_pending.end(), out.to_guest.begin(), out.to_guest.end());
    if (out.command == EscapeFilter::Command::kQuit) {
        if (m_on_quit) m_on_quit();
        return;
    }
    push_pending();
}

void Console::push_pending() {
    if (m_uart && !m_pending.empty()) {
        std::vector<uint8_t> chunk(m_pending.begin(), m_pending.end());
        size_t taken = m_uart->enqueue_input(chunk);
        m_pending.erase(m_pending.begin(), m_pending.begin() + static_cast<std::ptrdiff_t>(taken));
    }
    // Back-pressure: stop reading stdin while typed input waits for the guest.
    bool pause = !m_pending.empty();
    if (m_input_open && pause != m_input_paused) {
        if (m_loop.modify(m_input_token, pause ? 0u : static_cast<uint32_t>(EPOLLIN)).ok())
            m_input_paused = pause;
    }
}

}  // namespace vireo::vmm
