// Split virtqueue: validating descriptor walker, used ring, notification suppression.
#include "devices/virtio/queue.hpp"

#include <atomic>
#include <cassert>
#include <cstring>

#include "devices/pci/state_util.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

namespace {

// Ring words the guest writes concurrently: 2-byte aligned (checked at activation), so the
// atomic builtins apply to them directly.
uint16_t load_acquire16(const uint8_t* p) {
    return from_le(__atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_ACQUIRE));
}
uint16_t load_relaxed16(const uint8_t* p) {
    return from_le(__atomic_load_n(reinterpret_cast<const uint16_t*>(p), __ATOMIC_RELAXED));
}
void store_release16(uint8_t* p, uint16_t v) {
    __atomic_store_n(reinterpret_cast<uint16_t*>(p), to_le(v), __ATOMIC_RELEASE);
}

}  // namespace

Virtqueue::Virtqueue(uint16_t max_size) : m_max_size(max_size), m_size(max_size) {
    assert(max_size >= 1 && max_size <= kMaxQueueSize && (max_size & (max_size - 1)) == 0);
}

bool Virtqueue::set_size(uint16_t size) {
    if (size == 0 || size > m_max_size || (size & (size - 1)) != 0) return false;
    m_size = size;
    return true;
}

void Virtqueue::reset() {
    m_size = m_max_size;
    m_enabled = false;
    m_desc_addr = m_driver_addr = m_device_addr = 0;
    m_msix_vector = kNoVector;
    m_ready = false;
    m_broken = false;
    m_event_idx = false;
    m_indirect = false;
    m_memory = nullptr;
    m_desc = nullptr;
    m_avail = m_used = nullptr;
    m_last_avail = m_next_used = m_signalled_used = 0;
    m_signalled_valid = false;
}

Status Virtqueue::activate(const GuestMemory& memory, uint64_t features) {
    m_ready = false;
    if ((m_desc_addr % kDescAlign) != 0 || (m_driver_addr % kAvailAlign) != 0 ||
        (m_device_addr % kUsedAlign) != 0) {
        return make_error("ring misaligned (desc 0x{:x}, driver 0x{:x}, device 0x{:x})", m_desc_addr,
                          m_driver_addr, m_device_addr);
    }
    uint8_t* desc = memory.host_ptr(m_desc_addr, desc_table_size(m_size));
    uint8_t* avail = memory.host_ptr(m_driver_addr, avail_ring_size(m_size));
    uint8_t* used = memory.host_ptr(m_device_addr, used_ring_size(m_size));
    if (desc == nullptr)
        return make_error("descriptor table 0x{:x} (size {}) is outside guest RAM", m_desc_addr, m_size);
    if (avail == nullptr)
        return make_error("driver area 0x{:x} (size {}) is outside guest RAM", m_driver_addr, m_size);
    if (used == nullptr)
        return make_error("device area 0x{:x} (size {}) is outside guest RAM", m_device_addr, m_size);
    m_memory = &memory;
    m_desc = desc;
    m_avail = avail;
    m_used = used;
    m_event_idx = (features & feature_bit(kFeatureRingEventIdx)) != 0;
    m_indirect = (features & feature_bit(kFeatureRingIndirectDesc)) != 0;
    m_ready = true;
    return {};
}

uint16_t Virtqueue::load_avail_idx() const {
    return load_acquire16(m_avail + 2);
}

uint16_t Virtqueue::pending() const {
    if (!ready()) return 0;
    return static_cast<uint16_t>(load_avail_idx() - m_last_avail);
}

Status Virtqueue::fail(Error error) {
    m_broken = true;
    return error;
}

Result<bool> Virtqueue::pop(DescriptorChain& chain) {
    chain.clear();
    if (!ready()) return false;
    uint16_t avail_idx = load_avail_idx();
    uint16_t available = static_cast<uint16_t>(avail_idx - m_last_avail);
    if (available == 0) return false;
    // §2.7.13: the driver never makes more than a queue's worth of entries available.
    if (available > m_size) {
        return fail(make_error("available index jumped by {} entries on a queue of {}", available, m_size))
            .error();
    }
    uint16_t slot = static_cast<uint16_t>(m_last_avail % m_size);
    uint16_t head = load_relaxed16(m_avail + 4 + 2u * slot);  // ordered by the acquire above
    if (head >= m_size)
        return fail(make_error("available ring slot {} names descriptor {} >= queue size {}", slot, head,
                               m_size))
            .error();
    auto walked = walk(head, chain);
    if (!walked.ok()) return fail(std::move(walked).error()).error();
    ++m_last_avail;
    return true;
}

Result<bool> Virtqueue::walk(uint16_t head, DescriptorChain& chain) {
    chain.m_head = head;
    const uint8_t* table = m_desc;
    uint32_t table_size = m_size;
    bool in_indirect = false;
    uint32_t index = head;
    // §2.7.5.3.1 / §2.7.13.3: a chain is never longer than the queue, indirect part included.
    // Counting every descriptor also ends any loop.
    uint32_t budget = m_size;
    for (;;) {
        if (chain.m_descriptors >= budget) {
            return make_error("descriptor chain from head {} is longer than the queue size {} (loop?)", head,
                              m_size);
        }
        VirtqDesc d;
        std::memcpy(&d, table + 16ull * index, sizeof d);  // read once; the guest may rewrite it
        ++chain.m_descriptors;
        uint64_t addr = d.addr;
        uint32_t len = d.len;
        uint16_t flags = d.flags;

        if (flags & kDescFlagIndirect) {
            if (!m_indirect)
                return make_error("descriptor {} is indirect but VIRTIO_F_INDIRECT_DESC was not negotiated",
                                  index);
            if (in_indirect)
                return make_error("indirect table at 0x{:x} holds another indirect descriptor", addr);
            if (flags & kDescFlagNext) return make_error("descriptor {} sets both INDIRECT and NEXT", index);
            if (len == 0 || len % sizeof(VirtqDesc) != 0)
                return make_error("indirect table at 0x{:x} has length {} (not a non-zero multiple of 16)",
                                  addr, len);
            uint32_t entries = len / sizeof(VirtqDesc);
            if (entries > m_size)
                return make_error("indirect table at 0x{:x} has {} entries, more than the queue size {}",
                                  addr, entries, m_size);
            const uint8_t* host = m_memory->host_ptr(addr, len);
            if (host == nullptr)
                return make_error("indirect table 0x{:x}+0x{:x} is outside guest RAM", addr, len);
            table = host;
            table_size = entries;
            in_indirect = true;
            index = 0;
            continue;
        }

        if (len == 0) return make_error("descriptor {} (addr 0x{:x}) has length 0", index, addr);
        uint8_t* host = m_memory->host_ptr(addr, len);
        if (host == nullptr)
            return make_error("descriptor {} buffer 0x{:x}+0x{:x} is outside guest RAM", index, addr, len);
        if (flags & kDescFlagWrite) {
            chain.m_writable.push_back(iovec{host, len});
            chain.m_writable_bytes += len;
        } else {
            // §2.7.4.2: device-readable buffers come before device-writable ones.
            if (!chain.m_writable.empty())
                return make_error("descriptor {} is device-readable after a device-writable one", index);
            chain.m_readable.push_back(iovec{host, len});
            chain.m_readable_bytes += len;
        }
        if ((flags & kDescFlagNext) == 0) return true;
        uint16_t next = d.next;
        if (next >= table_size)
            return make_error("descriptor {} points to next {} outside its table of {}", index, next,
                              table_size);
        index = next;
    }
}

void Virtqueue::undo_pop(uint16_t count) {
    m_last_avail = static_cast<uint16_t>(m_last_avail - count);
}

void Virtqueue::add_used(uint16_t head, uint32_t len) {
    if (!ready()) return;
    uint16_t slot = static_cast<uint16_t>(m_next_used % m_size);
    VirtqUsedElem elem{head, len};
    std::memcpy(m_used + 4 + 8u * slot, &elem, sizeof elem);
    ++m_next_used;
    // The element must be visible before the index that publishes it (§2.7.8.2).
    store_release16(m_used + 2, m_next_used);
}

bool Virtqueue::needs_notification() {
    if (!ready()) return false;
    // Our used idx store must be ordered before we read the driver's suppression state, or we
    // can miss a driver that just re-enabled interrupts (§2.7.10).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (m_event_idx) {
        uint16_t used_event = load_relaxed16(m_avail + 4 + 2u * m_size);
        uint16_t old = m_signalled_used;
        bool valid = m_signalled_valid;
        m_signalled_used = m_next_used;
        m_signalled_valid = true;
        return !valid || vring_need_event(used_event, m_next_used, old);
    }
    return (load_relaxed16(m_avail) & kAvailFlagNoInterrupt) == 0;
}

bool Virtqueue::enable_notification(uint16_t seen) {
    if (!ready()) return false;
    // The driver notifies once its avail idx passes avail_event: with chains already seen,
    // that is after the last of them, not after the last one popped.
    auto wait_from = static_cast<uint16_t>(m_last_avail + seen);
    if (m_event_idx) store_release16(m_used + 4 + 8u * m_size, wait_from);
    // Publish avail_event before re-reading avail idx, pairing with the driver's barrier
    // between its idx update and its avail_event check (§2.7.13.3.1).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    // Past the chains seen (modulo 2^16: at most a queue's worth is ever available).
    auto available = static_cast<uint16_t>(load_avail_idx() - m_last_avail);
    return available > seen;
}

nlohmann::json Virtqueue::save_state() const {
    return nlohmann::json{
        {"version", 1},
        {"size", m_size},
        {"enabled", m_enabled},
        {"desc", m_desc_addr},
        {"driver", m_driver_addr},
        {"device", m_device_addr},
        {"msix_vector", m_msix_vector},
        {"broken", m_broken},
        {"last_avail", m_last_avail},
        {"next_used", m_next_used},
        {"signalled_used", m_signalled_used},
        {"signalled_valid", m_signalled_valid},
    };
}

Status Virtqueue::restore_state(const nlohmann::json& state) {
    pci::StateFields f(state, "virtqueue", 1);
    auto size = static_cast<uint16_t>(f.number("size", m_max_size));
    bool enabled = f.boolean("enabled");
    uint64_t desc = f.number("desc", ~uint64_t{0});
    uint64_t driver = f.number("driver", ~uint64_t{0});
    uint64_t device = f.number("device", ~uint64_t{0});
    auto vector = static_cast<uint16_t>(f.number("msix_vector", 0xFFFF));
    bool broken = f.boolean("broken");
    auto last_avail = static_cast<uint16_t>(f.number("last_avail", 0xFFFF));
    auto next_used = static_cast<uint16_t>(f.number("next_used", 0xFFFF));
    auto signalled_used = static_cast<uint16_t>(f.number("signalled_used", 0xFFFF));
    bool signalled_valid = f.boolean("signalled_valid");
    VIREO_TRY(f.status());
    if (size == 0 || (size & (size - 1)) != 0)
        return make_error("virtqueue snapshot: size {} is not a power of two", size);
    reset();
    m_size = size;
    m_enabled = enabled;
    m_desc_addr = desc;
    m_driver_addr = driver;
    m_device_addr = device;
    m_msix_vector = vector;
    m_last_avail = last_avail;
    m_next_used = next_used;
    m_signalled_used = signalled_used;
    m_signalled_valid = signalled_valid;
    m_broken = broken;
    return {};
}

}  // namespace vireo::devices::virtio
