// Incremental, strict and bounded HTTP/1.1 request parser for the control API.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "vmm/api/http_message.hpp"

namespace vireo::vmm::api {

// Parses one request at a time from the front of a connection's input buffer. Strict on
// purpose (RFC 9112): CRLF line ends, no obsolete line folding, no whitespace before a
// header's colon, one consistent Content-Length, no transfer codings (a client that sends
// chunked bodies is told to send Content-Length instead). Bounded: the head and the body
// together may not exceed the request limit, so a client cannot make the server hold more
// than that per connection.
//
// Incremental: parse() may be called again with the same buffer grown by new bytes; work
// already done is not repeated, so a client sending one byte at a time costs O(n) in total.
class HttpRequestParser {
  public:
    enum class State {
        kIncomplete,  // more bytes needed
        kComplete,    // request() is ready; consumed() bytes of the input belong to it
        kError,       // error_status()/error_message() say why; the connection must close
    };

    explicit HttpRequestParser(size_t max_request_size = kMaxRequestSize) : m_max_size(max_request_size) {}

    // `input` starts where the previous request ended and holds everything received since.
    State parse(std::string_view input);

    const HttpRequest& request() const { return m_request; }
    HttpRequest take_request() { return std::move(m_request); }
    size_t consumed() const { return m_consumed; }
    int error_status() const { return m_error_status; }
    const std::string& error_message() const { return m_error_message; }
    // The head is in and the client waits for "100 Continue" before sending the body.
    bool wants_continue() const { return m_phase == Phase::kBody && m_expect_continue; }
    // Some bytes of a request have arrived (not just idle keep-alive).
    bool in_progress() const { return m_phase == Phase::kBody || m_scan > 0; }

    // Ready for the next request on the same connection.
    void reset();

  private:
    enum class Phase { kHead, kBody, kDone, kError };

    State fail(int status, std::string message);
    // Scans new bytes of the head for line-end and control-character errors as they arrive,
    // so garbage is refused at once instead of after the head is complete.
    bool scan_head(std::string_view input, size_t end);
    State parse_head(std::string_view head);
    bool parse_request_line(std::string_view line);
    bool parse_header_line(std::string_view line);
    bool apply_headers();

    size_t m_max_size;
    Phase m_phase = Phase::kHead;
    size_t m_start = 0;  // leading empty lines skipped (RFC 9112 §2.2)
    size_t m_scan = 0;   // bytes of the head already scanned
    size_t m_head_size = 0;
    size_t m_body_size = 0;
    size_t m_consumed = 0;
    bool m_expect_continue = false;
    HttpRequest m_request;
    int m_error_status = 0;
    std::string m_error_message;
};

}  // namespace vireo::vmm::api
