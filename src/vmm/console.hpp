// Console: where the guest's serial port meets the host — guest output to stdout, a file or
// nowhere; host input from stdin (terminal in raw mode, restored on exit) with the Ctrl-A
// escapes. It outlives a VM across reboots; each VM's UART attaches to it.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "vmm/escape_filter.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vm_config.hpp"

namespace vireo::devices {
class Serial16550;
}

namespace vireo::vmm {

class Console {
  public:
    // `on_quit` runs on the loop thread when the user types Ctrl-A x.
    static Result<std::unique_ptr<Console>> create(const SerialConfig& config, EventLoop& loop,
                                                   std::function<void()> on_quit);
    ~Console();
    Console(const Console&) = delete;
    Console& operator=(const Console&) = delete;

    // The UART's transmit sink (any vCPU thread).
    void write_output(std::span<const uint8_t> bytes);
    // Host input goes to this UART from now on (nullptr: held back until one attaches).
    // Loop thread only.
    void attach(std::shared_ptr<devices::Serial16550> uart);
    // The attached UART has room again (any thread).
    void input_space_available();

    bool raw_terminal() const { return m_raw_terminal; }
    uint64_t output_errors() const { return m_output_errors; }

  private:
    Console(const SerialConfig& config, EventLoop& loop, std::function<void()> on_quit)
        : m_config(config), m_loop(loop), m_on_quit(std::move(on_quit)) {}
    Status start_input();
    void on_stdin_readable();
    void push_pending();

    SerialConfig m_config;
    EventLoop& m_loop;
    std::function<void()> m_on_quit;
    UniqueFd m_file;  // --serial file:PATH
    int m_out_fd = -1;
    std::mutex m_output_lock;  // vCPU threads write concurrently
    uint64_t m_output_errors = 0;

    bool m_raw_terminal = false;
    bool m_input_open = false;
    bool m_input_paused = false;
    EventLoop::Token m_input_token = 0;
    EscapeFilter m_filter;
    std::deque<uint8_t> m_pending;  // typed, not yet taken by the UART
    std::shared_ptr<devices::Serial16550> m_uart;
};

// Puts stdin's terminal back as it was (safe to call more than once, and from a signal handler).
void restore_terminal();

}  // namespace vireo::vmm
