// HTTP/1.1 response parsing (RFC 9112 §4, §6) for the API client.
#include "vmm/api/http_response_parser.hpp"

#include <algorithm>
#include <cctype>

namespace vireo::vmm::api {
namespace {

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(),
                                     [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

}  // namespace

Result<ParsedResponse> parse_response(std::string_view input, bool eof) {
    size_t offset = 0;
    for (;;) {
        std::string_view rest = input.substr(offset);
        size_t end = rest.find("\r\n\r\n");
        if (end == std::string_view::npos) {
            if (rest.size() > kMaxResponseSize)
                return make_error("api response: head larger than {} bytes", kMaxResponseSize);
            if (eof) {
                return rest.empty()
                           ? make_error("api response: the server closed the connection without answering")
                           : make_error("api response: the server closed the connection mid-response");
            }
            return ParsedResponse{};
        }
        std::string_view head = rest.substr(0, end + 2);
        size_t eol = head.find("\r\n");
        std::string_view status_line = head.substr(0, eol);
        // status-line = HTTP-version SP status-code SP [ reason-phrase ]
        if (status_line.size() < 12 || status_line.substr(0, 7) != "HTTP/1." || status_line[8] != ' ' ||
            !all_digits(status_line.substr(9, 3)) || (status_line.size() > 12 && status_line[12] != ' ')) {
            return make_error("api response: malformed status line");
        }
        ParsedResponse parsed;
        parsed.response.status = std::stoi(std::string(status_line.substr(9, 3)));
        if (parsed.response.status < 100 || parsed.response.status > 599)
            return make_error("api response: status code {} out of range", parsed.response.status);
        parsed.response.content_type.clear();
        bool have_length = false;
        size_t length = 0;
        size_t pos = eol + 2;
        while (pos < head.size()) {
            size_t next = head.find("\r\n", pos);
            std::string_view line = head.substr(pos, next - pos);
            pos = next + 2;
            auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0)
                return make_error("api response: malformed header line");
            HttpHeader h{lower(line.substr(0, colon)), std::string(trim(line.substr(colon + 1)))};
            if (h.name == "content-length") {
                if (!all_digits(h.value) || h.value.size() > 9)
                    return make_error("api response: invalid Content-Length");
                length = std::stoul(h.value);
                if (length > kMaxResponseSize)
                    return make_error("api response: body larger than {} bytes", kMaxResponseSize);
                have_length = true;
            } else if (h.name == "transfer-encoding") {
                return make_error("api response: transfer codings are not supported");
            } else if (h.name == "content-type") {
                parsed.response.content_type = h.value;
            }
            parsed.response.headers.push_back(std::move(h));
        }
        size_t body_start = offset + end + 4;
        int status = parsed.response.status;
        if (status >= 100 && status < 200) {  // interim response: the final one follows
            offset = body_start;
            continue;
        }
        if (have_length) {
            if (input.size() - body_start < length) {
                if (eof) return make_error("api response: the server closed the connection mid-body");
                return ParsedResponse{};
            }
        } else {
            if (!eof) return ParsedResponse{};
            length = input.size() - body_start;
            if (length > kMaxResponseSize)
                return make_error("api response: body larger than {} bytes", kMaxResponseSize);
        }
        parsed.response.body.assign(input.substr(body_start, length));
        parsed.consumed = body_start + length;
        parsed.complete = true;
        return parsed;
    }
}

}  // namespace vireo::vmm::api
