// CountingDevice: forwards a device's bus accesses and counts them (requests and bytes) for
// vm.counters. Accesses arrive from several vCPU threads, hence the atomics; one relaxed add
// per access is noise next to the VM exit that caused it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <span>

#include "devices/bus.hpp"

namespace vireo::vmm {

class CountingDevice final : public devices::BusDevice {
  public:
    explicit CountingDevice(std::shared_ptr<devices::BusDevice> inner) : m_inner(std::move(inner)) {}

    void read(uint64_t offset, std::span<uint8_t> data) override {
        m_inner->read(offset, data);
        count(data.size());
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        m_inner->write(offset, data);
        count(data.size());
    }

    uint64_t requests() const { return m_requests.load(std::memory_order_relaxed); }
    uint64_t bytes() const { return m_bytes.load(std::memory_order_relaxed); }

  private:
    void count(size_t bytes) {
        m_requests.fetch_add(1, std::memory_order_relaxed);
        m_bytes.fetch_add(bytes, std::memory_order_relaxed);
    }

    std::shared_ptr<devices::BusDevice> m_inner;
    std::atomic<uint64_t> m_requests{0};
    std::atomic<uint64_t> m_bytes{0};
};

}  // namespace vireo::vmm
