// nbd::Session: one client connection's NBD protocol state machine (handshake, option haggling,
// transmission), independent of the socket so that tests and the fuzzer can drive it with bytes.
//
// The transport (nbd::Server) moves bytes: it asks input_space() where the next bytes from the
// client go, reports them with input_received(), and sends what gather_output() returns. The
// session parses, validates every field (network messages are outside data), runs commands on
// the BlockBackend through the IoContext, and queues replies as they complete — in completion
// order, as NBD allows.
//
// Memory per client is bounded: a command's payload buffer is at most Limits::max_payload bytes,
// the buffers of one client's commands in flight total at most Limits::client_window (one command
// is always admitted), a MemoryBudget caps the sum over all clients, and Limits::max_commands caps
// the number of commands in flight. When a limit is reached the session stops taking input until
// replies have been sent — the client sees TCP backpressure, the server does not grow.
//
// Threading: a session lives on the thread that drives its IoContext; nothing here is locked.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "disk/block_backend.hpp"
#include "disk/nbd/protocol.hpp"

namespace vireo::disk {
class IoContext;
}

namespace vireo::disk::nbd {

// What a server exports: one backend under one name.
struct Export {
    std::string name;  // canonical name; the empty name (the default export) also selects it
    std::string description;
    BlockBackend* backend = nullptr;
    bool read_only = false;  // refuse writes even if the backend takes them
};

struct Limits {
    uint32_t max_payload = kMaxPayload;     // longest READ/WRITE accepted (advertised maximum)
    uint64_t client_window = 32ull << 20;   // payload-buffer bytes one client may hold
    uint32_t max_commands = 256;            // commands of one client in flight
    uint32_t max_option_length = 64 << 10;  // longer option data is skipped and refused
    uint32_t max_options = 256;             // options in one handshake before hanging up
};

// Payload-buffer bytes shared by all sessions of one server (single-threaded, like the sessions).
class MemoryBudget {
  public:
    explicit MemoryBudget(uint64_t limit) : m_limit(limit) {}
    bool try_take(uint64_t bytes) {
        if (bytes > m_limit - m_used) return false;
        m_used += bytes;
        return true;
    }
    void give(uint64_t bytes) {
        m_used -= bytes;
        m_released = true;
    }
    uint64_t used() const { return m_used; }
    uint64_t limit() const { return m_limit; }
    // True once since the last call if bytes were given back (blocked sessions may retry).
    bool take_released() { return std::exchange(m_released, false); }

  private:
    uint64_t m_limit;
    uint64_t m_used = 0;
    bool m_released = false;
};

// Counters of one session, for logs and tests.
struct SessionStats {
    uint64_t commands = 0;
    uint64_t errors_replied = 0;  // replies with a nonzero error
    uint64_t bytes_read = 0;      // export bytes read by the client
    uint64_t bytes_written = 0;
};

class Session {
  public:
    Session(IoContext& ctx, const Export& exp, const Limits& limits, MemoryBudget& budget);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // --- transport side ---
    // Where the next bytes from the client go; empty while the session takes no input.
    std::span<uint8_t> input_space();
    // `n` bytes were stored at the start of the last input_space().
    void input_received(size_t n);
    // The client closed its side (or the connection broke while reading).
    void peer_closed();
    // Fills `out` with what is ready to send; returns how many entries it used.
    size_t gather_output(std::span<iovec> out) const;
    void output_sent(size_t n);
    bool has_output() const;
    // Sending failed: drop everything queued for the client and take no more input.
    void hard_close(std::string reason);
    // The server is stopping: finish what is in flight, take nothing new.
    void begin_shutdown();
    // After the budget of another session was released: tries to admit a blocked command.
    void retry_blocked();

    // The socket can be closed: nothing more will be sent or read.
    bool finished() const;
    // input_space() would offer room (no side effects).
    bool wants_input() const;
    // No backend I/O in flight: the session may be destroyed.
    bool idle() const { return m_io_in_flight == 0; }
    bool in_transmission() const { return m_phase == Phase::kTransmission; }
    bool blocked() const { return m_blocked; }
    const std::string& close_reason() const { return m_close_reason; }
    const SessionStats& stats() const { return m_stats; }

    // Called when a completion queued output or changed state (from inside IoContext callbacks).
    void set_notify(std::function<void()> fn) { m_notify = std::move(fn); }

    uint16_t transmission_flags() const;
    uint32_t minimum_block_size() const { return m_min_block; }
    uint32_t preferred_block_size() const;

  private:
    struct Cmd;
    enum class Phase : uint8_t { kClientFlags, kOptions, kTransmission };
    enum class InputMode : uint8_t { kStaging, kPayload, kSkip };

    void process();
    bool process_one();  // false: needs more input or may not continue
    void handle_option(uint32_t option, std::span<const uint8_t> data);
    void handle_info_or_go(uint32_t option, std::span<const uint8_t> data);
    void handle_request(const Request& req);
    uint32_t validate(Command type, uint16_t flags, uint64_t offset, uint32_t length) const;
    bool admit(uint64_t bytes);
    void start(Cmd* cmd);
    void submit_io(Cmd* cmd, IoOp op, uint64_t offset, uint64_t length, std::span<const iovec> iov);
    void submit_next_zeroes(Cmd* cmd);
    void io_done(Cmd* cmd, const Status& status);
    void queue_reply(Cmd* cmd);
    Cmd* new_cmd();
    void release(Cmd* cmd);
    void notify();

    void put_option_reply(uint32_t option, uint32_t type, std::span<const uint8_t> data = {});
    void put_option_error(uint32_t option, uint32_t type, const std::string& message);
    void put_bytes(const void* data, size_t n);
    bool name_selects_export(std::string_view name) const;

    IoContext& m_ctx;
    const Export& m_export;
    const Limits m_limits;
    MemoryBudget& m_budget;
    uint64_t m_size;
    uint32_t m_min_block;
    std::function<void()> m_notify;

    Phase m_phase = Phase::kClientFlags;
    bool m_no_zeroes = false;
    bool m_input_done = false;  // DISC, ABORT, EOF, shutdown or hard close: read nothing more
    bool m_hard = false;        // hard disconnect: send nothing more
    std::string m_close_reason;
    uint32_t m_options_seen = 0;

    // Input: a staging buffer for headers and small payloads; large write payloads are read
    // straight into their command's buffer.
    std::vector<uint8_t> m_in;
    size_t m_in_begin = 0;
    size_t m_in_end = 0;
    InputMode m_mode = InputMode::kStaging;
    Cmd* m_payload_cmd = nullptr;  // WRITE whose payload is arriving
    uint32_t m_payload_have = 0;
    uint64_t m_skip_left = 0;     // payload bytes to discard
    Cmd* m_skip_cmd = nullptr;    // its error reply goes out once skipped (may be null)
    uint32_t m_skip_option = 0;   // option refused as too big once skipped (0: none)
    bool m_blocked = false;       // a request header waits for admission
    bool m_direct_input = false;  // the last input_space() was a payload buffer

    // Output: handshake bytes first, then command replies in completion order.
    std::vector<uint8_t> m_hs_out;
    size_t m_hs_sent = 0;
    std::deque<Cmd*> m_replies;
    size_t m_reply_sent = 0;  // bytes of m_replies.front() already sent

    std::vector<std::unique_ptr<Cmd>> m_cmds;  // every Cmd this session made
    std::vector<Cmd*> m_free;
    size_t m_pooled_bytes = 0;    // buffer bytes held by m_free
    uint32_t m_live = 0;          // commands taken and not yet released
    uint64_t m_window_used = 0;   // payload bytes charged to this client
    uint32_t m_io_in_flight = 0;  // backend requests not yet completed
    bool m_logged_io_error = false;
    SessionStats m_stats;
};

// Maps a backend error to the NBD error value a client understands (proto.md §Error values).
uint32_t nbd_error_from(const Error& error);

}  // namespace vireo::disk::nbd
