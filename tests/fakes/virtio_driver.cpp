// The test-side virtio PCI driver.
#include "fakes/virtio_driver.hpp"

#include <cassert>
#include <stdexcept>

namespace vireo::testing {

using namespace devices::virtio;
namespace pci = devices::pci;

VirtioTestDriver::VirtioTestDriver(FakeGuestMemory& memory, Transport& device)
    : m_memory(memory), m_device(device) {
    m_device.set_msix_sink(std::make_shared<pci::MsiSinkVectors>(m_msi));
    // Walk the capability list as a driver does (§4.1.4).
    uint16_t status = static_cast<uint16_t>(cfg_read(pci::reg(pci::Reg::kStatus), 2));
    if ((status & pci::kStatusCapabilitiesList) == 0) throw std::runtime_error("no capability list");
    uint8_t at = static_cast<uint8_t>(cfg_read(pci::reg(pci::Reg::kCapabilitiesPointer), 1));
    for (int hops = 0; at != 0 && hops < 48; ++hops) {
        uint8_t id = static_cast<uint8_t>(cfg_read(at, 1));
        if (id == pci::kCapIdVendor) {
            Cap c{};
            c.type = static_cast<uint8_t>(cfg_read(at + 3u, 1));
            c.bar = static_cast<uint8_t>(cfg_read(at + 4u, 1));
            c.offset = cfg_read(at + 8u, 4);
            c.length = cfg_read(at + 12u, 4);
            c.extra = cfg_read(at + 2u, 1) >= 20 ? cfg_read(at + 16u, 4) : 0;
            c.config_offset = at;
            m_caps.push_back(c);
        }
        at = static_cast<uint8_t>(cfg_read(at + 1u, 1));
    }
}

const VirtioTestDriver::Cap* VirtioTestDriver::cap(uint8_t type) const {
    for (const auto& c : m_caps) {
        if (c.type == type) return &c;
    }
    return nullptr;
}

uint32_t VirtioTestDriver::cfg_read(uint32_t offset, size_t size) {
    uint8_t b[4] = {};
    m_device.config_read(offset, std::span<uint8_t>(b, size));
    return load_le<uint32_t>(b);
}

void VirtioTestDriver::cfg_write(uint32_t offset, uint32_t value, size_t size) {
    uint8_t b[4];
    store_le(b, value);
    m_device.config_write(offset, std::span<const uint8_t>(b, size));
}

void VirtioTestDriver::bar_read(uint64_t offset, uint8_t* out, size_t size) {
    m_device.bar_read(Transport::kBar, offset, std::span<uint8_t>(out, size));
}

void VirtioTestDriver::bar_write(uint64_t offset, uint64_t value, size_t size) {
    uint8_t b[8];
    store_le(b, value);
    m_device.bar_write(Transport::kBar, offset, std::span<const uint8_t>(b, size));
}

uint64_t VirtioTestDriver::common_read(Common reg, size_t size) {
    const Cap* c = cap(Transport::kCapCommon);
    uint8_t b[8] = {};
    if (size == 8) {  // 64-bit fields as two dwords, as Linux does
        bar_read(c->offset + static_cast<uint32_t>(reg), b, 4);
        bar_read(c->offset + static_cast<uint32_t>(reg) + 4, b + 4, 4);
    } else {
        bar_read(c->offset + static_cast<uint32_t>(reg), b, size);
    }
    return load_le<uint64_t>(b);
}

void VirtioTestDriver::common_write(Common reg, uint64_t value, size_t size) {
    const Cap* c = cap(Transport::kCapCommon);
    if (size == 8) {
        bar_write(c->offset + static_cast<uint32_t>(reg), value & 0xFFFFFFFF, 4);
        bar_write(c->offset + static_cast<uint32_t>(reg) + 4, value >> 32, 4);
    } else {
        bar_write(c->offset + static_cast<uint32_t>(reg), value, size);
    }
}

uint8_t VirtioTestDriver::read_isr() {
    uint8_t b = 0;
    bar_read(cap(Transport::kCapIsr)->offset, &b, 1);
    return b;
}

uint64_t VirtioTestDriver::device_features() {
    common_write(Common::kDeviceFeatureSelect, 0, 4);
    uint64_t lo = common_read(Common::kDeviceFeature, 4);
    common_write(Common::kDeviceFeatureSelect, 1, 4);
    uint64_t hi = common_read(Common::kDeviceFeature, 4);
    return hi << 32 | lo;
}

uint64_t VirtioTestDriver::device_cfg_read(uint32_t offset, size_t size) {
    uint8_t b[8] = {};
    bar_read(cap(Transport::kCapDevice)->offset + offset, b, size);
    return load_le<uint64_t>(b);
}

void VirtioTestDriver::device_cfg_read_bytes(uint32_t offset, uint8_t* out, size_t size) {
    for (size_t i = 0; i < size; ++i)
        bar_read(cap(Transport::kCapDevice)->offset + offset + i, out + i, 1);
}

void VirtioTestDriver::device_cfg_write(uint32_t offset, uint64_t value, size_t size) {
    bar_write(cap(Transport::kCapDevice)->offset + offset, value, size);
}

void VirtioTestDriver::reset() {
    set_status(0);
    m_queues.clear();
}

bool VirtioTestDriver::try_features(uint64_t features) {
    common_write(Common::kDriverFeatureSelect, 0, 4);
    common_write(Common::kDriverFeature, features & 0xFFFFFFFF, 4);
    common_write(Common::kDriverFeatureSelect, 1, 4);
    common_write(Common::kDriverFeature, features >> 32, 4);
    set_status(status() | kStatusFeaturesOk);
    bool ok = (status() & kStatusFeaturesOk) != 0;
    if (ok) m_event_idx = (features & feature_bit(kFeatureRingEventIdx)) != 0;
    return ok;
}

std::optional<uint64_t> VirtioTestDriver::negotiate(uint64_t wanted) {
    reset();
    if (status() != 0) return std::nullopt;
    set_status(kStatusAcknowledge);
    set_status(kStatusAcknowledge | kStatusDriver);
    uint64_t features = (device_features() & wanted) | feature_bit(kFeatureVersion1);
    if (!try_features(features)) return std::nullopt;
    return features;
}

void VirtioTestDriver::enable_msix() {
    uint16_t cap_at = 0;
    uint8_t at = static_cast<uint8_t>(cfg_read(pci::reg(pci::Reg::kCapabilitiesPointer), 1));
    for (int hops = 0; at != 0 && hops < 48; ++hops) {
        if (cfg_read(at, 1) == pci::kCapIdMsix) cap_at = at;
        at = static_cast<uint8_t>(cfg_read(at + 1u, 1));
    }
    assert(cap_at != 0);
    uint16_t vectors = static_cast<uint16_t>((cfg_read(cap_at + 2u, 2) & 0x7FF) + 1);
    uint32_t table = cfg_read(cap_at + 4u, 4) & ~7u;
    for (uint16_t v = 0; v < vectors; ++v) {
        uint32_t data = v == 0 ? kConfigVectorData : queue_vector_data(static_cast<uint16_t>(v - 1));
        bar_write(table + v * 16u, kMsiAddress, 4);
        bar_write(table + v * 16u + 4, 0, 4);
        bar_write(table + v * 16u + 8, data, 4);
        bar_write(table + v * 16u + 12, 0, 4);
    }
    cfg_write(cap_at + 2u, 0x8000, 2);  // MSI-X enable
    common_write(Common::kConfigMsixVector, 0, 2);
}

void VirtioTestDriver::setup_queue(uint16_t q, uint16_t size) {
    common_write(Common::kQueueSelect, q, 2);
    uint16_t max = static_cast<uint16_t>(common_read(Common::kQueueSize, 2));
    if (size == 0) size = max;
    common_write(Common::kQueueSize, size, 2);
    if (m_queues.size() <= q) m_queues.resize(q + 1u);
    Queue& queue = m_queues[q];
    queue = Queue{};
    queue.size = size;
    queue.desc = m_memory.alloc(desc_table_size(size), 16);
    queue.avail = m_memory.alloc(avail_ring_size(size), 2);
    queue.used = m_memory.alloc(used_ring_size(size), 4);
    for (int i = size - 1; i >= 0; --i)
        queue.free.push_back(static_cast<uint16_t>(i));
    queue.chains.resize(size);
    queue.indirect.resize(size, 0);
    common_write(Common::kQueueDesc, queue.desc, 8);
    common_write(Common::kQueueDriver, queue.avail, 8);
    common_write(Common::kQueueDevice, queue.used, 8);
    common_write(Common::kQueueMsixVector, q + 1u, 2);
    common_write(Common::kQueueEnable, 1, 2);
}

std::optional<uint64_t> VirtioTestDriver::init(uint64_t wanted, bool msix) {
    auto features = negotiate(wanted);
    if (!features) return std::nullopt;
    if (msix) enable_msix();
    uint16_t n = static_cast<uint16_t>(common_read(Common::kNumQueues, 2));
    for (uint16_t q = 0; q < n; ++q)
        setup_queue(q);
    driver_ok();
    return features;
}

uint16_t VirtioTestDriver::alloc_desc(Queue& queue) {
    if (queue.free.empty()) throw std::runtime_error("test driver: out of descriptors");
    uint16_t d = queue.free.back();
    queue.free.pop_back();
    return d;
}

void VirtioTestDriver::write_desc_at(uint64_t table, uint16_t index, uint64_t addr, uint32_t len,
                                     uint16_t flags, uint16_t next) {
    VirtqDesc d;
    d.addr = addr;
    d.len = len;
    d.flags = flags;
    d.next = next;
    m_memory.write(table + 16u * index, d);
}

void VirtioTestDriver::write_desc(uint16_t q, uint16_t index, uint64_t addr, uint32_t len, uint16_t flags,
                                  uint16_t next) {
    write_desc_at(m_queues.at(q).desc, index, addr, len, flags, next);
}

uint16_t VirtioTestDriver::post(uint16_t q, const std::vector<Buffer>& buffers, bool indirect) {
    Queue& queue = m_queues.at(q);
    assert(!buffers.empty());
    uint16_t head = 0;
    std::vector<uint16_t> used_descs;
    if (indirect) {
        uint64_t table = m_memory.alloc(16 * buffers.size(), 16);
        for (size_t i = 0; i < buffers.size(); ++i) {
            const Buffer& b = buffers[i];
            uint16_t flags = static_cast<uint16_t>((b.device_writable ? kDescFlagWrite : 0) |
                                                   (i + 1 < buffers.size() ? kDescFlagNext : 0));
            write_desc_at(table, static_cast<uint16_t>(i), b.gpa, b.len, flags, static_cast<uint16_t>(i + 1));
        }
        head = alloc_desc(queue);
        write_desc(q, head, table, static_cast<uint32_t>(16 * buffers.size()), kDescFlagIndirect, 0);
        used_descs.push_back(head);
        queue.indirect[head] = table;
    } else {
        // Built in place: the head's list keeps its storage from earlier chains, so a driver
        // reposting in a loop (the virtio-blk bench) does not allocate per request.
        head = alloc_desc(queue);
        std::vector<uint16_t>& ids = queue.chains[head];
        ids.clear();
        ids.push_back(head);
        for (size_t i = 1; i < buffers.size(); ++i)
            ids.push_back(alloc_desc(queue));
        for (size_t i = 0; i < buffers.size(); ++i) {
            const Buffer& b = buffers[i];
            uint16_t flags = static_cast<uint16_t>((b.device_writable ? kDescFlagWrite : 0) |
                                                   (i + 1 < buffers.size() ? kDescFlagNext : 0));
            write_desc(q, ids[i], b.gpa, b.len, flags, i + 1 < buffers.size() ? ids[i + 1] : 0);
        }
        publish(q, head);
        return head;
    }
    queue.chains[head] = used_descs;
    publish(q, head);
    return head;
}

void VirtioTestDriver::publish(uint16_t q, uint16_t head) {
    Queue& queue = m_queues.at(q);
    m_memory.write<uint16_t>(queue.avail + 4 + 2u * (queue.avail_idx % queue.size), to_le(head));
    ++queue.avail_idx;
    __atomic_store_n(reinterpret_cast<uint16_t*>(m_memory.host(queue.avail + 2)), to_le(queue.avail_idx),
                     __ATOMIC_RELEASE);
}

void VirtioTestDriver::set_avail_idx(uint16_t q, uint16_t idx) {
    Queue& queue = m_queues.at(q);
    queue.avail_idx = idx;
    m_memory.write<uint16_t>(queue.avail + 2, to_le(idx));
}

void VirtioTestDriver::kick(uint16_t q) {
    const Cap* c = cap(Transport::kCapNotify);
    common_write(Common::kQueueSelect, q, 2);
    uint64_t off = common_read(Common::kQueueNotifyOff, 2);
    bar_write(c->offset + off * c->extra, q, 2);
}

std::optional<VirtioTestDriver::Used> VirtioTestDriver::pop_used(uint16_t q) {
    Queue& queue = m_queues.at(q);
    uint16_t idx = from_le(
        __atomic_load_n(reinterpret_cast<uint16_t*>(m_memory.host(queue.used + 2)), __ATOMIC_ACQUIRE));
    if (idx == queue.last_used) return std::nullopt;
    auto elem = m_memory.read<VirtqUsedElem>(queue.used + 4 + 8u * (queue.last_used % queue.size));
    ++queue.last_used;
    if (m_event_idx) m_memory.write<uint16_t>(queue.avail + 4 + 2u * queue.size, to_le(queue.last_used));
    Used u{elem.id, elem.len};
    if (u.id < queue.size) {
        for (uint16_t d : queue.chains[u.id])
            queue.free.push_back(d);
        queue.chains[u.id].clear();
    }
    return u;
}

uint16_t VirtioTestDriver::used_idx(uint16_t q) {
    return from_le(m_memory.read<uint16_t>(m_queues.at(q).used + 2));
}

uint16_t VirtioTestDriver::avail_event(uint16_t q) {
    Queue& queue = m_queues.at(q);
    return from_le(m_memory.read<uint16_t>(queue.used + 4 + 8u * queue.size));
}

void VirtioTestDriver::set_used_event(uint16_t q, uint16_t value) {
    Queue& queue = m_queues.at(q);
    m_memory.write<uint16_t>(queue.avail + 4 + 2u * queue.size, to_le(value));
}

void VirtioTestDriver::set_no_interrupt(uint16_t q, bool on) {
    m_memory.write<uint16_t>(m_queues.at(q).avail, to_le<uint16_t>(on ? kAvailFlagNoInterrupt : 0));
}

}  // namespace vireo::testing
