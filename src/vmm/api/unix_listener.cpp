// Unix socket listening and connecting, with safe replacement of stale socket files.
#include "vmm/api/unix_listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo::vmm::api {
namespace {

constexpr size_t kMaxPathLength = sizeof(sockaddr_un::sun_path) - 1;

sockaddr_un make_address(const std::string& path) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    return addr;
}

// Whether a process listens on the socket file at `path` (probing with a connect).
bool socket_is_live(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return true;  // cannot tell: do not replace it
    sockaddr_un addr = make_address(path);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return true;
    // EAGAIN: a listener whose backlog is full is alive too.
    return errno != ECONNREFUSED && errno != ENOENT;
}

}  // namespace

Result<std::unique_ptr<UnixListener>> UnixListener::create(const std::string& path, int backlog) {
    if (path.empty()) return make_error("api socket: empty path");
    if (path.size() > kMaxPathLength)
        return make_error("api socket {}: path is {} bytes long, Unix sockets allow at most {}", path,
                          path.size(), kMaxPathLength);
    if (path.find('\0') != std::string::npos) return make_error("api socket: path holds a NUL byte");

    struct stat st {};
    bool replace = false;
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return make_error("api socket {}: a file that is not a socket exists there; not replacing it",
                              path);
        if (socket_is_live(path)) return make_error("api socket {}: in use by a running process", path);
        replace = true;
    } else if (errno != ENOENT) {
        return os_error(fmt::format("api socket {}: stat", path));
    }

    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return os_error("api socket: socket");
    // The mode the bound file gets derives from the socket inode's mode (minus the umask): set
    // it first so the file is never reachable with wider permissions; chmod below then makes it
    // exactly 0600 whatever the umask.
    (void)::fchmod(fd.get(), 0600);

    // Bind under a temporary name and rename over the path: a stale file is replaced in one
    // atomic step, and clients never see a moment with no socket or a half-set-up one.
    std::string bind_path = path;
    std::string tmp = fmt::format("{}.{}.tmp", path, ::getpid());
    bool use_tmp = tmp.size() <= kMaxPathLength;
    if (use_tmp) {
        bind_path = tmp;
        (void)::unlink(tmp.c_str());
    } else if (replace && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
        return os_error(fmt::format("api socket {}: removing the stale socket", path));
    }
    sockaddr_un addr = make_address(bind_path);
    if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
        return os_error(fmt::format("api socket {}: bind", bind_path));
    auto fail = [&](std::string_view what) {
        int err = errno;
        (void)::unlink(bind_path.c_str());
        return os_error(fmt::format("api socket {}: {}", bind_path, what), err);
    };
    if (::chmod(bind_path.c_str(), 0600) != 0) return fail("chmod 0600");
    if (::listen(fd.get(), backlog) != 0) return fail("listen");
    if (::lstat(bind_path.c_str(), &st) != 0) return fail("stat");
    if (use_tmp && ::rename(tmp.c_str(), path.c_str()) != 0) return fail(fmt::format("rename to {}", path));
    return std::unique_ptr<UnixListener>(new UnixListener(std::move(fd), path, st.st_dev, st.st_ino));
}

UnixListener::~UnixListener() {
    close();
}

void UnixListener::close() {
    if (!m_fd) return;
    struct stat st {};
    // Only our own socket file is removed: another VMM may have replaced it after we were
    // (wrongly) judged stale, or a user may have put something else there.
    if (::lstat(m_path.c_str(), &st) == 0 && st.st_dev == m_dev && st.st_ino == m_ino)
        ::unlink(m_path.c_str());
    m_fd.reset();
}

Result<UniqueFd> connect_unix(const std::string& path) {
    if (path.size() > kMaxPathLength)
        return make_error("{}: path is {} bytes long, Unix sockets allow at most {}", path, path.size(),
                          kMaxPathLength);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return os_error("socket");
    sockaddr_un addr = make_address(path);
    int rc;
    do {
        rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) return os_error(fmt::format("connect to {}", path));
    return fd;
}

}  // namespace vireo::vmm::api
