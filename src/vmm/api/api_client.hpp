// A blocking client for the control API: one request per connection (used by `vireo api`).
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "vmm/api/http_message.hpp"

namespace vireo::vmm::api {

// Sends `method path` with `body` (JSON, may be empty) to the API socket and returns the
// response. Transport failures (no socket, timeout, malformed response) are errors; HTTP error
// statuses are not: the caller reads response.status.
Result<HttpResponse> api_request(const std::string& socket_path, std::string_view method,
                                 std::string_view path, std::string_view body,
                                 std::chrono::milliseconds timeout = std::chrono::milliseconds(120'000));

}  // namespace vireo::vmm::api
