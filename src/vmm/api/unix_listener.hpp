// A listening Unix stream socket at a path: mode 0600, stale files replaced safely, removed
// on destruction only if the path still names this socket.
#pragma once

#include <sys/types.h>

#include <memory>
#include <string>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo::vmm::api {

class UnixListener {
  public:
    // Binds and listens at `path`. An existing socket file nobody listens on (left by a VMM
    // that crashed) is replaced atomically; a live socket or any other kind of file at the
    // path is an error, so a second VMM cannot steal the first one's socket.
    static Result<std::unique_ptr<UnixListener>> create(const std::string& path, int backlog = 64);
    ~UnixListener();
    UnixListener(const UnixListener&) = delete;
    UnixListener& operator=(const UnixListener&) = delete;

    int fd() const { return m_fd.get(); }
    const std::string& path() const { return m_path; }
    // Closes the socket and removes the file (if it is still ours). Idempotent.
    void close();

  private:
    UnixListener(UniqueFd fd, std::string path, dev_t dev, ino_t ino)
        : m_fd(std::move(fd)), m_path(std::move(path)), m_dev(dev), m_ino(ino) {}

    UniqueFd m_fd;
    std::string m_path;
    dev_t m_dev;
    ino_t m_ino;
};

// Connects to the Unix socket at `path` (blocking, close-on-exec).
Result<UniqueFd> connect_unix(const std::string& path);

}  // namespace vireo::vmm::api
