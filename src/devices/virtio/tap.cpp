// Tap interface attachment.
#include "devices/virtio/tap.hpp"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace vireo::devices::virtio {

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
    if (name.empty() || name.size() >= IFNAMSIZ || name.find('/') != std::string::npos)
        return make_error("tap \"{}\": not a valid interface name (1 to {} characters)", name, IFNAMSIZ - 1);
    // TUNSETIFF creates an interface that does not exist; attach only to one that does.
    if (::if_nametoindex(name.c_str()) == 0) {
        return make_error(
            "tap {}: no such network interface (create it first, e.g. `ip tuntap add dev {} mode tap "
            "user $USER && ip link set {} up`)",
            name, name, name);
    }
    UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
    if (!fd) return os_error(fmt::format("tap {}: open /dev/net/tun", name));
    unsigned features = 0;
    if (::ioctl(fd.get(), TUNGETFEATURES, &features) == 0 && (features & IFF_VNET_HDR) == 0)
        return make_error("tap {}: the kernel's tun driver lacks IFF_VNET_HDR", name);
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) != 0) {
        int err = errno;
        if (err == EPERM || err == EACCES)
            return os_error(
                fmt::format("tap {}: not allowed to attach (the tap's owner/group, or CAP_NET_ADMIN, is "
                            "needed)",
                            name),
                err);
        if (err == EINVAL)
            return os_error(
                fmt::format("tap {}: not a tap device, or created with other flags (e.g. multi-queue)", name),
                err);
        if (err == EBUSY)
            return os_error(fmt::format("tap {}: already attached to another process", name), err);
        return os_error(fmt::format("tap {}: TUNSETIFF", name), err);
    }
    // virtio 1.x: the header always carries num_buffers, 12 bytes (§5.1.6).
    int header = 12;
    if (::ioctl(fd.get(), TUNSETVNETHDRSZ, &header) != 0)
        return os_error(fmt::format("tap {}: TUNSETVNETHDRSZ", name));
    if (::ioctl(fd.get(), TUNSETOFFLOAD, 0u) != 0)
        return os_error(fmt::format("tap {}: TUNSETOFFLOAD", name));
    return std::unique_ptr<Tap>(new Tap(std::move(fd), name));
}

Status Tap::set_offload(unsigned tun_flags) {
    if (::ioctl(m_fd.get(), TUNSETOFFLOAD, tun_flags) != 0)
        return os_error(fmt::format("tap {}: TUNSETOFFLOAD 0x{:x}", m_name, tun_flags));
    return {};
}

}  // namespace vireo::devices::virtio
