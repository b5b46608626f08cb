// HTTP/1.1 response parsing for the API client (`vireo api`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "vmm/api/http_message.hpp"

namespace vireo::vmm::api {

// Responses larger than this are refused: the API never sends anything close.
inline constexpr size_t kMaxResponseSize = 16 * 1024 * 1024;

struct ParsedResponse {
    bool complete = false;  // false: more bytes are needed
    HttpResponse response;
    size_t consumed = 0;
};

// Parses the response at the front of `input` (everything received so far; `eof` once the
// server closed the connection). Interim 1xx responses are skipped. A response without
// Content-Length ends at end of file. Malformed responses are errors naming the problem.
Result<ParsedResponse> parse_response(std::string_view input, bool eof);

}  // namespace vireo::vmm::api
