// PciConfigSpace: one function's configuration space (type 0 header, capability list, BARs) with
// per-bit write masks, so guest writes only change what the hardware would let them change.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "devices/pci/pci_regs.hpp"

namespace vireo::devices::pci {

// What identifies a function to the guest's drivers.
struct PciIdentity {
    uint16_t vendor_id = 0;
    uint16_t device_id = 0;
    uint16_t subsystem_vendor_id = 0;
    uint16_t subsystem_id = 0;
    uint8_t revision = 0;
    uint32_t class_code = 0;    // base class << 16 | subclass << 8 | programming interface
    uint8_t interrupt_pin = 0;  // 0: no INTx; 1..4: INTA#..INTD#
};

enum class BarKind : uint8_t { kNone, kMemory32, kMemory64, kIo };

struct BarInfo {
    BarKind kind = BarKind::kNone;
    uint64_t size = 0;  // a power of two: >= 16 for memory, >= 4 for I/O
    bool prefetchable = false;
};

class PciConfigSpace {
  public:
    explicit PciConfigSpace(const PciIdentity& identity);

    // Guest accesses: any offset and size inside the 4 KiB space. Bytes past the end read as
    // all ones and ignore writes. write() applies the read-only and write-1-to-clear masks.
    void read(uint32_t offset, std::span<uint8_t> out) const;
    void write(uint32_t offset, std::span<const uint8_t> in);

    // Device-side access: raw, ignores masks (the device sets its own read-only state).
    uint8_t u8(uint32_t offset) const { return m_data[offset]; }
    uint16_t u16(uint32_t offset) const;
    uint32_t u32(uint32_t offset) const;
    void set_u8(uint32_t offset, uint8_t value) { m_data[offset] = value; }
    void set_u16(uint32_t offset, uint16_t value);
    void set_u32(uint32_t offset, uint32_t value);
    // Which bits of [offset, offset+len) the guest may write (a bit mask per byte).
    void set_writable(uint32_t offset, std::span<const uint8_t> mask);
    void set_writable_u16(uint32_t offset, uint16_t mask);
    void set_writable_u32(uint32_t offset, uint32_t mask);

    // Appends a capability (bytes[0] = ID; bytes[1], the next pointer, is filled in) at the next
    // dword boundary and links it; returns its offset. `writable` (same length, or empty for
    // read-only) masks guest writes. Asserts that it fits in the 256-byte space: the set of
    // capabilities is fixed by the device's code, so running out is a host bug.
    uint16_t add_capability(std::span<const uint8_t> bytes, std::span<const uint8_t> writable = {});
    // Offset of the first capability with this ID, or 0.
    uint16_t find_capability(uint8_t id) const;

    // BARs. define_bar() sets the type bits and the size mask (which makes the sizing protocol
    // work: writing all ones reads back ~(size-1) | type). A 64-bit BAR takes index and index+1.
    void define_bar(int index, const BarInfo& info);
    const BarInfo& bar_info(int index) const { return m_bars[static_cast<size_t>(index)]; }
    // The address the BAR registers hold now (both halves of a 64-bit BAR), without type bits.
    uint64_t bar_address(int index) const;
    // Programs the address (the VMM's own assignment; a guest reprograms through write()).
    void set_bar_address(int index, uint64_t address);

    uint16_t command() const { return u16(reg(Reg::kCommand)); }
    void set_interrupt_status(bool asserted);

    std::span<const uint8_t> bytes() const { return m_data; }
    // Restores the bytes of a saved space; the masks and BAR layout stay those the device
    // defined (they come from the device's code, not from the snapshot).
    void restore_bytes(std::span<const uint8_t> bytes);

  private:
    std::array<uint8_t, kExtConfigSpaceSize> m_data{};
    std::array<uint8_t, kExtConfigSpaceSize> m_writable{};
    std::array<uint8_t, kExtConfigSpaceSize> m_write1_clear{};
    std::array<BarInfo, kNumBars> m_bars{};
    uint16_t m_last_capability = 0;
    uint16_t m_next_capability = kHeaderSize;
};

}  // namespace vireo::devices::pci
