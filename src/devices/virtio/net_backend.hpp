// NetBackend: where a virtio-net device's frames go: a host file descriptor that carries one
// frame per read/write, each led by a 12-byte virtio_net_hdr (a tap with IFF_VNET_HDR; in tests
// a packet socket pair).
#pragma once

#include <string>

#include "base/result.hpp"

namespace vireo::devices::virtio {

class NetBackend {
  public:
    virtual ~NetBackend() = default;
    // Non-blocking; one frame per read()/writev().
    virtual int fd() const = 0;
    // The offloads (TUN_F_* bits) the guest accepted for frames it receives.
    virtual Status set_offload(unsigned tun_flags) = 0;
    virtual std::string describe() const = 0;
};

}  // namespace vireo::devices::virtio
