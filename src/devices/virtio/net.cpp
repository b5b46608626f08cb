// Network device: feature rules, offloads, transmit, receive with mergeable buffers.
#include "devices/virtio/net.hpp"

#include <linux/if_tun.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "base/log.hpp"
#include "devices/pci/pci_regs.hpp"
#include "devices/pci/state_util.hpp"

namespace vireo::devices::virtio {

namespace {
int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

Result<MacAddress> parse_mac(std::string_view text) {
    MacAddress mac{};
    if (text.size() != 17)
        return make_error("MAC address \"{}\": expected six hex bytes like 52:54:00:12:34:56", text);
    for (size_t i = 0; i < 6; ++i) {
        int hi = hex_digit(text[3 * i]);
        int lo = hex_digit(text[3 * i + 1]);
        if (hi < 0 || lo < 0 || (i < 5 && text[3 * i + 2] != ':' && text[3 * i + 2] != '-'))
            return make_error("MAC address \"{}\": expected six hex bytes like 52:54:00:12:34:56", text);
        mac[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (mac[0] & 1) return make_error("MAC address {}: a multicast address cannot name a network card", text);
    return mac;
}

std::string format_mac(const MacAddress& m) {
    return fmt::format("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
}

MacAddress random_mac() {
    MacAddress mac{};
    if (::getrandom(mac.data(), mac.size(), 0) != static_cast<ssize_t>(mac.size())) {
        uint64_t seed = static_cast<uint64_t>(::getpid()) * 0x9E3779B97F4A7C15ull;
        for (auto& b : mac) {
            b = static_cast<uint8_t>(seed >> 56);
            seed *= 6364136223846793005ull;
        }
    }
    mac[0] = static_cast<uint8_t>((mac[0] & 0xFE) | 0x02);  // unicast, locally administered
    return mac;
}

VirtioNet::VirtioNet(std::unique_ptr<NetBackend> backend, NetOptions options)
    : m_backend(std::move(backend)), m_options(options), m_mac(options.mac.value_or(random_mac())) {
    m_rx_frame.resize(kMaxFrame);
}

std::string VirtioNet::name() const {
    return fmt::format("virtio-net {}", m_backend->describe());
}

uint32_t VirtioNet::pci_class() const {
    return pci::kClassNetworkEthernet;
}

uint64_t VirtioNet::device_features() const {
    // The tap takes checksum-offloaded and GSO frames from us as they are, so the host-side
    // offloads are always on offer; the guest-side ones are applied with TUNSETOFFLOAD.
    return feature_bit(kFeatureCsum) | feature_bit(kFeatureGuestCsum) | feature_bit(kFeatureMac) |
           feature_bit(kFeatureGuestTso4) | feature_bit(kFeatureGuestTso6) | feature_bit(kFeatureGuestEcn) |
           feature_bit(kFeatureHostTso4) | feature_bit(kFeatureHostTso6) | feature_bit(kFeatureHostEcn) |
           feature_bit(kFeatureMrgRxbuf) | feature_bit(kFeatureStatus) |
           feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx);
}

Status VirtioNet::check_features(uint64_t f) const {
    auto has = [f](int bit) { return (f & feature_bit(bit)) != 0; };
    // §5.1.3.1: offload features and the ones they depend on.
    if ((has(kFeatureGuestTso4) || has(kFeatureGuestTso6) || has(kFeatureGuestUfo)) &&
        !has(kFeatureGuestCsum))
        return make_error("GUEST_TSO/UFO without GUEST_CSUM");
    if (has(kFeatureGuestEcn) && !has(kFeatureGuestTso4) && !has(kFeatureGuestTso6))
        return make_error("GUEST_ECN without GUEST_TSO4 or GUEST_TSO6");
    if ((has(kFeatureHostTso4) || has(kFeatureHostTso6) || has(kFeatureHostUfo)) && !has(kFeatureCsum))
        return make_error("HOST_TSO/UFO without CSUM");
    if (has(kFeatureHostEcn) && !has(kFeatureHostTso4) && !has(kFeatureHostTso6))
        return make_error("HOST_ECN without HOST_TSO4 or HOST_TSO6");
    return {};
}

bool VirtioNet::negotiated(int bit) const {
    return (m_transport->negotiated_features() & feature_bit(bit)) != 0;
}

void VirtioNet::read_config(uint32_t offset, std::span<uint8_t> data) {
    Config c{};
    std::memcpy(c.mac, m_mac.data(), 6);
    c.status = m_status;
    c.max_virtqueue_pairs = 1;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < sizeof c ? bytes[offset + i] : 0;
}

Status VirtioNet::activate() {
    unsigned offload = 0;
    if (negotiated(kFeatureGuestCsum)) offload |= TUN_F_CSUM;
    if (negotiated(kFeatureGuestTso4)) offload |= TUN_F_TSO4;
    if (negotiated(kFeatureGuestTso6)) offload |= TUN_F_TSO6;
    if (negotiated(kFeatureGuestEcn)) offload |= TUN_F_TSO_ECN;
    VIREO_TRY_CTX(m_backend->set_offload(offload), name());
    return {};
}

bool VirtioNet::reset() {
    // Nothing is in flight: transmit and receive complete synchronously. A frame waiting for
    // buffers belonged to the old incarnation's rings and is dropped.
    if (m_rx_len != 0) ++m_counters.rx_dropped;
    m_rx_len = 0;
    m_tx_blocked = false;
    if (auto s = m_backend->set_offload(0); !s.ok()) log::get("virtio").warn("{}", s.error().message());
    return true;
}

void VirtioNet::queue_notify(uint16_t queue) {
    if (queue == kTxQueue) {
        process_tx();
    } else if (queue == kRxQueue) {
        process_rx();  // new receive buffers: deliver what waits, read more from the tap
    }
}

std::vector<HostEventSource> VirtioNet::host_event_sources() {
    return {HostEventSource{m_backend->fd(), EPOLLIN | EPOLLOUT,
                            [this](uint32_t events) { handle_backend_events(events); }}};
}

void VirtioNet::handle_backend_events(uint32_t events) {
    std::lock_guard lock(m_transport->lock());
    if (!m_transport->driver_ok()) return;
    if ((events & EPOLLOUT) && m_tx_blocked) process_tx();
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) process_rx();
}

void VirtioNet::set_link_up(bool up) {
    std::lock_guard lock(m_transport->lock());
    uint16_t status = up ? kStatusLinkUp : 0;
    if (status == m_status) return;
    m_status = status;
    m_transport->config_changed();
}

void VirtioNet::process_tx() {
    Virtqueue& q = m_transport->queue(kTxQueue);
    if (!q.ready()) return;
    m_tx_blocked = false;
    bool used = false;
    for (;;) {
        for (;;) {
            auto popped = q.pop(m_chain);
            if (!popped.ok()) {
                m_transport->queue_error(kTxQueue, popped.error());
                return;
            }
            if (!*popped) break;
            const DescriptorChain& c = m_chain;
            Header hdr{};
            bool drop = false;
            if (c.writable_bytes() != 0) {
                m_transport->guest_error("transmit chain with device-writable buffers");
                drop = true;
            } else if (c.readable_bytes() < sizeof hdr || c.readable_bytes() > kMaxFrame) {
                m_transport->guest_error("transmit frame size out of range",
                                         fmt::format("{} bytes", c.readable_bytes()));
                drop = true;
            } else {
                c.read(0, {reinterpret_cast<uint8_t*>(&hdr), sizeof hdr});
                // The kernel validates GSO frames itself; offloads the driver did not negotiate
                // are refused here so a guest cannot use what it did not ask for.
                uint8_t gso = hdr.gso_type & static_cast<uint8_t>(~kGsoEcn);
                bool gso_ok = gso == kGsoNone || (gso == kGsoTcpv4 && negotiated(kFeatureHostTso4)) ||
                              (gso == kGsoTcpv6 && negotiated(kFeatureHostTso6));
                bool ecn_ok = (hdr.gso_type & kGsoEcn) == 0 || negotiated(kFeatureHostEcn);
                bool csum_ok = (hdr.flags & kHdrFlagNeedsCsum) == 0 || negotiated(kFeatureCsum);
                if (!gso_ok || !ecn_ok || !csum_ok) {
                    m_transport->guest_error("transmit header uses an offload that was not negotiated");
                    drop = true;
                }
            }
            if (!drop) {
                ssize_t n =
                    ::writev(m_backend->fd(), c.readable().data(), static_cast<int>(c.readable().size()));
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                    // The tap's queue is full: keep the chain and wait for EPOLLOUT.
                    q.undo_pop();
                    m_tx_blocked = true;
                    break;
                }
                if (n < 0) {
                    if (m_counters.backend_errors++ == 0)
                        log::get("virtio").warn("{}: transmit: {}", name(), std::strerror(errno));
                    drop = true;
                } else {
                    ++m_counters.tx_frames;
                    m_counters.tx_bytes += c.readable_bytes() - sizeof hdr;
                }
            }
            if (drop) ++m_counters.tx_dropped;
            q.add_used(c.head(), 0);
            used = true;
        }
        if (m_tx_blocked || !q.enable_notification()) break;
    }
    if (used) m_transport->notify_used(kTxQueue);
}

void VirtioNet::process_rx() {
    Virtqueue& q = m_transport->queue(kRxQueue);
    if (!q.ready()) return;
    bool used = false;
    for (;;) {
        if (m_rx_len == 0) {
            ssize_t n = ::read(m_backend->fd(), m_rx_frame.data(), m_rx_frame.size());
            if (n < 0) {
                if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                    if (m_counters.backend_errors++ == 0)
                        log::get("virtio").warn("{}: receive: {}", name(), std::strerror(errno));
                }
                break;  // drained: the next edge wakes us
            }
            if (static_cast<size_t>(n) <= sizeof(Header)) {
                ++m_counters.rx_dropped;
                continue;
            }
            m_rx_len = static_cast<size_t>(n);
        }
        uint16_t seen = 0;
        if (!deliver_frame(used, seen)) {
            // Out of buffers: the frame needs more than the `seen` ones posted. Ask the driver
            // to notify when it adds more (avail_event), and retry at once if it already did.
            if (!q.ready() || !q.enable_notification(seen)) break;
        }
    }
    if (used) m_transport->notify_used(kRxQueue);
}

bool VirtioNet::deliver_frame(bool& used_any, uint16_t& seen) {
    Virtqueue& q = m_transport->queue(kRxQueue);
    Header hdr;
    std::memcpy(&hdr, m_rx_frame.data(), sizeof hdr);
    if (!negotiated(kFeatureGuestCsum)) {
        // §5.1.6.4.1: without GUEST_CSUM the device passes flags 0 (the tap then hands us
        // fully checksummed frames, offloads being off).
        hdr.flags = 0;
    }
    bool mergeable = negotiated(kFeatureMrgRxbuf);
    size_t total = m_rx_len;
    size_t placed = 0;
    uint16_t chains = 0;
    m_rx_chains.resize(std::max<size_t>(m_rx_chains.size(), 1));
    while (placed < total) {
        if (chains == m_rx_chains.size()) m_rx_chains.emplace_back();
        DescriptorChain& c = m_rx_chains[chains];
        auto popped = q.pop(c);
        if (!popped.ok()) {
            m_transport->queue_error(kRxQueue, popped.error());
            m_rx_len = 0;
            return true;
        }
        if (!*popped) {
            q.undo_pop(chains);
            if (chains >= q.size()) {
                // A whole queue of buffers cannot hold it: waiting would stop reception for good.
                m_transport->guest_error("receive buffers of a full queue too small for the frame",
                                         fmt::format("{} buffers, {} of {} bytes", chains, placed, total));
                ++m_counters.rx_dropped;
                m_rx_len = 0;
                return true;
            }
            seen = chains;
            return false;
        }
        ++chains;
        if (c.writable_bytes() < (chains == 1 ? sizeof hdr : 1)) {
            // §5.1.6.3.1: receive buffers hold at least a header. Return it empty, drop the frame.
            m_transport->guest_error("receive buffer smaller than the virtio-net header");
            for (uint16_t i = 0; i + 1 < chains; ++i)
                q.add_used(m_rx_chains[i].head(), 0);
            q.add_used(c.head(), 0);
            used_any = true;
            ++m_counters.rx_dropped;
            m_rx_len = 0;
            return true;
        }
        uint64_t room = c.writable_bytes();
        if (!mergeable && room < total) {
            // Without mergeable buffers one chain takes the whole frame; it does not fit: the
            // buffer stays available and the frame is dropped (a driver error: §5.1.6.3.1).
            q.undo_pop(chains);
            m_transport->guest_error("receive buffer too small for the frame",
                                     fmt::format("{} < {}", room, total));
            ++m_counters.rx_dropped;
            m_rx_len = 0;
            return true;
        }
        placed += std::min<uint64_t>(room, total - placed);
    }
    // Everything fits: copy, header first, num_buffers set (1 without mergeable buffers).
    hdr.num_buffers = chains;
    placed = 0;
    for (uint16_t i = 0; i < chains; ++i) {
        DescriptorChain& c = m_rx_chains[i];
        size_t take = std::min<uint64_t>(c.writable_bytes(), total - placed);
        if (i == 0) {
            c.write(0, {reinterpret_cast<const uint8_t*>(&hdr), sizeof hdr});
            c.write(sizeof hdr, {m_rx_frame.data() + sizeof hdr, take - sizeof hdr});
        } else {
            c.write(0, {m_rx_frame.data() + placed, take});
        }
        placed += take;
        q.add_used(c.head(), static_cast<uint32_t>(take));
    }
    ++m_counters.rx_frames;
    m_counters.rx_bytes += total - sizeof hdr;
    m_rx_len = 0;
    used_any = true;
    return true;
}

nlohmann::json VirtioNet::save_state() const {
    return nlohmann::json{{"version", 1}, {"mac", format_mac(m_mac)}, {"status", m_status}};
}

Status VirtioNet::restore_state(const nlohmann::json& state) {
    pci::StateFields f(state, name(), 1);
    auto status = static_cast<uint16_t>(f.number("status", kStatusLinkUp));
    const nlohmann::json& mac_json =
        state.is_object() && state.contains("mac") ? state["mac"] : nlohmann::json();
    VIREO_TRY(f.status());
    if (!mac_json.is_string()) return make_error("{} snapshot: field \"mac\" is missing", name());
    VIREO_ASSIGN_OR_RETURN(MacAddress mac, parse_mac(mac_json.get<std::string>()));
    // The guest knows its MAC; it comes back with the snapshot whatever the command line said.
    m_mac = mac;
    m_status = status;
    m_rx_len = 0;
    m_tx_blocked = false;
    return {};
}

nlohmann::json VirtioNet::counters() const {
    const Counters& c = m_counters;
    return nlohmann::json{
        {"rx_frames", c.rx_frames},
        {"rx_bytes", c.rx_bytes},
        {"rx_dropped", c.rx_dropped},
        {"tx_frames", c.tx_frames},
        {"tx_bytes", c.tx_bytes},
        {"tx_dropped", c.tx_dropped},
        {"requests", c.rx_frames + c.tx_frames},
        {"bytes", c.rx_bytes + c.tx_bytes},
        {"errors", c.rx_dropped + c.tx_dropped + c.backend_errors},
        {"backend_errors", c.backend_errors},
    };
}

}  // namespace vireo::devices::virtio
