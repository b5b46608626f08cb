// Msix: a function's MSI-X capability, its vector table and pending-bit array (PCI 3.0 §6.8.2),
// delivering unmasked vectors through an MsixVectorSink and latching masked ones as pending.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "devices/irq.hpp"
#include "devices/pci/config_space.hpp"

namespace vireo::devices::pci {

// Where a function's MSI-X messages go. The VMM implements it per function with one KVM GSI
// route and irqfd per vector (so delivery is an eventfd write that skips the vCPU threads);
// MsiSinkVectors adapts a plain MsiSink (KVM_SIGNAL_MSI, or a test counter).
class MsixVectorSink {
  public:
    virtual ~MsixVectorSink() = default;
    // Deliver vector `vector`, whose table entry currently holds (address, data). Called with
    // the function's lock held, from the I/O thread or a vCPU thread.
    virtual void deliver(uint16_t vector, uint64_t address, uint32_t data) = 0;
};

class MsiSinkVectors final : public MsixVectorSink {
  public:
    explicit MsiSinkVectors(std::shared_ptr<MsiSink> sink) : m_sink(std::move(sink)) {}
    void deliver(uint16_t, uint64_t address, uint32_t data) override { m_sink->signal(address, data); }

  private:
    std::shared_ptr<MsiSink> m_sink;
};

class Msix {
  public:
    static constexpr uint16_t kMaxVectors = 2048;  // table size field is 11 bits
    static constexpr uint32_t kEntrySize = 16;
    static constexpr uint16_t kControlEnable = 1u << 15;
    static constexpr uint16_t kControlFunctionMask = 1u << 14;
    static constexpr uint32_t kVectorControlMask = 1u << 0;

    // Adds the capability to `config`. The table and the PBA live in BAR `bar` at the given
    // offsets (8-byte aligned, PCI 3.0 §6.8.2.4).
    Msix(PciConfigSpace& config, uint16_t vectors, int bar, uint32_t table_offset, uint32_t pba_offset);

    uint16_t vectors() const { return m_vectors; }
    uint16_t capability_offset() const { return m_cap; }
    uint32_t table_size_bytes() const { return uint32_t{m_vectors} * kEntrySize; }
    uint32_t pba_size_bytes() const { return ((uint32_t{m_vectors} + 63) / 64) * 8; }

    void set_sink(std::shared_ptr<MsixVectorSink> sink) { m_sink = std::move(sink); }

    bool enabled() const { return m_enabled; }
    bool function_masked() const { return m_function_masked; }

    // After a guest write to configuration space at [offset, offset+size): picks up the
    // enable and function-mask bits and delivers what became deliverable.
    void config_written(uint32_t offset, size_t size);

    // Guest accesses to the table and PBA regions (offsets relative to their start).
    void table_read(uint64_t offset, std::span<uint8_t> data) const;
    void table_write(uint64_t offset, std::span<const uint8_t> data);
    void pba_read(uint64_t offset, std::span<uint8_t> data) const;

    // Signals `vector`: delivered now, or latched in the PBA while masked. Vectors past the
    // table are ignored (the caller validated what the guest asked for).
    void notify(uint16_t vector);
    bool pending(uint16_t vector) const;
    bool masked(uint16_t vector) const;

    // Function-level reset: every vector masked, nothing pending, MSI-X disabled.
    void reset();

    nlohmann::json save_state() const;
    // Validates first; applies nothing on error. Then re-reads enable/mask from `config`.
    Status restore_state(const nlohmann::json& state);
    // Re-reads the enable and function-mask bits from configuration space without delivering
    // anything (after a snapshot restore rewrote it).
    void sync_from_config();

  private:
    uint32_t entry_u32(uint16_t vector, uint32_t field) const;
    void deliver_pending(uint16_t vector);
    void deliver_all_pending();

    PciConfigSpace& m_config;
    uint16_t m_vectors;
    uint16_t m_cap = 0;
    bool m_enabled = false;
    bool m_function_masked = false;
    std::vector<uint8_t> m_table;     // vectors * 16 bytes, little-endian as the guest sees it
    std::vector<uint64_t> m_pending;  // one bit per vector
    std::shared_ptr<MsixVectorSink> m_sink;
};

}  // namespace vireo::devices::pci
