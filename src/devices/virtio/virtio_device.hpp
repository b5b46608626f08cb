// VirtioDevice and VirtioTransport: the split between a device type (block, net, console,
// entropy) and the transport that carries it (virtio over PCI). The device owns the request
// logic; the transport owns registers, feature negotiation, queues and interrupt routing.
//
// Threads and locking: the transport owns one mutex (lock()). Register accesses from vCPU
// threads, queue notifications and host events on the VMM's I/O thread, and I/O completions
// all run with it held, so a device never sees two of them at once. Device code that is
// entered from outside (an I/O completion, a tap becoming readable) takes lock() itself;
// everything the transport calls into already holds it. Queue processing (queue_notify) and
// host I/O submission happen on the I/O thread only: MMIO notify writes are handed to it
// through the transport's notify hook, so a vCPU never waits on device work.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "devices/virtio/queue.hpp"

namespace vireo::devices::virtio {

// What a device sees of its transport. Every call requires lock() held.
class VirtioTransport {
  public:
    virtual ~VirtioTransport() = default;

    virtual std::mutex& lock() = 0;
    virtual const GuestMemory& memory() const = 0;
    virtual Virtqueue& queue(uint16_t index) = 0;
    virtual uint64_t negotiated_features() const = 0;
    // DRIVER_OK is set, the device does not need a reset and no reset is in progress.
    virtual bool driver_ok() const = 0;

    // Used buffers on `queue`: interrupts the driver if the queue's suppression state asks for
    // it (call after a batch of add_used()).
    virtual void notify_used(uint16_t queue) = 0;
    // The device configuration changed: bumps config_generation and sends a config interrupt.
    virtual void config_changed() = 0;
    // The guest broke the rules on `queue` (malformed chain, ring outside RAM): the device
    // enters DEVICE_NEEDS_RESET and tells the driver; the VMM carries on.
    virtual void queue_error(uint16_t queue, const Error& error) = 0;
    // A guest mistake that does not break the device (bad request, wrong direction): counted,
    // logged once per kind.
    virtual void guest_error(std::string_view kind, std::string_view detail = {}) = 0;
    // A reset that reset() could not finish at once (requests in flight) is now complete.
    virtual void reset_complete() = 0;
};

// A host file descriptor the VMM's event loop watches for a device (edge-triggered epoll).
struct HostEventSource {
    int fd = -1;
    uint32_t events = 0;                           // EPOLLIN, EPOLLOUT, ...; EPOLLET is added by the loop
    std::function<void(uint32_t events)> handler;  // runs on the I/O thread, takes the lock itself
};

class VirtioDevice {
  public:
    virtual ~VirtioDevice() = default;

    // ---- Identity and capabilities (constant for the device's lifetime) ------------------
    virtual uint16_t device_id() const = 0;
    virtual std::string name() const = 0;
    virtual uint32_t pci_class() const = 0;
    // Device-specific and ring feature bits offered (VERSION_1 is added by the transport).
    virtual uint64_t device_features() const = 0;
    virtual uint16_t num_queues() const = 0;
    virtual uint16_t queue_max_size(uint16_t queue) const { return queue < num_queues() ? 256 : 0; }
    virtual uint32_t config_size() const = 0;

    // ---- Called by the transport with the lock held -------------------------------------
    virtual void attach(VirtioTransport& transport) { m_transport = &transport; }
    virtual void read_config(uint32_t offset, std::span<uint8_t> data) = 0;
    // Device configuration is read-only unless a device says otherwise.
    virtual void write_config(uint32_t offset, std::span<const uint8_t> data);
    // At FEATURES_OK: whether the device can work with the driver's subset (§3.1.1 step 5).
    virtual Status check_features(uint64_t features) const;
    // At DRIVER_OK: queues are activated; the device starts serving them.
    virtual Status activate() = 0;
    // The driver notified `queue` (I/O thread).
    virtual void queue_notify(uint16_t queue) = 0;
    // Device reset (§2.4). Returns true when done; false when requests are still in flight:
    // their completions are dropped and the device calls reset_complete() after the last one.
    virtual bool reset() = 0;
    // Requests handed to the host and not yet completed (a snapshot waits for 0).
    virtual size_t in_flight() const { return 0; }

    // Host fds to watch, registered by the VMM once at startup.
    virtual std::vector<HostEventSource> host_event_sources() { return {}; }

    // Device-specific snapshot state (the transport saves queues and registers).
    virtual nlohmann::json save_state() const { return nlohmann::json::object(); }
    virtual Status restore_state(const nlohmann::json&) { return {}; }
    // Per-device counters for vm.counters (bytes, requests, errors).
    virtual nlohmann::json counters() const { return nlohmann::json::object(); }

  protected:
    VirtioTransport* m_transport = nullptr;
};

}  // namespace vireo::devices::virtio
