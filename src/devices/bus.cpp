// Bus address map.
#include "devices/bus.hpp"

#include <algorithm>
#include <mutex>

namespace vireo::devices {

Status Bus::insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length) {
    if (!device) return make_error("{} bus: null device at 0x{:x}", m_name, base);
    if (length == 0) return make_error("{} bus: empty range at 0x{:x}", m_name, base);
    if (base + length < base)
        return make_error("{} bus: range 0x{:x}+0x{:x} wraps around", m_name, base, length);
    std::unique_lock lock(m_lock);
    auto it = std::lower_bound(m_entries.begin(), m_entries.end(), base,
                               [](const Entry& e, uint64_t b) { return e.base < b; });
    if (it != m_entries.end() && it->base < base + length) {
        return make_error("{} bus: range 0x{:x}+0x{:x} overlaps 0x{:x}+0x{:x}", m_name, base, length,
                          it->base, it->length);
    }
    if (it != m_entries.begin()) {
        auto prev = std::prev(it);
        if (prev->base + prev->length > base) {
            return make_error("{} bus: range 0x{:x}+0x{:x} overlaps 0x{:x}+0x{:x}", m_name, base, length,
                              prev->base, prev->length);
        }
    }
    m_entries.insert(it, Entry{base, length, std::move(device)});
    return {};
}

bool Bus::remove(uint64_t base) {
    std::unique_lock lock(m_lock);
    auto it =
        std::find_if(m_entries.begin(), m_entries.end(), [base](const Entry& e) { return e.base == base; });
    if (it == m_entries.end()) return false;
    m_entries.erase(it);
    return true;
}

size_t Bus::size() const {
    std::shared_lock lock(m_lock);
    return m_entries.size();
}

const Bus::Entry* Bus::lookup(uint64_t addr, uint64_t len) const {
    auto it = std::upper_bound(m_entries.begin(), m_entries.end(), addr,
                               [](uint64_t a, const Entry& e) { return a < e.base; });
    if (it == m_entries.begin()) return nullptr;
    --it;
    uint64_t off = addr - it->base;
    if (off >= it->length || len > it->length - off) return nullptr;
    return &*it;
}

bool Bus::read(uint64_t addr, std::span<uint8_t> data) const {
    std::shared_ptr<BusDevice> device;
    uint64_t base = 0;
    {
        std::shared_lock lock(m_lock);
        const Entry* e = lookup(addr, data.size());
        if (e == nullptr) return false;
        device = e->device;
        base = e->base;
    }
    device->read(addr - base, data);
    return true;
}

bool Bus::write(uint64_t addr, std::span<const uint8_t> data) const {
    std::shared_ptr<BusDevice> device;
    uint64_t base = 0;
    {
        std::shared_lock lock(m_lock);
        const Entry* e = lookup(addr, data.size());
        if (e == nullptr) return false;
        device = e->device;
        base = e->base;
    }
    device->write(addr - base, data);
    return true;
}

}  // namespace vireo::devices
