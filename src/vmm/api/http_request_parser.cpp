// HTTP/1.1 request parsing (RFC 9112 §2-§6), strict and bounded.
#include "vmm/api/http_request_parser.hpp"

#include <algorithm>
#include <cctype>

#include <fmt/format.h>

namespace vireo::vmm::api {
namespace {

constexpr size_t kMaxMethodLength = 16;
constexpr size_t kMaxTargetLength = 4096;
constexpr size_t kMaxHeaderCount = 64;

// tchar (RFC 9110 §5.6.2)
bool is_tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) ||
           std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

// field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5)
bool is_field_char(char c) {
    auto u = static_cast<unsigned char>(c);
    return u == '\t' || (u >= 0x20 && u != 0x7F);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

std::string to_lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

// Quotes bytes from the client for an error message, escaping what is not printable.
std::string quote(std::string_view s) {
    constexpr size_t kMaxQuoted = 64;
    std::string out;
    for (size_t i = 0; i < s.size() && i < kMaxQuoted; ++i) {
        auto u = static_cast<unsigned char>(s[i]);
        if (u >= 0x20 && u < 0x7F && u != '"' && u != '\\')
            out += static_cast<char>(u);
        else
            out += fmt::format("\\x{:02x}", u);
    }
    if (s.size() > kMaxQuoted) out += "...";
    return out;
}

}  // namespace

void HttpRequestParser::reset() {
    m_phase = Phase::kHead;
    m_start = m_scan = m_head_size = m_body_size = m_consumed = 0;
    m_expect_continue = false;
    m_request = HttpRequest{};
    m_error_status = 0;
    m_error_message.clear();
}

HttpRequestParser::State HttpRequestParser::fail(int status, std::string message) {
    m_phase = Phase::kError;
    m_error_status = status;
    m_error_message = std::move(message);
    return State::kError;
}

HttpRequestParser::State HttpRequestParser::parse(std::string_view input) {
    switch (m_phase) {
        case Phase::kError:
            return State::kError;
        case Phase::kDone:
            return State::kComplete;
        case Phase::kBody:
            break;
        case Phase::kHead: {
            // Leading empty lines before the request line are ignored (RFC 9112 §2.2).
            if (m_scan == 0) {
                while (input.size() >= m_start + 2 && input[m_start] == '\r' && input[m_start + 1] == '\n')
                    m_start += 2;
                if (m_start >= m_max_size) return fail(413, "request larger than the 64 KiB limit");
                if (input.size() <= m_start || (input.size() == m_start + 1 && input[m_start] == '\r'))
                    return State::kIncomplete;
            }
            std::string_view rest = input.substr(m_start);
            size_t limit = std::min(rest.size(), m_max_size - m_start);
            size_t from = m_scan >= 3 ? m_scan - 3 : 0;
            size_t end = rest.substr(0, limit).find("\r\n\r\n", from);
            size_t scan_to = end == std::string_view::npos ? limit : end + 4;
            if (!scan_head(rest, scan_to)) return State::kError;
            if (end == std::string_view::npos) {
                if (rest.size() >= m_max_size - m_start)
                    return fail(413, "request head larger than the 64 KiB limit");
                return State::kIncomplete;
            }
            m_head_size = m_start + end + 4;
            if (parse_head(rest.substr(0, end + 2)) == State::kError) return State::kError;
            m_phase = Phase::kBody;
            break;
        }
    }
    if (input.size() < m_head_size + m_body_size) return State::kIncomplete;
    m_request.body.assign(input.substr(m_head_size, m_body_size));
    m_consumed = m_head_size + m_body_size;
    m_phase = Phase::kDone;
    return State::kComplete;
}

bool HttpRequestParser::scan_head(std::string_view input, size_t end) {
    for (size_t i = m_scan; i < end; ++i) {
        auto u = static_cast<unsigned char>(input[i]);
        if (u == '\n') {
            if (i == 0 || input[i - 1] != '\r') {
                fail(400, fmt::format("bare LF at byte {} of the request head (lines end with CRLF)",
                                      m_start + i));
                return false;
            }
        } else if (u == '\r') {
            if (i + 1 == input.size()) {
                // Its partner has not arrived: check this byte again with the next ones.
                m_scan = std::max(m_scan, i);
                return true;
            }
            if (input[i + 1] != '\n') {
                fail(400, fmt::format("bare CR at byte {} of the request head", m_start + i));
                return false;
            }
        } else if ((u < 0x20 && u != '\t') || u == 0x7F) {
            fail(400,
                 fmt::format("control character 0x{:02x} at byte {} of the request head", u, m_start + i));
            return false;
        }
        // The request line is checked as soon as it is complete: garbage gets its 400 at once.
        if (u == '\n' && m_request.method.empty()) {
            if (!parse_request_line(input.substr(0, i - 1))) return false;
        }
    }
    m_scan = std::max(m_scan, end);
    return true;
}

bool HttpRequestParser::parse_request_line(std::string_view line) {
    // request-line = method SP request-target SP HTTP-version (RFC 9112 §3)
    auto sp1 = line.find(' ');
    if (sp1 == std::string_view::npos) {
        fail(400, fmt::format("malformed request line \"{}\"", quote(line)));
        return false;
    }
    auto sp2 = line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
        fail(400, fmt::format("malformed request line \"{}\"", quote(line)));
        return false;
    }
    std::string_view method = line.substr(0, sp1);
    std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::string_view version = line.substr(sp2 + 1);
    if (!is_token(method) || method.size() > kMaxMethodLength) {
        fail(400, fmt::format("malformed method \"{}\"", quote(method)));
        return false;
    }
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" ||
        !std::isdigit(static_cast<unsigned char>(version[5])) || version[6] != '.' ||
        !std::isdigit(static_cast<unsigned char>(version[7]))) {
        fail(400, fmt::format("malformed HTTP version \"{}\"", quote(version)));
        return false;
    }
    if (version[5] != '1') {
        fail(505, fmt::format("HTTP version {} is not supported (use HTTP/1.1)", quote(version)));
        return false;
    }
    if (target.empty() || target.front() != '/') {
        fail(400, fmt::format("request target \"{}\" is not an absolute path", quote(target)));
        return false;
    }
    if (target.size() > kMaxTargetLength) {
        fail(400, fmt::format("request target longer than {} bytes", kMaxTargetLength));
        return false;
    }
    for (char c : target) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7F) {
            fail(400,
                 fmt::format("request target \"{}\" holds a byte that is not visible ASCII", quote(target)));
            return false;
        }
    }
    m_request.method = std::string(method);
    m_request.target = std::string(target);
    m_request.minor_version = version[7] - '0';
    return true;
}

HttpRequestParser::State HttpRequestParser::parse_head(std::string_view head) {
    // head = request-line CRLF *( field-line CRLF ); the request line was parsed by scan_head.
    size_t pos = head.find("\r\n") + 2;
    while (pos < head.size()) {
        size_t eol = head.find("\r\n", pos);
        if (!parse_header_line(head.substr(pos, eol - pos))) return State::kError;
        pos = eol + 2;
    }
    if (!apply_headers()) return State::kError;
    return State::kIncomplete;
}

bool HttpRequestParser::parse_header_line(std::string_view line) {
    if (line.front() == ' ' || line.front() == '\t') {
        fail(400, "obsolete line folding in the request head (RFC 9112 §5.2)");
        return false;
    }
    auto colon = line.find(':');
    if (colon == std::string_view::npos) {
        fail(400, fmt::format("malformed header line \"{}\"", quote(line)));
        return false;
    }
    std::string_view name = line.substr(0, colon);
    if (!is_token(name)) {
        // Includes whitespace before the colon (RFC 9112 §5.1: MUST be rejected).
        fail(400, fmt::format("malformed header name \"{}\"", quote(name)));
        return false;
    }
    std::string_view value = trim_ows(line.substr(colon + 1));
    if (!std::all_of(value.begin(), value.end(), is_field_char)) {
        fail(400, fmt::format("header {} holds a control character", quote(name)));
        return false;
    }
    if (m_request.headers.size() >= kMaxHeaderCount) {
        fail(400, fmt::format("more than {} header fields", kMaxHeaderCount));
        return false;
    }
    m_request.headers.push_back({to_lower(name), std::string(value)});
    return true;
}

bool HttpRequestParser::apply_headers() {
    bool keep_alive = false;
    bool close = false;
    bool have_length = false;
    uint64_t length = 0;
    for (const auto& h : m_request.headers) {
        if (h.name == "content-length") {
            // 1*DIGIT; repeated fields must agree (RFC 9112 §6.3 item 5)
            if (h.value.empty() || h.value.size() > 18 ||
                !std::all_of(h.value.begin(), h.value.end(),
                             [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
                fail(400, fmt::format("invalid Content-Length \"{}\"", quote(h.value)));
                return false;
            }
            uint64_t v = std::stoull(h.value);
            if (have_length && v != length) {
                fail(400, "conflicting Content-Length fields");
                return false;
            }
            have_length = true;
            length = v;
        } else if (h.name == "transfer-encoding") {
            fail(411, "chunked or encoded request bodies are not supported; send Content-Length");
            return false;
        } else if (h.name == "expect") {
            if (to_lower(h.value) != "100-continue") {
                fail(417, fmt::format("unsupported expectation \"{}\"", quote(h.value)));
                return false;
            }
            m_expect_continue = true;
        } else if (h.name == "connection") {
            std::string_view list = h.value;
            while (!list.empty()) {
                auto comma = list.find(',');
                std::string token = to_lower(trim_ows(list.substr(0, comma)));
                if (token == "close") close = true;
                if (token == "keep-alive") keep_alive = true;
                list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
            }
        }
    }
    if (length > m_max_size || m_head_size + length > m_max_size) {
        fail(413, fmt::format("request of {} bytes is larger than the 64 KiB limit", m_head_size + length));
        return false;
    }
    m_body_size = static_cast<size_t>(length);
    if (m_body_size == 0) m_expect_continue = false;
    m_request.close = close || (m_request.minor_version == 0 && !keep_alive);
    return true;
}

}  // namespace vireo::vmm::api
