// PacketPairBackend: a NetBackend over a SOCK_SEQPACKET socket pair, so virtio-net tests see
// frame boundaries exactly as a tap gives them, without creating network interfaces. The test
// holds the other end ("the wire") and can inspect the offloads the device set.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <vector>

#include "base/unique_fd.hpp"
#include "devices/virtio/net_backend.hpp"

namespace vireo::testing {

class PacketPairBackend final : public devices::virtio::NetBackend {
  public:
    struct Wire {
        UniqueFd fd;             // the far end: what the host network would see
        unsigned offload = ~0u;  // last TUNSETOFFLOAD value
        int offload_calls = 0;
    };

    // Returns the backend and the wire (shared so the test keeps it after handing the backend
    // to the device).
    static std::pair<std::unique_ptr<PacketPairBackend>, std::shared_ptr<Wire>> create() {
        int fds[2];
        if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return {};
        auto wire = std::make_shared<Wire>();
        wire->fd = UniqueFd(fds[1]);
        return {std::unique_ptr<PacketPairBackend>(new PacketPairBackend(UniqueFd(fds[0]), wire)), wire};
    }

    int fd() const override { return m_fd.get(); }
    Status set_offload(unsigned flags) override {
        m_wire->offload = flags;
        ++m_wire->offload_calls;
        return {};
    }
    std::string describe() const override { return "packet pair"; }

  private:
    PacketPairBackend(UniqueFd fd, std::shared_ptr<Wire> wire)
        : m_fd(std::move(fd)), m_wire(std::move(wire)) {}
    UniqueFd m_fd;
    std::shared_ptr<Wire> m_wire;
};

}  // namespace vireo::testing
