// HTTP/1.1 request and response messages of the control API, and response serialization.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace vireo::vmm::api {

// Every request, head and body together, is refused above this size (413).
inline constexpr size_t kMaxRequestSize = 64 * 1024;

struct HttpHeader {
    std::string name;  // lower case (field names are case-insensitive, RFC 9110 §5.1)
    std::string value;
};

struct HttpRequest {
    std::string method;  // case-sensitive token (RFC 9110 §9.1)
    std::string target;  // origin-form, as sent: "/api/v1/vm"
    int minor_version = 1;
    std::vector<HttpHeader> headers;
    std::string body;
    // The client asked for the connection to end after this request (HTTP/1.0 without
    // keep-alive, or "Connection: close").
    bool close = false;

    // The first header with this lower-case name, or nullptr.
    const std::string* header(std::string_view lower_name) const;
    // The target without a query string.
    std::string_view path() const;
};

struct HttpResponse {
    int status = 200;
    std::vector<HttpHeader> headers;  // Content-Length and Connection are added by serialize()
    std::string body;
    std::string content_type = "application/json";

    // A JSON body {"error": message} with this status.
    static HttpResponse error(int status, std::string_view message);
};

// The reason phrase of a status code ("Not Found"); "Unknown" for codes the API never sends.
std::string_view reason_phrase(int status);

// The bytes on the wire; `close` adds "Connection: close".
std::string serialize(const HttpResponse& response, bool close);

}  // namespace vireo::vmm::api
