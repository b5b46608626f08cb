// Tap: an existing Linux tap interface opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, frames
// carrying a 12-byte virtio_net_hdr (TUNSETVNETHDRSZ), offloads set with TUNSETOFFLOAD.
#pragma once

#include <memory>
#include <string>

#include "base/unique_fd.hpp"
#include "devices/virtio/net_backend.hpp"

namespace vireo::devices::virtio {

class Tap final : public NetBackend {
  public:
    // Attaches to the tap `name`, which must already exist (`ip tuntap add dev NAME mode tap`):
    // Vireo never creates network interfaces. Errors say what is wrong and how to fix it.
    static Result<std::unique_ptr<Tap>> open(const std::string& name);

    int fd() const override { return m_fd.get(); }
    Status set_offload(unsigned tun_flags) override;
    std::string describe() const override { return "tap " + m_name; }
    const std::string& name() const { return m_name; }

  private:
    Tap(UniqueFd fd, std::string name) : m_fd(std::move(fd)), m_name(std::move(name)) {}
    UniqueFd m_fd;
    std::string m_name;
};

}  // namespace vireo::devices::virtio
