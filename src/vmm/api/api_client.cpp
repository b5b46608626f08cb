// Control API client: connect, send one request, read one response.
#include "vmm/api/api_client.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <fmt/format.h>

#include "base/io.hpp"
#include "vmm/api/http_response_parser.hpp"
#include "vmm/api/unix_listener.hpp"

namespace vireo::vmm::api {

Result<HttpResponse> api_request(const std::string& socket_path, std::string_view method,
                                 std::string_view path, std::string_view body,
                                 std::chrono::milliseconds timeout) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, connect_unix(socket_path));
    std::string request =
        fmt::format("{} {} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n", method, path);
    if (!body.empty()) request += "Content-Type: application/json\r\n";
    request += fmt::format("Content-Length: {}\r\nConnection: close\r\n\r\n", body.size());
    request += body;
    // MSG_NOSIGNAL: a server that closes early (413) must not kill the client with SIGPIPE;
    // its answer is still read below.
    size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = ::send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EPIPE || errno == ECONNRESET) break;
            return os_error(fmt::format("{}: send", socket_path));
        }
        sent += static_cast<size_t>(n);
    }
    auto deadline = std::chrono::steady_clock::now() + timeout;
    std::string in;
    bool eof = false;
    for (;;) {
        VIREO_ASSIGN_OR_RETURN(ParsedResponse parsed, parse_response(in, eof));
        if (parsed.complete) return std::move(parsed.response);
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                          std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return make_error("{}: no response within {} ms", socket_path, timeout.count());
        pollfd p{fd.get(), POLLIN, 0};
        int rc = ::poll(&p, 1, static_cast<int>(left.count()));
        if (rc < 0 && errno != EINTR) return os_error(fmt::format("{}: poll", socket_path));
        if (rc <= 0) continue;
        char buf[16384];
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            return os_error(fmt::format("{}: recv", socket_path));
        }
        if (n == 0)
            eof = true;
        else
            in.append(buf, static_cast<size_t>(n));
        if (in.size() > kMaxResponseSize + 65536)
            return make_error("{}: response larger than {} bytes", socket_path, kMaxResponseSize);
    }
}

}  // namespace vireo::vmm::api
