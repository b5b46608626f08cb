// Interrupt fakes for PCI and virtio tests: an MsiSink that records every message and an
// IrqLine that records its level and edges.
#pragma once

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "devices/irq.hpp"

namespace vireo::testing {

class MsiRecorder final : public devices::MsiSink {
  public:
    struct Message {
        uint64_t address;
        uint32_t data;
    };
    void signal(uint64_t address, uint32_t data) override {
        std::lock_guard lock(m_lock);
        m_messages.push_back({address, data});
    }
    size_t count() const {
        std::lock_guard lock(m_lock);
        return m_messages.size();
    }
    // Messages whose data field equals `data`.
    size_t count_data(uint32_t data) const {
        std::lock_guard lock(m_lock);
        size_t n = 0;
        for (const auto& m : m_messages)
            n += m.data == data;
        return n;
    }
    std::vector<Message> messages() const {
        std::lock_guard lock(m_lock);
        return m_messages;
    }
    void clear() {
        std::lock_guard lock(m_lock);
        m_messages.clear();
    }

  private:
    mutable std::mutex m_lock;
    std::vector<Message> m_messages;
};

class LevelRecorder final : public devices::IrqLine {
  public:
    void set_level(bool high) override {
        std::lock_guard lock(m_lock);
        if (high && !m_level) ++m_raises;
        m_level = high;
    }
    bool level() const {
        std::lock_guard lock(m_lock);
        return m_level;
    }
    uint64_t raises() const {
        std::lock_guard lock(m_lock);
        return m_raises;
    }

  private:
    mutable std::mutex m_lock;
    bool m_level = false;
    uint64_t m_raises = 0;
};

}  // namespace vireo::testing
