// Port I/O and MMIO buses: devices see only offsets inside the range they were registered at.
#pragma once

#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <span>
#include <string>
#include <vector>

#include "base/result.hpp"

namespace vireo::devices {

// A device on a bus. Accesses may arrive from several vCPU threads and the I/O thread at once;
// a device that keeps state guards it itself (the bus does not serialize).
class BusDevice {
  public:
    virtual ~BusDevice() = default;
    // `offset` is relative to the base the device was inserted at; data.size() is 1, 2, 4 or 8.
    virtual void read(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write(uint64_t offset, std::span<const uint8_t> data) = 0;
};

// An address map: sorted, non-overlapping ranges, looked up by binary search.
class Bus {
  public:
    explicit Bus(std::string name) : m_name(std::move(name)) {}

    // Refuses empty ranges, wrap-around and overlap with an existing range.
    Status insert(std::shared_ptr<BusDevice> device, uint64_t base, uint64_t length);
    // Removes the range starting at base (PCI BAR reprogramming). Returns false if none.
    bool remove(uint64_t base);

    // Dispatches to the device covering addr. Returns false when no device claims the address;
    // the caller decides what an unclaimed access means (reads fill with all ones).
    bool read(uint64_t addr, std::span<uint8_t> data) const;
    bool write(uint64_t addr, std::span<const uint8_t> data) const;

    const std::string& name() const { return m_name; }
    size_t size() const;

  private:
    struct Entry {
        uint64_t base;
        uint64_t length;
        std::shared_ptr<BusDevice> device;
    };
    // Returns the entry and the offset into it, or nullptr.
    const Entry* lookup(uint64_t addr, uint64_t len) const;

    std::string m_name;
    mutable std::shared_mutex m_lock;  // writers: insert/remove; readers: dispatch
    std::vector<Entry> m_entries;      // sorted by base
};

}  // namespace vireo::devices
