// NBD session: handshake, option haggling and transmission for one client (see session.hpp).
#include "disk/nbd/session.hpp"

#include <array>
#include <cassert>
#include <cstdlib>
#include <cstring>

#include "base/log.hpp"
#include "disk/io_context.hpp"

namespace vireo::disk::nbd {

namespace {

constexpr size_t kStagingSize = 128 << 10;
constexpr size_t kMaxPendingHandshakeOutput = 64 << 10;  // stop reading options past this
constexpr size_t kBufferAlign = 4096;                    // enough for O_DIRECT backends
constexpr size_t kMaxPooledBytes = 4 << 20;              // payload buffers kept for reuse
constexpr size_t kZeroBufferSize = 1 << 20;
constexpr size_t kZeroIovs = 8;  // NO_HOLE zeroes are written 8 MiB per backend request

// Shared read-only zeroes for NBD_CMD_WRITE_ZEROES with NO_HOLE (written as real data).
const uint8_t* zero_buffer() {
    static const uint8_t* buffer = [] {
        void* p = std::aligned_alloc(kBufferAlign, kZeroBufferSize);
        if (p == nullptr) std::abort();  // at startup of the first NO_HOLE request: out of memory
        std::memset(p, 0, kZeroBufferSize);
        return static_cast<const uint8_t*>(p);
    }();
    return buffer;
}

bool modifies(Command type) {
    return type == Command::kWrite || type == Command::kTrim || type == Command::kWriteZeroes;
}

// Export names come from the client: keep log lines and messages printable and short.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 256))
        out += (c >= 0x20 && c < 0x7f) ? c : '?';
    if (text.size() > 256) out += "...";
    return out;
}

template <typename T>
std::span<const uint8_t> bytes_of(const T& value) {
    return {reinterpret_cast<const uint8_t*>(&value), sizeof value};
}

}  // namespace

struct Session::Cmd {
    Command type{};
    uint16_t flags = 0;
    uint64_t handle = 0;
    uint64_t offset = 0;
    uint32_t length = 0;
    uint32_t error = 0;
    bool fua_done = false;
    uint8_t* buffer = nullptr;  // kBufferAlign-aligned, `capacity` bytes
    size_t capacity = 0;
    uint64_t charged = 0;  // payload bytes charged to the window and the budget
    iovec iov{};
    std::array<iovec, kZeroIovs> zero_iov{};
    uint64_t zero_pos = 0;
    uint64_t zero_end = 0;
    IoRequest io;
    SimpleReply reply{};

    ~Cmd() { std::free(buffer); }
    bool sends_data() const { return type == Command::kRead && error == 0 && length > 0; }
    size_t reply_size() const { return sizeof(SimpleReply) + (sends_data() ? length : 0); }
};

uint32_t nbd_error_from(const Error& error) {
    switch (error.os_error()) {
        case EPERM:
        case EROFS:
        case EACCES:
            return kEPerm;
        case ENOSPC:
        case EDQUOT:
        case EFBIG:
            return kENoSpc;
        case EINVAL:
            return kEInval;
        case ENOMEM:
            return kENoMem;
        case EOVERFLOW:
            return kEOverflow;
        case ESHUTDOWN:
            return kEShutdown;
        default:
            return kEIo;
    }
}

Session::Session(IoContext& ctx, const Export& exp, const Limits& limits, MemoryBudget& budget)
    : m_ctx(ctx),
      m_export(exp),
      m_limits(limits),
      m_budget(budget),
      m_size(exp.backend->size()),
      m_min_block(exp.backend->logical_block_size()) {
    // A size that is not a whole number of blocks would hide its tail from clients that honour
    // the minimum block size; such exports (odd-sized raw files) take byte-granular requests.
    if (m_min_block == 0 || m_size % m_min_block != 0) m_min_block = 1;
    m_in.resize(std::max(kStagingSize, size_t{m_limits.max_option_length} + sizeof(OptionHeader)));
    Greeting g{kInitMagic, kOptionMagic, static_cast<uint16_t>(kFlagFixedNewstyle | kFlagNoZeroes)};
    put_bytes(&g, sizeof g);
}

Session::~Session() {
    // Destroyed only when idle: no backend request still points into a Cmd.
    assert(m_io_in_flight == 0);
    for (auto& c : m_cmds) {
        if (c->charged > 0) m_budget.give(c->charged);
    }
}

uint16_t Session::transmission_flags() const {
    // All connections share one backend whose flush covers every completed write, so a flush on
    // one connection covers writes acknowledged on any other: multi-conn is safe.
    uint16_t flags = kFlagHasFlags | kFlagSendFlush | kFlagSendFua | kFlagCanMultiConn;
    if (m_export.read_only || m_export.backend->read_only()) {
        flags |= kFlagReadOnly;
    } else {
        flags |= kFlagSendTrim | kFlagSendWriteZeroes;
    }
    return flags;
}

uint32_t Session::preferred_block_size() const {
    return std::max<uint32_t>(4096, m_min_block);
}

bool Session::name_selects_export(std::string_view name) const {
    return name.empty() || name == m_export.name;
}

// ---------------------------------------------------------------------------------------------
// Transport side

std::span<uint8_t> Session::input_space() {
    m_direct_input = false;
    if (m_input_done || m_blocked) return {};
    if (m_hs_out.size() - m_hs_sent > kMaxPendingHandshakeOutput) return {};
    if (m_mode == InputMode::kPayload && m_in_begin == m_in_end) {
        // Large write payloads go straight into their buffer.
        m_in_begin = m_in_end = 0;
        m_direct_input = true;
        return {m_payload_cmd->buffer + m_payload_have, m_payload_cmd->length - m_payload_have};
    }
    if (m_in_begin > 0) {
        std::memmove(m_in.data(), m_in.data() + m_in_begin, m_in_end - m_in_begin);
        m_in_end -= m_in_begin;
        m_in_begin = 0;
    }
    return {m_in.data() + m_in_end, m_in.size() - m_in_end};
}

void Session::input_received(size_t n) {
    if (n == 0 || m_input_done) return;
    if (std::exchange(m_direct_input, false)) {
        assert(n <= m_payload_cmd->length - m_payload_have);
        m_payload_have += static_cast<uint32_t>(n);
        if (m_payload_have == m_payload_cmd->length) {
            Cmd* cmd = std::exchange(m_payload_cmd, nullptr);
            m_mode = InputMode::kStaging;
            start(cmd);
        }
    } else {
        assert(n <= m_in.size() - m_in_end);
        m_in_end += n;
    }
    process();
}

void Session::peer_closed() {
    if (m_input_done) return;
    m_input_done = true;
    if (m_close_reason.empty()) {
        m_close_reason = m_phase == Phase::kTransmission
                             ? "client closed the connection"
                             : "client closed the connection during the handshake";
    }
    if (m_payload_cmd != nullptr) release(std::exchange(m_payload_cmd, nullptr));
    if (m_skip_cmd != nullptr) release(std::exchange(m_skip_cmd, nullptr));
    m_mode = InputMode::kStaging;
    m_blocked = false;
}

void Session::hard_close(std::string reason) {
    if (m_hard) return;
    if (m_close_reason.empty()) m_close_reason = std::move(reason);
    m_hard = true;
    m_input_done = true;
    m_blocked = false;
    if (m_payload_cmd != nullptr) release(std::exchange(m_payload_cmd, nullptr));
    if (m_skip_cmd != nullptr) release(std::exchange(m_skip_cmd, nullptr));
    m_mode = InputMode::kStaging;
    for (Cmd* c : m_replies)
        release(c);
    m_replies.clear();
    m_reply_sent = 0;
    m_hs_out.clear();
    m_hs_sent = 0;
}

void Session::begin_shutdown() {
    if (m_phase != Phase::kTransmission) {
        hard_close("server shutting down");
        return;
    }
    if (m_input_done) return;
    // Requests in flight finish and are answered; a write whose payload is half-read is dropped
    // (the client never got a reply for it, so it cannot count on it).
    m_input_done = true;
    if (m_close_reason.empty()) m_close_reason = "server shutting down";
    if (m_payload_cmd != nullptr) release(std::exchange(m_payload_cmd, nullptr));
    if (m_skip_cmd != nullptr) release(std::exchange(m_skip_cmd, nullptr));
    m_mode = InputMode::kStaging;
    m_blocked = false;
}

void Session::retry_blocked() {
    if (!m_blocked) return;
    m_blocked = false;
    process();
}

bool Session::wants_input() const {
    return !m_input_done && !m_blocked && m_hs_out.size() - m_hs_sent <= kMaxPendingHandshakeOutput;
}

bool Session::has_output() const {
    return !m_hard && (m_hs_sent < m_hs_out.size() || !m_replies.empty());
}

bool Session::finished() const {
    return m_hard || (m_input_done && m_live == 0 && !has_output());
}

size_t Session::gather_output(std::span<iovec> out) const {
    if (m_hard) return 0;
    size_t k = 0;
    if (m_hs_sent < m_hs_out.size() && k < out.size()) {
        out[k++] = {const_cast<uint8_t*>(m_hs_out.data()) + m_hs_sent, m_hs_out.size() - m_hs_sent};
    }
    size_t skip = m_reply_sent;  // applies to the first reply only
    for (const Cmd* c : m_replies) {
        if (k == out.size()) break;
        if (skip < sizeof(SimpleReply)) {
            out[k++] = {reinterpret_cast<uint8_t*>(const_cast<SimpleReply*>(&c->reply)) + skip,
                        sizeof(SimpleReply) - skip};
            skip = 0;
        } else {
            skip -= sizeof(SimpleReply);
        }
        if (c->sends_data()) {
            if (k == out.size()) break;
            out[k++] = {c->buffer + skip, c->length - skip};
        }
        skip = 0;
    }
    return k;
}

void Session::output_sent(size_t n) {
    if (m_hs_sent < m_hs_out.size()) {
        size_t take = std::min(n, m_hs_out.size() - m_hs_sent);
        m_hs_sent += take;
        n -= take;
        if (m_hs_sent == m_hs_out.size()) {
            m_hs_out.clear();
            m_hs_sent = 0;
        }
    }
    while (n > 0 && !m_replies.empty()) {
        Cmd* c = m_replies.front();
        size_t take = std::min(n, c->reply_size() - m_reply_sent);
        m_reply_sent += take;
        n -= take;
        if (m_reply_sent == c->reply_size()) {
            m_replies.pop_front();
            m_reply_sent = 0;
            release(c);
        }
    }
    assert(n == 0);
    // Sent replies free commands and buffers: a blocked request may now fit.
    retry_blocked();
}

// ---------------------------------------------------------------------------------------------
// Parsing

void Session::process() {
    while (!m_input_done && !m_blocked && process_one()) {
    }
}

bool Session::process_one() {
    const size_t avail = m_in_end - m_in_begin;
    const uint8_t* p = m_in.data() + m_in_begin;

    switch (m_mode) {
        case InputMode::kSkip: {
            size_t n = static_cast<size_t>(std::min<uint64_t>(avail, m_skip_left));
            m_in_begin += n;
            m_skip_left -= n;
            if (m_skip_left > 0) return false;
            m_mode = InputMode::kStaging;
            if (m_skip_cmd != nullptr) queue_reply(std::exchange(m_skip_cmd, nullptr));
            if (m_skip_option != 0) {
                put_option_error(std::exchange(m_skip_option, 0), kRepErrTooBig,
                                 fmt::format("option data longer than {} bytes", m_limits.max_option_length));
            }
            return true;
        }
        case InputMode::kPayload: {
            Cmd* c = m_payload_cmd;
            size_t n = std::min<size_t>(avail, c->length - m_payload_have);
            std::memcpy(c->buffer + m_payload_have, p, n);
            m_in_begin += n;
            m_payload_have += static_cast<uint32_t>(n);
            if (m_payload_have < c->length) return false;
            m_payload_cmd = nullptr;
            m_mode = InputMode::kStaging;
            start(c);
            return true;
        }
        case InputMode::kStaging:
            break;
    }

    switch (m_phase) {
        case Phase::kClientFlags: {
            if (avail < 4) return false;
            uint32_t flags = load_be<uint32_t>(p);
            m_in_begin += 4;
            // proto.md §Client flags: the server MUST drop the connection on unknown flags.
            if ((flags & ~(kClientFlagFixedNewstyle | kClientFlagNoZeroes)) != 0) {
                hard_close(fmt::format("client sent unknown handshake flags {:#x}", flags));
                return false;
            }
            m_no_zeroes = (flags & kClientFlagNoZeroes) != 0;
            m_phase = Phase::kOptions;
            return true;
        }
        case Phase::kOptions: {
            if (avail < sizeof(OptionHeader)) return false;
            OptionHeader h;
            std::memcpy(&h, p, sizeof h);
            if (h.magic.get() != kOptionMagic) {
                hard_close(fmt::format("client sent a bad option magic {:#x}", h.magic.get()));
                return false;
            }
            if (++m_options_seen > m_limits.max_options) {
                hard_close(fmt::format("client sent more than {} options", m_limits.max_options));
                return false;
            }
            const uint32_t option = h.option.get();
            const uint32_t length = h.length.get();
            if (length > m_limits.max_option_length) {
                if (option == static_cast<uint32_t>(Option::kExportName)) {
                    // No way to refuse NBD_OPT_EXPORT_NAME but hanging up (proto.md).
                    hard_close("client asked for an export name that is too long");
                    return false;
                }
                m_in_begin += sizeof h;
                m_skip_left = length;
                m_skip_option = option;
                m_mode = InputMode::kSkip;
                return true;
            }
            if (avail < sizeof h + length) return false;
            m_in_begin += sizeof h + length;
            handle_option(option, {p + sizeof h, length});
            return true;
        }
        case Phase::kTransmission: {
            if (avail < sizeof(Request)) return false;
            Request req;
            std::memcpy(&req, p, sizeof req);
            if (req.magic.get() != kRequestMagic) {
                hard_close(fmt::format("client sent a bad request magic {:#x}", req.magic.get()));
                return false;
            }
            handle_request(req);  // consumes the header unless the request has to wait
            return !m_blocked;
        }
    }
    return false;
}

// ---------------------------------------------------------------------------------------------
// Handshake

void Session::put_bytes(const void* data, size_t n) {
    const auto* b = static_cast<const uint8_t*>(data);
    m_hs_out.insert(m_hs_out.end(), b, b + n);
}

void Session::put_option_reply(uint32_t option, uint32_t type, std::span<const uint8_t> data) {
    OptionReplyHeader h{kOptionReplyMagic, option, type, static_cast<uint32_t>(data.size())};
    put_bytes(&h, sizeof h);
    put_bytes(data.data(), data.size());
}

void Session::put_option_error(uint32_t option, uint32_t type, const std::string& message) {
    std::string_view text(message);
    text = text.substr(0, kMaxStringLength);
    put_option_reply(option, type, {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
}

void Session::handle_option(uint32_t option, std::span<const uint8_t> data) {
    switch (static_cast<Option>(option)) {
        case Option::kExportName: {
            if (data.size() > kMaxStringLength) {
                hard_close("client asked for an export name that is too long");
                return;
            }
            std::string_view name(reinterpret_cast<const char*>(data.data()), data.size());
            if (!name_selects_export(name)) {
                // NBD_OPT_EXPORT_NAME cannot fail politely: the server MUST terminate (proto.md).
                hard_close(fmt::format("client asked for unknown export '{}'", printable(name)));
                return;
            }
            ExportNameReply r{m_size, transmission_flags()};
            put_bytes(&r, sizeof r);
            if (!m_no_zeroes) {
                static constexpr uint8_t kZeroes[124] = {};
                put_bytes(kZeroes, sizeof kZeroes);
            }
            m_phase = Phase::kTransmission;
            return;
        }
        case Option::kAbort:
            // Data, if any, is ignored (proto.md: SHOULD ignore rather than reject).
            put_option_reply(option, kRepAck);
            m_input_done = true;
            m_close_reason = "client aborted the handshake";
            return;
        case Option::kList: {
            if (!data.empty()) {
                put_option_error(option, kRepErrInvalid, "NBD_OPT_LIST takes no data");
                return;
            }
            std::vector<uint8_t> entry(4);
            store_be<uint32_t>(entry.data(), static_cast<uint32_t>(m_export.name.size()));
            entry.insert(entry.end(), m_export.name.begin(), m_export.name.end());
            std::string_view desc = std::string_view(m_export.description).substr(0, kMaxStringLength);
            entry.insert(entry.end(), desc.begin(), desc.end());
            put_option_reply(option, kRepServer, entry);
            put_option_reply(option, kRepAck);
            return;
        }
        case Option::kInfo:
        case Option::kGo:
            handle_info_or_go(option, data);
            return;
        case Option::kStartTls:
            if (!data.empty()) {
                put_option_error(option, kRepErrInvalid, "NBD_OPT_STARTTLS takes no data");
            } else {
                put_option_error(option, kRepErrUnsup, "TLS is not supported by this server");
            }
            return;
        case Option::kStructuredReply:
            if (!data.empty()) {
                put_option_error(option, kRepErrInvalid, "NBD_OPT_STRUCTURED_REPLY takes no data");
            } else {
                put_option_error(option, kRepErrUnsup,
                                 "structured replies are not supported; simple replies only");
            }
            return;
        default:
            put_option_error(option, kRepErrUnsup, fmt::format("option {} is not supported", option));
            return;
    }
}

void Session::handle_info_or_go(uint32_t option, std::span<const uint8_t> data) {
    // proto.md §NBD_OPT_INFO and NBD_OPT_GO: u32 name length, name, u16 count, count x u16.
    if (data.size() < 6) {
        put_option_error(option, kRepErrInvalid, "option data shorter than 6 bytes");
        return;
    }
    const uint32_t name_length = load_be<uint32_t>(data.data());
    if (name_length > data.size() - 6) {
        put_option_error(option, kRepErrInvalid,
                         fmt::format("export name length {} exceeds the option data", name_length));
        return;
    }
    if (name_length > kMaxStringLength) {
        put_option_error(option, kRepErrInvalid, "export name longer than 4096 bytes");
        return;
    }
    std::string_view name(reinterpret_cast<const char*>(data.data() + 4), name_length);
    const uint16_t count = load_be<uint16_t>(data.data() + 4 + name_length);
    if (data.size() != 4 + name_length + 2 + size_t{count} * 2) {
        put_option_error(option, kRepErrInvalid,
                         fmt::format("{} information requests do not match the option length", count));
        return;
    }
    if (!name_selects_export(name)) {
        put_option_error(option, kRepErrUnknown,
                         fmt::format("no export named '{}' (this server exports '{}')", printable(name),
                                     printable(m_export.name)));
        return;
    }
    bool want_name = false;
    bool want_description = false;
    for (uint16_t i = 0; i < count; ++i) {
        uint16_t type = load_be<uint16_t>(data.data() + 4 + name_length + 2 + size_t{i} * 2);
        if (type == kInfoName) want_name = true;
        if (type == kInfoDescription) want_description = true;
        // Unknown requests are ignored; block sizes are always sent.
    }

    InfoExport info{kInfoExport, m_size, transmission_flags()};
    put_option_reply(option, kRepInfo, bytes_of(info));
    if (want_name) {
        std::vector<uint8_t> payload(2);
        store_be<uint16_t>(payload.data(), kInfoName);
        payload.insert(payload.end(), m_export.name.begin(), m_export.name.end());
        put_option_reply(option, kRepInfo, payload);
    }
    if (want_description && !m_export.description.empty()) {
        std::vector<uint8_t> payload(2);
        store_be<uint16_t>(payload.data(), kInfoDescription);
        std::string_view desc = std::string_view(m_export.description).substr(0, kMaxStringLength);
        payload.insert(payload.end(), desc.begin(), desc.end());
        put_option_reply(option, kRepInfo, payload);
    }
    InfoBlockSize sizes{kInfoBlockSize, m_min_block, preferred_block_size(), m_limits.max_payload};
    put_option_reply(option, kRepInfo, bytes_of(sizes));
    put_option_reply(option, kRepAck);
    if (option == static_cast<uint32_t>(Option::kGo)) m_phase = Phase::kTransmission;
}

// ---------------------------------------------------------------------------------------------
// Transmission

uint32_t Session::validate(Command type, uint16_t flags, uint64_t offset, uint32_t length) const {
    uint16_t allowed = kCmdFlagFua;  // valid on every command once SEND_FUA is advertised
    switch (type) {
        case Command::kRead:
        case Command::kWrite:
        case Command::kFlush:
        case Command::kTrim:
            break;
        case Command::kWriteZeroes:
            allowed |= kCmdFlagNoHole;  // FAST_ZERO is not advertised: EINVAL (proto.md)
            break;
        default:
            return kEInval;  // unknown or not advertised (CACHE, BLOCK_STATUS, RESIZE, ...)
    }
    if ((flags & ~allowed) != 0) return kEInval;
    if (modifies(type) && (m_export.read_only || m_export.backend->read_only())) return kEPerm;
    if (type == Command::kFlush) return 0;  // offset and length are reserved
    if ((type == Command::kRead || type == Command::kWrite) && length > m_limits.max_payload) return kEInval;
    if (offset > m_size || length > m_size - offset) {
        // proto.md §Error values: ENOSPC for writes past the end, EINVAL for reads and trims.
        return (type == Command::kWrite || type == Command::kWriteZeroes) ? kENoSpc : kEInval;
    }
    if (m_min_block > 1 && (offset % m_min_block != 0 || length % m_min_block != 0)) return kEInval;
    return 0;
}

bool Session::admit(uint64_t bytes) {
    // One command is always admitted (bytes <= max_payload); more only within the window.
    if (m_window_used > 0 &&
        bytes > m_limits.client_window - std::min(m_limits.client_window, m_window_used)) {
        return false;
    }
    if (!m_budget.try_take(bytes)) return false;
    m_window_used += bytes;
    return true;
}

void Session::handle_request(const Request& req) {
    const auto type = static_cast<Command>(req.type.get());
    const uint16_t flags = req.flags.get();
    const uint64_t offset = req.offset.get();
    const uint32_t length = req.length.get();

    if (type == Command::kDisc) {
        // No reply; requests in flight are finished and answered before the close (proto.md).
        m_in_begin += sizeof(Request);
        m_input_done = true;
        m_close_reason = "client disconnected";
        return;
    }
    const uint32_t error = validate(type, flags, offset, length);
    const uint64_t bytes = (error == 0 && (type == Command::kRead || type == Command::kWrite)) ? length : 0;
    if (m_live >= m_limits.max_commands || (bytes > 0 && !admit(bytes))) {
        m_blocked = true;  // the header stays in the staging buffer until there is room
        return;
    }
    m_in_begin += sizeof(Request);
    ++m_stats.commands;

    Cmd* c = new_cmd();
    c->type = type;
    c->flags = flags;
    c->handle = req.handle.get();
    c->offset = offset;
    c->length = length;
    c->error = error;
    c->charged = bytes;

    if (bytes > 0 && c->capacity < bytes) {
        std::free(c->buffer);
        c->capacity = 0;
        size_t capacity = (bytes + kBufferAlign - 1) & ~(kBufferAlign - 1);
        c->buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlign, capacity));
        if (c->buffer == nullptr) {
            c->error = kENoMem;
        } else {
            c->capacity = capacity;
        }
    }
    if (type == Command::kWrite && length > 0 && c->error == 0) {
        m_payload_cmd = c;
        m_payload_have = 0;
        m_mode = InputMode::kPayload;
        return;
    }
    if (type == Command::kWrite && length > 0) {
        // The payload follows whatever the verdict: read past it, then answer.
        m_skip_left = length;
        m_skip_cmd = c;
        m_mode = InputMode::kSkip;
        return;
    }
    if (c->error != 0) {
        queue_reply(c);
        return;
    }
    start(c);
}

void Session::start(Cmd* c) {
    switch (c->type) {
        case Command::kRead:
        case Command::kWrite:
            if (c->length == 0) break;
            c->iov = {c->buffer, c->length};
            submit_io(c, c->type == Command::kRead ? IoOp::kRead : IoOp::kWrite, c->offset, c->length,
                      {&c->iov, 1});
            return;
        case Command::kFlush:
            submit_io(c, IoOp::kFlush, 0, 0, {});
            return;
        case Command::kTrim:
            if (c->length == 0) break;
            submit_io(c, IoOp::kDiscard, c->offset, c->length, {});
            return;
        case Command::kWriteZeroes:
            if (c->length == 0) break;
            if ((c->flags & kCmdFlagNoHole) != 0) {
                // The area must stay allocated: write real zeroes rather than let the backend
                // punch a hole.
                c->zero_pos = c->offset;
                c->zero_end = c->offset + c->length;
                submit_next_zeroes(c);
            } else {
                submit_io(c, IoOp::kWriteZeroes, c->offset, c->length, {});
            }
            return;
        default:
            break;
    }
    queue_reply(c);
}

void Session::submit_next_zeroes(Cmd* c) {
    uint64_t chunk = std::min<uint64_t>(c->zero_end - c->zero_pos, kZeroIovs * kZeroBufferSize);
    size_t k = 0;
    for (uint64_t left = chunk; left > 0; ++k) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, kZeroBufferSize));
        c->zero_iov[k] = {const_cast<uint8_t*>(zero_buffer()), n};
        left -= n;
    }
    uint64_t at = c->zero_pos;
    c->zero_pos += chunk;
    submit_io(c, IoOp::kWrite, at, chunk, {c->zero_iov.data(), k});
}

void Session::submit_io(Cmd* c, IoOp op, uint64_t offset, uint64_t length, std::span<const iovec> iov) {
    c->io.op = op;
    c->io.offset = offset;
    c->io.length = length;
    c->io.iov = iov;
    ++m_io_in_flight;
    m_export.backend->submit(m_ctx, c->io);
}

void Session::io_done(Cmd* c, const Status& status) {
    --m_io_in_flight;
    if (m_hard) {
        release(c);
        notify();
        return;
    }
    if (!status.ok()) {
        c->error = nbd_error_from(status.error());
        if (!m_logged_io_error) {
            m_logged_io_error = true;
            log::get("nbd").warn("{}: I/O error answered to the client (further errors not logged): {}",
                                 m_export.backend->describe(), status.error().message());
        }
    } else {
        if (c->type == Command::kWriteZeroes && c->zero_pos < c->zero_end) {
            submit_next_zeroes(c);
            return;
        }
        if ((c->flags & kCmdFlagFua) != 0 && modifies(c->type) && !c->fua_done) {
            // FUA: the reply waits until the data is durable.
            c->fua_done = true;
            submit_io(c, IoOp::kFlush, 0, 0, {});
            return;
        }
        if (c->type == Command::kRead) m_stats.bytes_read += c->length;
        if (c->type == Command::kWrite) m_stats.bytes_written += c->length;
    }
    queue_reply(c);
}

void Session::queue_reply(Cmd* c) {
    if (m_hard) {
        release(c);
        notify();
        return;
    }
    c->reply = SimpleReply{kSimpleReplyMagic, c->error, c->handle};
    if (c->error != 0) ++m_stats.errors_replied;
    m_replies.push_back(c);
    notify();
}

Session::Cmd* Session::new_cmd() {
    Cmd* c;
    if (m_free.empty()) {
        m_cmds.push_back(std::make_unique<Cmd>());
        c = m_cmds.back().get();
        c->io.complete = [this, c](IoRequest&, Status status) { io_done(c, status); };
    } else {
        c = m_free.back();
        m_free.pop_back();
        m_pooled_bytes -= c->capacity;
    }
    ++m_live;
    return c;
}

void Session::release(Cmd* c) {
    if (c->charged > 0) {
        m_window_used -= c->charged;
        m_budget.give(c->charged);
        c->charged = 0;
    }
    // Keep small buffers for reuse, within a bound; give big ones back.
    if (m_pooled_bytes + c->capacity > kMaxPooledBytes) {
        std::free(c->buffer);
        c->buffer = nullptr;
        c->capacity = 0;
    }
    m_pooled_bytes += c->capacity;
    c->error = 0;
    c->fua_done = false;
    c->zero_pos = c->zero_end = 0;
    c->io.iov = {};
    m_free.push_back(c);
    --m_live;
}

void Session::notify() {
    if (m_notify) m_notify();
}

}  // namespace vireo::disk::nbd
