// VirtioTestDriver: the guest side of a virtio PCI device, for unit tests without KVM. It finds
// the virtio capabilities in configuration space, negotiates features through the common
// configuration registers, builds split rings in fake guest memory, posts chains (direct or
// indirect, or raw descriptors for malformed cases), notifies and reads used entries, and sets
// up MSI-X vectors whose messages land in an MsiRecorder.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "base/endian.hpp"
#include "devices/pci/pci_regs.hpp"
#include "devices/virtio/pci_transport.hpp"
#include "devices/virtio/virtio_spec.hpp"
#include "fakes/fake_guest_memory.hpp"
#include "fakes/pci_interrupts.hpp"

namespace vireo::testing {

class VirtioTestDriver {
  public:
    using Transport = devices::virtio::VirtioPciDevice;
    using Common = Transport::Common;

    struct Buffer {
        uint64_t gpa;
        uint32_t len;
        bool device_writable;
    };
    struct Used {
        uint32_t id;
        uint32_t len;
    };
    struct Queue {
        uint16_t size = 0;
        uint64_t desc = 0;
        uint64_t avail = 0;
        uint64_t used = 0;
        uint16_t avail_idx = 0;
        uint16_t last_used = 0;
        std::vector<uint16_t> free;                 // free descriptor indexes
        std::vector<std::vector<uint16_t>> chains;  // descriptors of each head still in flight
        std::vector<uint64_t> indirect;             // indirect table of each head (0: none)
    };

    static constexpr uint64_t kMsiAddress = 0xFEE0'0000;
    static constexpr uint32_t kConfigVectorData = 0x100;
    static uint32_t queue_vector_data(uint16_t q) { return 0x200 + q; }

    VirtioTestDriver(FakeGuestMemory& memory, Transport& device);

    // ---- Capabilities and registers ----------------------------------------------------
    struct Cap {
        uint8_t type;
        uint8_t bar;
        uint32_t offset;
        uint32_t length;
        uint32_t extra;  // notify_off_multiplier for the notify capability
        uint16_t config_offset;
    };
    const std::vector<Cap>& caps() const { return m_caps; }
    const Cap* cap(uint8_t type) const;

    uint32_t cfg_read(uint32_t offset, size_t size);
    void cfg_write(uint32_t offset, uint32_t value, size_t size);
    uint64_t common_read(Common reg, size_t size);
    void common_write(Common reg, uint64_t value, size_t size);
    uint8_t status() { return static_cast<uint8_t>(common_read(Common::kDeviceStatus, 1)); }
    void set_status(uint8_t status) { common_write(Common::kDeviceStatus, status, 1); }
    uint8_t read_isr();
    uint64_t device_features();
    // Reads/writes the device-specific configuration.
    uint64_t device_cfg_read(uint32_t offset, size_t size);
    void device_cfg_read_bytes(uint32_t offset, uint8_t* out, size_t size);
    void device_cfg_write(uint32_t offset, uint64_t value, size_t size);

    // ---- Initialization (§3.1.1) ----------------------------------------------------------
    // Reset, ACKNOWLEDGE, DRIVER, features (wanted & offered, plus VERSION_1), FEATURES_OK.
    // Returns the negotiated features, or nullopt if the device refused FEATURES_OK.
    std::optional<uint64_t> negotiate(uint64_t wanted);
    // Writes exactly `features` as the driver's (even bits not offered), then FEATURES_OK;
    // returns whether the device kept FEATURES_OK.
    bool try_features(uint64_t features);
    void enable_msix();
    // Allocates rings and programs queue q (size 0: the device's maximum).
    void setup_queue(uint16_t q, uint16_t size = 0);
    void driver_ok() { set_status(status() | devices::virtio::kStatusDriverOk); }
    // negotiate + MSI-X + every queue + DRIVER_OK.
    std::optional<uint64_t> init(uint64_t wanted, bool msix = true);
    // Writes 0 to the status and waits (polls) for it to read 0.
    void reset();

    // ---- Requests ----------------------------------------------------------------------
    // Builds a chain from `buffers` (or an indirect table with them), puts it in the avail
    // ring and returns its head. Does not notify.
    uint16_t post(uint16_t q, const std::vector<Buffer>& buffers, bool indirect = false);
    // Writes raw descriptor `index` of queue q (malformed chains).
    void write_desc(uint16_t q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next);
    // Writes a raw descriptor into an indirect table at gpa.
    void write_desc_at(uint64_t table, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                       uint16_t next);
    // Puts `head` into the avail ring (after raw descriptors).
    void publish(uint16_t q, uint16_t head);
    // Makes the avail index jump by `count` without filling slots (hostile).
    void set_avail_idx(uint16_t q, uint16_t idx);
    void kick(uint16_t q);
    std::optional<Used> pop_used(uint16_t q);
    uint16_t used_idx(uint16_t q);
    // The device's avail_event (EVENT_IDX).
    uint16_t avail_event(uint16_t q);
    // Sets the driver's used_event (EVENT_IDX) or the avail flags' NO_INTERRUPT bit.
    void set_used_event(uint16_t q, uint16_t value);
    void set_no_interrupt(uint16_t q, bool on);

    Queue& queue(uint16_t q) { return m_queues.at(q); }
    MsiRecorder& msi() { return *m_msi; }
    std::shared_ptr<MsiRecorder> msi_ptr() { return m_msi; }
    size_t interrupts(uint16_t q) { return m_msi->count_data(queue_vector_data(q)); }
    size_t config_interrupts() { return m_msi->count_data(kConfigVectorData); }
    FakeGuestMemory& memory() { return m_memory; }
    Transport& device() { return m_device; }

  private:
    void bar_read(uint64_t offset, uint8_t* out, size_t size);
    void bar_write(uint64_t offset, uint64_t value, size_t size);
    uint16_t alloc_desc(Queue& queue);

    FakeGuestMemory& m_memory;
    Transport& m_device;
    std::shared_ptr<MsiRecorder> m_msi = std::make_shared<MsiRecorder>();
    std::vector<Cap> m_caps;
    std::vector<Queue> m_queues;
    bool m_event_idx = false;
};

}  // namespace vireo::testing
