// NBD server: sockets and the epoll loop around nbd::Session (see server.hpp).
#include "disk/nbd/server.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "base/log.hpp"
#include "disk/io_context.hpp"

namespace vireo::disk::nbd {

namespace {

// epoll tags for the descriptors that are not clients.
constexpr uint64_t kTagListen = 1;
constexpr uint64_t kTagIo = 2;
constexpr uint64_t kTagStop = 3;
constexpr uint64_t kTagLastFixed = 3;

constexpr int kMaxReadsPerWakeup = 16;  // fairness between clients
constexpr size_t kMaxIovPerSend = 64;

spdlog::logger& logger() {
    static spdlog::logger& l = log::get("nbd");
    return l;
}

// "ADDR:PORT", "[V6]:PORT", "ADDR" -> host and port strings.
Result<std::pair<std::string, std::string>> split_bind(const std::string& bind) {
    std::string host;
    std::string port = std::to_string(kDefaultPort);
    if (!bind.empty() && bind.front() == '[') {
        size_t close = bind.find(']');
        if (close == std::string::npos) return make_error("nbd: bad address '{}': missing ']'", bind);
        host = bind.substr(1, close - 1);
        if (close + 1 < bind.size()) {
            if (bind[close + 1] != ':')
                return make_error("nbd: bad address '{}': expected ':' after ']'", bind);
            port = bind.substr(close + 2);
        }
    } else {
        size_t colon = bind.rfind(':');
        if (colon != std::string::npos && bind.find(':') != colon) {
            return make_error("nbd: bad address '{}': write IPv6 addresses as [ADDR]:PORT", bind);
        }
        host = colon == std::string::npos ? bind : bind.substr(0, colon);
        if (colon != std::string::npos) port = bind.substr(colon + 1);
    }
    if (host.empty())
        return make_error("nbd: bad address '{}': no host (use 127.0.0.1:PORT or 0.0.0.0:PORT)", bind);
    if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
        std::stoul(port) > 65535) {
        return make_error("nbd: bad address '{}': port must be a number from 0 to 65535", bind);
    }
    return std::pair{host, port};
}

std::string peer_name(const sockaddr_storage& ss) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        return fmt::format("{}:{}", host, ntohs(in->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        return fmt::format("[{}]:{}", host, ntohs(in6->sin6_port));
    }
    return "unix client";
}

// Percent-encodes what a URI path or query must not carry raw.
std::string uri_escape(std::string_view text) {
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || std::strchr("-._~/", c) != nullptr) {
            out += static_cast<char>(c);
        } else {
            out += fmt::format("%{:02X}", c);
        }
    }
    return out;
}

}  // namespace

struct Server::Client {
    UniqueFd fd;
    std::unique_ptr<Session> session;
    std::string peer;
    uint32_t events = 0;         // current epoll interest
    bool write_blocked = false;  // last send hit EAGAIN: wait for EPOLLOUT
    std::chrono::steady_clock::time_point accepted;
};

Server::Server(const Export& exp, const ServerOptions& options) : m_export(exp), m_options(options) {}

Result<std::unique_ptr<Server>> Server::create(const Export& exp, const ServerOptions& options) {
    if (exp.backend == nullptr) return make_error("nbd: no backend to export");
    if (exp.name.size() > kMaxStringLength) return make_error("nbd: export name longer than 4096 bytes");
    if (options.limits.client_window < options.limits.max_payload ||
        options.memory_budget < options.limits.max_payload) {
        return make_error("nbd: memory limits smaller than the maximum payload ({} bytes)",
                          options.limits.max_payload);
    }
    std::unique_ptr<Server> s(new Server(exp, options));
    s->m_budget = MemoryBudget(options.memory_budget);
    VIREO_ASSIGN_OR_RETURN(s->m_ctx, IoContext::create(1024));
    s->m_epoll = UniqueFd(::epoll_create1(EPOLL_CLOEXEC));
    if (!s->m_epoll) return os_error("nbd: epoll_create1");
    s->m_stop_event = UniqueFd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!s->m_stop_event) return os_error("nbd: eventfd");
    VIREO_TRY(s->listen());

    auto add = [&s](int fd, uint64_t tag) -> Status {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = tag;
        if (::epoll_ctl(s->m_epoll.get(), EPOLL_CTL_ADD, fd, &ev) < 0) return os_error("nbd: epoll_ctl");
        return {};
    };
    VIREO_TRY(add(s->m_listen.get(), kTagListen));
    VIREO_TRY(add(s->m_ctx->event_fd(), kTagIo));
    VIREO_TRY(add(s->m_stop_event.get(), kTagStop));
    if (options.stop_fd >= 0) VIREO_TRY(add(options.stop_fd, kTagStop));
    return s;
}

Server::~Server() {
    // Backend requests point into sessions: let whatever is still in flight finish first.
    for (auto& c : m_clients)
        c->session->hard_close("server destroyed");
    if (m_ctx) {
        if (auto s = m_ctx->drain(); !s.ok()) logger().error("{}", s.error().message());
    }
    m_clients.clear();
    if (m_created_socket_file) ::unlink(m_options.socket_path.c_str());
}

Status Server::listen() {
    if (!m_options.socket_path.empty()) {
        m_unix = true;
        const std::string& path = m_options.socket_path;
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path) {
            return make_error("nbd: socket path '{}' is longer than {} bytes", path,
                              sizeof addr.sun_path - 1);
        }
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            // A socket left by an earlier server is replaced; anything else is not ours to delete.
            if (!S_ISSOCK(st.st_mode)) return make_error("nbd: {} exists and is not a socket", path);
            ::unlink(path.c_str());
        }
        m_listen = UniqueFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
        if (!m_listen) return os_error("nbd: socket");
        if (::bind(m_listen.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
            return os_error(fmt::format("nbd: bind {}", path));
        }
        m_created_socket_file = true;
        if (::listen(m_listen.get(), 64) < 0) return os_error(fmt::format("nbd: listen on {}", path));
        m_address = path;
        return {};
    }

    VIREO_ASSIGN_OR_RETURN(auto hp, split_bind(m_options.bind));
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int r = ::getaddrinfo(hp.first.c_str(), hp.second.c_str(), &hints, &res); r != 0) {
        return make_error("nbd: cannot resolve '{}': {}", hp.first, ::gai_strerror(r));
    }
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(res, ::freeaddrinfo);
    Error last = make_error("nbd: no address for '{}'", m_options.bind);
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol));
        if (!fd) {
            last = os_error("nbd: socket");
            continue;
        }
        int one = 1;
        ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) < 0) {
            last = os_error(fmt::format("nbd: bind {}", m_options.bind));
            continue;
        }
        if (::listen(fd.get(), 64) < 0) {
            last = os_error(fmt::format("nbd: listen on {}", m_options.bind));
            continue;
        }
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
        m_port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                                : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
        char host[INET6_ADDRSTRLEN] = "";
        if (ss.ss_family == AF_INET6) {
            ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, host, sizeof host);
            m_address = fmt::format("[{}]:{}", host, m_port);
        } else {
            ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, host, sizeof host);
            m_address = fmt::format("{}:{}", host, m_port);
        }
        m_listen = std::move(fd);
        return {};
    }
    return last;
}

std::string Server::address() const {
    return m_address;
}

std::string Server::uri() const {
    if (m_unix)
        return fmt::format("nbd+unix:///{}?socket={}", uri_escape(m_export.name), uri_escape(m_address));
    return fmt::format("nbd://{}/{}", m_address, uri_escape(m_export.name));
}

void Server::stop() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_stop_event.get(), &one, sizeof one);
}

void Server::begin_stop() {
    if (m_stopping) return;
    m_stopping = true;
    m_stop_deadline = std::chrono::steady_clock::now() + m_options.shutdown_grace;
    ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_listen.get(), nullptr);
    m_listen.reset();
    for (auto& c : m_clients)
        c->session->begin_shutdown();
}

void Server::accept_clients() {
    for (;;) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        int fd =
            ::accept4(m_listen.get(), reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                logger().warn("nbd: accept on {}: {}", m_address, std::strerror(errno));
            }
            return;
        }
        UniqueFd client_fd(fd);
        if (m_clients.size() >= m_options.max_clients) {
            if (!m_warned_max_clients) {
                logger().warn("nbd: {} clients connected; refusing more (further refusals not logged)",
                              m_options.max_clients);
                m_warned_max_clients = true;
            }
            continue;  // closing the socket is the refusal
        }
        if (!m_unix) {
            // Replies are small and latency-bound; do not let Nagle hold them back.
            int one = 1;
            ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        auto c = std::make_unique<Client>();
        c->fd = std::move(client_fd);
        c->peer = m_unix ? "unix client" : peer_name(ss);
        c->session = std::make_unique<Session>(*m_ctx, m_export, m_options.limits, m_budget);
        c->accepted = std::chrono::steady_clock::now();
        epoll_event ev{};
        ev.events = 0;
        ev.data.ptr = c.get();
        if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_ADD, c->fd.get(), &ev) < 0) {
            logger().warn("nbd: epoll_ctl for {}: {}", c->peer, std::strerror(errno));
            continue;
        }
        logger().info("nbd: {} connected", c->peer);
        m_clients.push_back(std::move(c));
    }
}

void Server::read_client(Client& c) {
    for (int i = 0; i < kMaxReadsPerWakeup; ++i) {
        std::span<uint8_t> space = c.session->input_space();
        if (space.empty()) return;
        ssize_t n = ::recv(c.fd.get(), space.data(), space.size(), MSG_DONTWAIT);
        if (n > 0) {
            c.session->input_received(static_cast<size_t>(n));
            if (static_cast<size_t>(n) < space.size()) return;  // drained for now
            continue;
        }
        if (n == 0) {
            c.session->peer_closed();
            return;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return;
        c.session->hard_close(fmt::format("receive failed: {}", std::strerror(errno)));
        return;
    }
}

void Server::write_client(Client& c) {
    std::array<iovec, kMaxIovPerSend> iov;
    while (c.session->has_output()) {
        size_t k = c.session->gather_output(iov);
        msghdr msg{};
        msg.msg_iov = iov.data();
        msg.msg_iovlen = k;
        ssize_t n = ::sendmsg(c.fd.get(), &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            c.write_blocked = false;
            c.session->output_sent(static_cast<size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            c.write_blocked = true;
            return;
        }
        c.session->hard_close(fmt::format("send failed: {}", std::strerror(errno)));
        return;
    }
    c.write_blocked = false;
}

void Server::update_events(Client& c) {
    uint32_t want = 0;
    if (c.session->wants_input()) want |= EPOLLIN;
    if (c.write_blocked && c.session->has_output()) want |= EPOLLOUT;
    if (want == c.events) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.ptr = &c;
    if (::epoll_ctl(m_epoll.get(), EPOLL_CTL_MOD, c.fd.get(), &ev) == 0) c.events = want;
}

void Server::service_clients() {
    const auto now = std::chrono::steady_clock::now();
    const bool released = m_budget.take_released();
    for (auto& cp : m_clients) {
        Client& c = *cp;
        if (!c.fd) continue;  // closed, waiting for its I/O
        if (released) c.session->retry_blocked();
        if (!c.session->in_transmission() && now - c.accepted > m_options.handshake_timeout) {
            c.session->hard_close(
                fmt::format("handshake not finished within {} s", m_options.handshake_timeout.count()));
        }
        if (m_stopping && now > m_stop_deadline)
            c.session->hard_close("client did not finish before shutdown");
        if (!c.write_blocked && c.session->has_output()) write_client(c);
        if (c.session->finished()) {
            logger().info("nbd: {} disconnected: {}", c.peer, c.session->close_reason());
            ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, c.fd.get(), nullptr);
            c.fd.reset();
            continue;
        }
        update_events(c);
    }
    // Sessions whose socket is closed go once their last backend request completed.
    std::erase_if(m_clients, [](const std::unique_ptr<Client>& c) { return !c->fd && c->session->idle(); });
}

Status Server::run() {
    std::array<epoll_event, 64> events;
    for (;;) {
        if (m_stopping && m_clients.empty()) break;
        bool need_timer = m_stopping;
        for (const auto& c : m_clients)
            need_timer = need_timer || !c->session->in_transmission();
        int n = ::epoll_wait(m_epoll.get(), events.data(), static_cast<int>(events.size()),
                             need_timer ? 1000 : -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            return os_error("nbd: epoll_wait");
        }
        bool io_ready = false;
        for (int i = 0; i < n; ++i) {
            const epoll_event& ev = events[static_cast<size_t>(i)];
            if (ev.data.u64 <= kTagLastFixed) {
                switch (ev.data.u64) {
                    case kTagListen:
                        if (!m_stopping) accept_clients();
                        break;
                    case kTagIo:
                        io_ready = true;
                        break;
                    case kTagStop:
                        // Level-triggered and never read: take the stop descriptors out of the set.
                        ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_stop_event.get(), nullptr);
                        if (m_options.stop_fd >= 0)
                            ::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_options.stop_fd, nullptr);
                        begin_stop();
                        break;
                }
                continue;
            }
            auto* c = static_cast<Client*>(ev.data.ptr);
            if (!c->fd) continue;
            if ((ev.events & (EPOLLHUP | EPOLLERR)) != 0 && (ev.events & EPOLLIN) == 0) {
                c->session->hard_close("connection lost");
                continue;
            }
            if ((ev.events & EPOLLIN) != 0) read_client(*c);
            if ((ev.events & EPOLLOUT) != 0) c->write_blocked = false;
        }
        if (io_ready) m_ctx->poll();
        service_clients();
        if (auto s = m_ctx->submit(); !s.ok()) return s;
    }
    return {};
}

}  // namespace vireo::disk::nbd
