// Control API server: epoll loop over the listening socket and non-blocking client connections.
#include "vmm/api/api_server.hpp"

#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "base/log.hpp"

namespace vireo::vmm::api {
namespace {

constexpr size_t kReadChunk = 16 * 1024;
// Input held per connection: one whole request plus a little of the next (pipelining).
constexpr size_t kMaxBufferedInput = kMaxRequestSize + kReadChunk;
// Responses queued for a client that does not read; above this no further request is handled.
constexpr size_t kMaxPendingOutput = 1024 * 1024;
// After an error response, the rest of what the client sends is read and dropped for a while
// before closing, so the client gets to read the response instead of a reset connection.
constexpr size_t kMaxDrainBytes = 1024 * 1024;
constexpr std::chrono::milliseconds kDrainTimeout{2'000};
// On stop(), how long pending responses may take to reach their clients.
constexpr std::chrono::milliseconds kStopGrace{500};
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

spdlog::logger& logger() {
    static spdlog::logger& l = log::get("api");
    return l;
}

}  // namespace

struct ApiServer::Connection {
    UniqueFd fd;
    std::string in;
    std::string out;
    size_t out_pos = 0;
    HttpRequestParser parser;
    bool continue_sent = false;
    bool request_started = false;
    bool close_after_write = false;  // the connection ends once `out` is written
    bool draining = false;           // write side shut; discarding input until EOF or timeout
    bool peer_eof = false;
    bool output_blocked = false;  // requests wait in `in` until the client reads its answers
    bool registered = false;
    size_t drained = 0;
    uint32_t interest = 0;
    Clock::time_point last_activity;
    Clock::time_point request_start;
    Clock::time_point drain_deadline;

    size_t pending() const { return out.size() - out_pos; }
};

ApiServer::ApiServer(ApiServerOptions options, Handler handler, std::unique_ptr<UnixListener> listener,
                     UniqueFd epoll, UniqueFd wake)
    : m_options(std::move(options)),
      m_handler(std::move(handler)),
      m_listener(std::move(listener)),
      m_epoll(std::move(epoll)),
      m_wake(std::move(wake)) {}

Result<std::unique_ptr<ApiServer>> ApiServer::start(ApiServerOptions options, Handler handler) {
    VIREO_ASSIGN_OR_RETURN(auto listener, UnixListener::create(options.socket_path));
    UniqueFd epoll(::epoll_create1(EPOLL_CLOEXEC));
    if (!epoll) return os_error("api: epoll_create1");
    UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake) return os_error("api: eventfd");
    for (int fd : {listener->fd(), wake.get()}) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (::epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return os_error("api: epoll_ctl");
    }
    std::unique_ptr<ApiServer> server(new ApiServer(std::move(options), std::move(handler),
                                                    std::move(listener), std::move(epoll), std::move(wake)));
    server->m_thread = std::thread([s = server.get()] { s->run(); });
    return server;
}

ApiServer::~ApiServer() {
    stop();
}

void ApiServer::stop() {
    if (!m_thread.joinable()) return;
    m_stopping.store(true);
    uint64_t one = 1;
    (void)!::write(m_wake.get(), &one, sizeof one);
    m_thread.join();
}

void ApiServer::run() {
    pthread_setname_np(pthread_self(), "vireo-api");
    std::optional<Clock::time_point> stop_deadline;
    epoll_event events[32];
    for (;;) {
        Clock::time_point now = Clock::now();
        if (m_stopping.load() && !stop_deadline) {
            // No new clients and no new requests; only pending responses are written out.
            stop_deadline = now + kStopGrace;
            (void)::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, m_listener->fd(), nullptr);
            m_listener->close();
        }
        if (stop_deadline) {
            std::vector<int> idle;
            for (auto& [fd, c] : m_connections) {
                if (c->pending() == 0 || now >= *stop_deadline)
                    idle.push_back(fd);
                else
                    update_interest(*c);
            }
            for (int fd : idle)
                close_connection(fd);
            if (m_connections.empty()) break;
        }
        int timeout = sweep(now);
        if (stop_deadline) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(*stop_deadline - now).count() + 1;
            timeout = timeout < 0 ? static_cast<int>(left) : std::min(timeout, static_cast<int>(left));
        }
        int n = ::epoll_wait(m_epoll.get(), events, 32, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            logger().error("api: epoll_wait: {}", std::strerror(errno));
            break;
        }
        for (int i = 0; i < n; ++i) {
            int fd = events[i].data.fd;
            if (fd == m_wake.get()) {
                uint64_t v;
                (void)!::read(fd, &v, sizeof v);
            } else if (m_listener->fd() >= 0 && fd == m_listener->fd()) {
                if (!m_stopping.load()) accept_clients();
            } else if (auto it = m_connections.find(fd); it != m_connections.end()) {
                on_event(*it->second, events[i].events);
            }
        }
    }
    std::vector<int> fds;
    for (auto& [fd, c] : m_connections)
        fds.push_back(fd);
    for (int fd : fds)
        close_connection(fd);
    m_listener->close();
}

void ApiServer::accept_clients() {
    for (;;) {
        int fd = ::accept4(m_listener->fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED)
                logger().warn("api: accept: {}", std::strerror(errno));
            return;
        }
        if (m_connections.size() >= m_options.max_connections) evict_one();
        auto c = std::make_unique<Connection>();
        c->fd = UniqueFd(fd);
        c->last_activity = Clock::now();
        Connection& ref = *c;
        m_connections.emplace(fd, std::move(c));
        update_interest(ref);
    }
}

void ApiServer::evict_one() {
    auto oldest = std::min_element(
        m_connections.begin(), m_connections.end(),
        [](const auto& a, const auto& b) { return a.second->last_activity < b.second->last_activity; });
    if (oldest == m_connections.end()) return;
    logger().info("api: connection limit ({}) reached; dropping the longest-quiet client",
                  m_options.max_connections);
    close_connection(oldest->first);
}

void ApiServer::update_interest(Connection& c) {
    uint32_t want = 0;
    if (c.draining) {
        want = EPOLLIN;
    } else {
        if (!m_stopping.load() && !c.close_after_write && !c.peer_eof && c.in.size() < kMaxBufferedInput &&
            c.pending() < kMaxPendingOutput)
            want |= EPOLLIN;
        if (c.pending() > 0) want |= EPOLLOUT;
    }
    // After the client's EOF, a level-triggered RDHUP would fire on every wait.
    if (!c.peer_eof) want |= EPOLLRDHUP;
    if (c.registered && want == c.interest) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.fd = c.fd.get();
    int op = c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (::epoll_ctl(m_epoll.get(), op, c.fd.get(), &ev) != 0) {
        logger().warn("api: epoll_ctl: {}", std::strerror(errno));
        return;
    }
    c.registered = true;
    c.interest = want;
}

void ApiServer::close_connection(int fd) {
    auto it = m_connections.find(fd);
    if (it == m_connections.end()) return;
    (void)::epoll_ctl(m_epoll.get(), EPOLL_CTL_DEL, fd, nullptr);
    m_connections.erase(it);  // closes the fd
}

void ApiServer::on_event(Connection& c, uint32_t events) {
    int fd = c.fd.get();
    if (events & EPOLLOUT) {
        flush(c);
        if (!m_connections.contains(fd)) return;
    }
    if (c.peer_eof) {
        // Only answers are left to write; a hang-up means nobody will read them.
        if (events & (EPOLLHUP | EPOLLERR)) close_connection(fd);
        return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c);
}

void ApiServer::on_readable(Connection& c) {
    int fd = c.fd.get();
    char buf[kReadChunk];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        close_connection(fd);  // reset by the peer: nothing to answer
        return;
    }
    c.last_activity = Clock::now();
    if (c.draining) {
        c.drained += static_cast<size_t>(n);
        if (n == 0 || c.drained > kMaxDrainBytes) close_connection(fd);
        return;
    }
    if (n == 0) {
        // The client closed its side. A complete request still in the buffer is answered (a
        // client may half-close after sending); a partial one is dropped unseen: a client
        // that disconnects mid-request changes nothing.
        c.peer_eof = true;
        process(c);
        if (!m_connections.contains(fd)) return;
        if (c.pending() == 0)
            close_connection(fd);
        else
            c.close_after_write = true;
        return;
    }
    c.in.append(buf, static_cast<size_t>(n));
    process(c);
}

void ApiServer::process(Connection& c) {
    c.output_blocked = false;
    while (!c.close_after_write && !m_stopping.load()) {
        if (c.pending() >= kMaxPendingOutput) {
            c.output_blocked = true;
            break;
        }
        auto state = c.parser.parse(c.in);
        if (state == HttpRequestParser::State::kIncomplete) {
            if (c.parser.in_progress() && !c.request_started) {
                c.request_started = true;
                c.request_start = Clock::now();
            }
            if (c.parser.wants_continue() && !c.continue_sent && !c.peer_eof) {
                c.out += kContinue;
                c.continue_sent = true;
            }
            break;
        }
        if (state == HttpRequestParser::State::kError) {
            logger().info("api: refusing request ({}): {}", c.parser.error_status(),
                          c.parser.error_message());
            c.out += serialize(HttpResponse::error(c.parser.error_status(), c.parser.error_message()), true);
            c.close_after_write = true;
            c.in.clear();
            break;
        }
        size_t used = c.parser.consumed();
        HttpRequest request = c.parser.take_request();
        c.in.erase(0, used);
        c.parser.reset();
        c.continue_sent = false;
        c.request_started = false;
        HttpResponse response;
        try {
            response = m_handler(request);
        } catch (const std::exception& e) {
            // A host bug, but one bad request must not take the API down with it.
            logger().error("api: {} {}: handler failed: {}", request.method, request.target, e.what());
            response = HttpResponse::error(500, std::string("internal error: ") + e.what());
        }
        logger().debug("api: {} {} -> {}", request.method, request.target, response.status);
        c.out += serialize(response, request.close);
        if (request.close) c.close_after_write = true;
    }
    flush(c);
}

void ApiServer::flush(Connection& c) {
    int fd = c.fd.get();
    while (c.pending() > 0) {
        ssize_t n = ::send(fd, c.out.data() + c.out_pos, c.pending(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            close_connection(fd);  // the client went away; nothing else to do for it
            return;
        }
        c.out_pos += static_cast<size_t>(n);
        c.last_activity = Clock::now();
    }
    if (c.pending() == 0) {
        c.out.clear();
        c.out_pos = 0;
        if (c.close_after_write) {
            if (c.peer_eof || m_stopping.load()) {
                close_connection(fd);
                return;
            }
            ::shutdown(fd, SHUT_WR);
            c.draining = true;
            c.drain_deadline = Clock::now() + kDrainTimeout;
        } else if (c.output_blocked) {
            // Handling stopped at the output limit: pipelined requests wait in the buffer.
            process(c);
            return;
        }
    }
    update_interest(c);
}

int ApiServer::sweep(Clock::time_point now) {
    std::vector<int> expired;
    std::vector<Connection*> too_slow;
    Clock::time_point next = Clock::time_point::max();
    for (auto& [fd, c] : m_connections) {
        Clock::time_point deadline;
        if (c->draining) {
            deadline = c->drain_deadline;
        } else if (c->pending() > 0 || c->close_after_write) {
            deadline = c->last_activity + m_options.request_timeout;  // a client that does not read
        } else if (c->request_started) {
            deadline = c->request_start + m_options.request_timeout;
            if (now >= deadline) {
                too_slow.push_back(c.get());
                continue;
            }
        } else {
            deadline = c->last_activity + m_options.idle_timeout;
        }
        if (now >= deadline)
            expired.push_back(fd);
        else
            next = std::min(next, deadline);
    }
    for (int fd : expired)
        close_connection(fd);
    for (Connection* c : too_slow) {
        // A client that started a request and does not finish it (slowloris) gets 408.
        c->out += serialize(HttpResponse::error(408, "request not completed in time"), true);
        c->close_after_write = true;
        c->request_started = false;
        c->in.clear();
        c->last_activity = now;
        next = std::min(next, now + m_options.request_timeout);
        flush(*c);
    }
    if (next == Clock::time_point::max()) return -1;
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
    return static_cast<int>(std::clamp<int64_t>(ms, 0, 60'000));
}

}  // namespace vireo::vmm::api
