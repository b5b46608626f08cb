// HTTP message helpers: header lookup, error bodies, reason phrases, response serialization.
#include "vmm/api/http_message.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vireo::vmm::api {

const std::string* HttpRequest::header(std::string_view lower_name) const {
    for (const auto& h : headers) {
        if (h.name == lower_name) return &h.value;
    }
    return nullptr;
}

std::string_view HttpRequest::path() const {
    std::string_view t = target;
    auto q = t.find('?');
    return q == std::string_view::npos ? t : t.substr(0, q);
}

HttpResponse HttpResponse::error(int status, std::string_view message) {
    HttpResponse r;
    r.status = status;
    // dump() with replace: the message may quote bytes a client sent, which need not be UTF-8.
    r.body = nlohmann::json{{"error", std::string(message)}}.dump(-1, ' ', false,
                                                                  nlohmann::json::error_handler_t::replace) +
             "\n";
    return r;
}

std::string_view reason_phrase(int status) {
    switch (status) {  // RFC 9110 §15
        case 100:
            return "Continue";
        case 200:
            return "OK";
        case 204:
            return "No Content";
        case 400:
            return "Bad Request";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 408:
            return "Request Timeout";
        case 409:
            return "Conflict";
        case 411:
            return "Length Required";
        case 413:
            return "Content Too Large";
        case 415:
            return "Unsupported Media Type";
        case 417:
            return "Expectation Failed";
        case 500:
            return "Internal Server Error";
        case 501:
            return "Not Implemented";
        case 503:
            return "Service Unavailable";
        case 505:
            return "HTTP Version Not Supported";
        default:
            return "Unknown";
    }
}

std::string serialize(const HttpResponse& response, bool close) {
    std::string out = fmt::format("HTTP/1.1 {} {}\r\n", response.status, reason_phrase(response.status));
    out += "Server: vireo-vmm\r\n";
    for (const auto& h : response.headers)
        out += fmt::format("{}: {}\r\n", h.name, h.value);
    if (!response.body.empty()) out += fmt::format("Content-Type: {}\r\n", response.content_type);
    out += fmt::format("Content-Length: {}\r\n", response.body.size());
    if (close) out += "Connection: close\r\n";
    out += "\r\n";
    out += response.body;
    return out;
}

}  // namespace vireo::vmm::api
