// Virtqueue: the device side of one split virtqueue (virtio 1.2 §2.7): the driver-programmed
// configuration, popping available chains through a validating walker, publishing used
// entries, and both directions of notification suppression (flags and VIRTIO_F_EVENT_IDX).
//
// The guest runs on other CPUs while we read its rings. Everything read from guest memory is
// read once into a local and validated there; ring indexes are read with acquire and published
// with release ordering, with full fences where §2.7.10 and §2.7.13.3 require them.
#pragma once

#include <cstdint>

#include <nlohmann/json.hpp>

#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "devices/virtio/descriptor_chain.hpp"

namespace vireo::devices::virtio {

class Virtqueue {
  public:
    static constexpr uint16_t kNoVector = 0xFFFF;

    explicit Virtqueue(uint16_t max_size = 256);

    // ---- Configuration (transport registers, before the queue is enabled) -----------------
    uint16_t max_size() const { return m_max_size; }
    uint16_t size() const { return m_size; }
    // A power of two in 1..max_size; returns false (and keeps the old size) otherwise.
    bool set_size(uint16_t size);
    bool enabled() const { return m_enabled; }
    void set_enabled(bool enabled) { m_enabled = enabled; }
    uint64_t desc_addr() const { return m_desc_addr; }
    uint64_t driver_addr() const { return m_driver_addr; }
    uint64_t device_addr() const { return m_device_addr; }
    void set_desc_addr(uint64_t a) { m_desc_addr = a; }
    void set_driver_addr(uint64_t a) { m_driver_addr = a; }
    void set_device_addr(uint64_t a) { m_device_addr = a; }
    uint16_t msix_vector() const { return m_msix_vector; }
    void set_msix_vector(uint16_t v) { m_msix_vector = v; }

    // Resolves the three ring areas in guest memory for the negotiated features. Fails (the
    // device then needs a reset) if a ring lies outside guest RAM or is misaligned.
    Status activate(const GuestMemory& memory, uint64_t features);
    // Activated and not broken by a malformed chain.
    bool ready() const { return m_ready && !m_broken; }
    bool broken() const { return m_broken; }
    // Back to the state after device reset: disabled, size = max, addresses 0, no vector.
    void reset();

    // ---- Device side (the device's thread, under the device's lock) -----------------------
    // Pops the next available chain into `chain`. Returns false when the ring is empty (or the
    // queue is not ready); an error when the guest broke a rule, which marks the queue broken.
    Result<bool> pop(DescriptorChain& chain);
    // Gives back the last `count` popped chains (they will be popped again).
    void undo_pop(uint16_t count = 1);
    // Chains available but not yet popped.
    uint16_t pending() const;
    // Publishes one used entry: `len` bytes written into the chain's writable buffers.
    void add_used(uint16_t head, uint32_t len);
    // After add_used(): whether the driver asked to be interrupted now (§2.7.10).
    bool needs_notification();
    // Before sleeping: tells the driver where we stopped (avail_event) and re-checks the ring.
    // Returns true when more chains arrived meanwhile (keep processing). `seen`: chains the
    // device already looked at and gave back (undo_pop) because together they were not enough
    // (a receive frame longer than the buffers posted): the driver is asked to notify, and true
    // is returned, only when it makes more than those available.
    bool enable_notification(uint16_t seen = 0);

    uint16_t last_avail_idx() const { return m_last_avail; }
    uint16_t next_used_idx() const { return m_next_used; }
    bool event_idx() const { return m_event_idx; }

    // Snapshot: the configuration and the device-side indexes. restore_state validates and
    // applies nothing on error; the queue is re-activated by the caller afterwards.
    nlohmann::json save_state() const;
    Status restore_state(const nlohmann::json& state);

  private:
    Result<bool> walk(uint16_t head, DescriptorChain& chain);
    Status fail(Error error);
    uint16_t load_avail_idx() const;

    uint16_t m_max_size;
    uint16_t m_size;
    bool m_enabled = false;
    uint64_t m_desc_addr = 0;
    uint64_t m_driver_addr = 0;
    uint64_t m_device_addr = 0;
    uint16_t m_msix_vector = kNoVector;

    // Resolved at activation.
    bool m_ready = false;
    bool m_broken = false;
    bool m_event_idx = false;
    bool m_indirect = false;
    const GuestMemory* m_memory = nullptr;
    const uint8_t* m_desc = nullptr;  // desc table
    uint8_t* m_avail = nullptr;       // flags, idx, ring[size], used_event
    uint8_t* m_used = nullptr;        // flags, idx, ring[size], avail_event

    uint16_t m_last_avail = 0;  // next avail ring slot to pop
    uint16_t m_next_used = 0;   // our used idx (never read back from guest memory)
    uint16_t m_signalled_used = 0;
    bool m_signalled_valid = false;
};

}  // namespace vireo::devices::virtio
