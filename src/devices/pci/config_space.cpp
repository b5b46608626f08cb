// PCI configuration space with write masks, capability list and the BAR sizing protocol.
#include "devices/pci/config_space.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/endian.hpp"

namespace vireo::devices::pci {

PciConfigSpace::PciConfigSpace(const PciIdentity& id) {
    set_u16(reg(Reg::kVendorId), id.vendor_id);
    set_u16(reg(Reg::kDeviceId), id.device_id);
    set_u8(reg(Reg::kRevisionId), id.revision);
    set_u8(reg(Reg::kClassProgIf), static_cast<uint8_t>(id.class_code));
    set_u8(reg(Reg::kSubclass), static_cast<uint8_t>(id.class_code >> 8));
    set_u8(reg(Reg::kClassCode), static_cast<uint8_t>(id.class_code >> 16));
    set_u16(reg(Reg::kSubsystemVendorId), id.subsystem_vendor_id);
    set_u16(reg(Reg::kSubsystemId), id.subsystem_id);
    set_u8(reg(Reg::kInterruptPin), id.interrupt_pin);

    set_writable_u16(reg(Reg::kCommand), kCommandWritable);
    uint16_t w1c = kStatusWrite1ToClear;
    for (int i = 0; i < 2; ++i)
        m_write1_clear[reg(Reg::kStatus) + i] = static_cast<uint8_t>(w1c >> (8 * i));
    // Cache line size and latency timer are plain storage to software (PCI 3.0 §6.2.4).
    m_writable[reg(Reg::kCacheLineSize)] = 0xFF;
    m_writable[reg(Reg::kLatencyTimer)] = 0xFF;
    m_writable[reg(Reg::kInterruptLine)] = 0xFF;
}

uint16_t PciConfigSpace::u16(uint32_t offset) const {
    return load_le<uint16_t>(&m_data[offset]);
}
uint32_t PciConfigSpace::u32(uint32_t offset) const {
    return load_le<uint32_t>(&m_data[offset]);
}
void PciConfigSpace::set_u16(uint32_t offset, uint16_t value) {
    store_le(&m_data[offset], value);
}
void PciConfigSpace::set_u32(uint32_t offset, uint32_t value) {
    store_le(&m_data[offset], value);
}

void PciConfigSpace::set_writable(uint32_t offset, std::span<const uint8_t> mask) {
    assert(offset + mask.size() <= m_writable.size());
    std::memcpy(&m_writable[offset], mask.data(), mask.size());
}
void PciConfigSpace::set_writable_u16(uint32_t offset, uint16_t mask) {
    store_le(&m_writable[offset], mask);
}
void PciConfigSpace::set_writable_u32(uint32_t offset, uint32_t mask) {
    store_le(&m_writable[offset], mask);
}

void PciConfigSpace::read(uint32_t offset, std::span<uint8_t> out) const {
    for (size_t i = 0; i < out.size(); ++i) {
        uint64_t at = uint64_t{offset} + i;
        out[i] = at < m_data.size() ? m_data[at] : 0xFF;
    }
}

void PciConfigSpace::write(uint32_t offset, std::span<const uint8_t> in) {
    for (size_t i = 0; i < in.size(); ++i) {
        uint64_t at = uint64_t{offset} + i;
        if (at >= m_data.size()) break;
        uint8_t w = m_writable[at];
        uint8_t v = static_cast<uint8_t>((m_data[at] & ~w) | (in[i] & w));
        v = static_cast<uint8_t>(v & ~(in[i] & m_write1_clear[at]));
        m_data[at] = v;
    }
}

uint16_t PciConfigSpace::add_capability(std::span<const uint8_t> bytes, std::span<const uint8_t> writable) {
    assert(bytes.size() >= 2);
    assert(writable.empty() || writable.size() == bytes.size());
    uint16_t at = m_next_capability;
    assert(at + bytes.size() <= kConfigSpaceSize);
    std::memcpy(&m_data[at], bytes.data(), bytes.size());
    m_data[at + 1] = 0;
    if (!writable.empty()) set_writable(at, writable);
    if (m_last_capability == 0) {
        m_data[reg(Reg::kCapabilitiesPointer)] = static_cast<uint8_t>(at);
        set_u16(reg(Reg::kStatus), static_cast<uint16_t>(u16(reg(Reg::kStatus)) | kStatusCapabilitiesList));
    } else {
        m_data[m_last_capability + 1] = static_cast<uint8_t>(at);
    }
    m_last_capability = at;
    m_next_capability = static_cast<uint16_t>((at + bytes.size() + 3) & ~size_t{3});
    return at;
}

uint16_t PciConfigSpace::find_capability(uint8_t id) const {
    uint16_t at = m_data[reg(Reg::kCapabilitiesPointer)];
    // The list lives in the first 256 bytes; 48 dword-aligned slots bound the walk.
    for (int hops = 0; at >= kHeaderSize && at < kConfigSpaceSize && hops < 48; ++hops) {
        if (m_data[at] == id) return at;
        at = m_data[at + 1] & 0xFC;
    }
    return 0;
}

void PciConfigSpace::define_bar(int index, const BarInfo& info) {
    assert(index >= 0 && index < kNumBars);
    assert(info.kind != BarKind::kMemory64 || index + 1 < kNumBars);
    assert(info.size != 0 && (info.size & (info.size - 1)) == 0);
    auto i = static_cast<size_t>(index);
    m_bars[i] = info;
    uint32_t off = reg(Reg::kBar0) + 4 * static_cast<uint32_t>(index);
    uint64_t size_mask = ~(info.size - 1);
    switch (info.kind) {
        case BarKind::kNone:
            break;
        case BarKind::kIo:
            assert(info.size >= 4);
            set_u32(off, kBarIoSpace);
            set_writable_u32(off, static_cast<uint32_t>(size_mask) & kBarIoAddressMask);
            break;
        case BarKind::kMemory32:
            assert(info.size >= 16 && info.size <= (uint64_t{1} << 31));
            set_u32(off, info.prefetchable ? kBarPrefetchable : 0);
            set_writable_u32(off, static_cast<uint32_t>(size_mask) & kBarMemAddressMask);
            break;
        case BarKind::kMemory64:
            assert(info.size >= 16);
            set_u32(off, kBarMem64 | (info.prefetchable ? kBarPrefetchable : 0));
            set_writable_u32(off, static_cast<uint32_t>(size_mask) & kBarMemAddressMask);
            set_u32(off + 4, 0);
            set_writable_u32(off + 4, static_cast<uint32_t>(size_mask >> 32));
            m_bars[i + 1] = BarInfo{};  // the upper half is not a BAR of its own
            break;
    }
}

uint64_t PciConfigSpace::bar_address(int index) const {
    const BarInfo& info = bar_info(index);
    uint32_t off = reg(Reg::kBar0) + 4 * static_cast<uint32_t>(index);
    switch (info.kind) {
        case BarKind::kNone:
            return 0;
        case BarKind::kIo:
            return u32(off) & kBarIoAddressMask;
        case BarKind::kMemory32:
            return u32(off) & kBarMemAddressMask;
        case BarKind::kMemory64:
            return (uint64_t{u32(off + 4)} << 32) | (u32(off) & kBarMemAddressMask);
    }
    return 0;
}

void PciConfigSpace::set_bar_address(int index, uint64_t address) {
    const BarInfo& info = bar_info(index);
    assert(info.kind != BarKind::kNone);
    assert((address & (info.size - 1)) == 0);
    uint32_t off = reg(Reg::kBar0) + 4 * static_cast<uint32_t>(index);
    uint32_t type_bits = u32(off) & (info.kind == BarKind::kIo ? ~kBarIoAddressMask : ~kBarMemAddressMask);
    set_u32(off, static_cast<uint32_t>(address) | type_bits);
    if (info.kind == BarKind::kMemory64) set_u32(off + 4, static_cast<uint32_t>(address >> 32));
}

void PciConfigSpace::set_interrupt_status(bool asserted) {
    uint16_t status = u16(reg(Reg::kStatus));
    status = asserted ? static_cast<uint16_t>(status | kStatusInterrupt)
                      : static_cast<uint16_t>(status & ~kStatusInterrupt);
    set_u16(reg(Reg::kStatus), status);
}

void PciConfigSpace::restore_bytes(std::span<const uint8_t> bytes) {
    size_t n = std::min(bytes.size(), m_data.size());
    std::memcpy(m_data.data(), bytes.data(), n);
}

}  // namespace vireo::devices::pci
