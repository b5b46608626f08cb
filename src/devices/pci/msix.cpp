// MSI-X capability, table and PBA.
#include "devices/pci/msix.hpp"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/endian.hpp"
#include "devices/pci/state_util.hpp"

namespace vireo::devices::pci {

namespace {
// Table entry fields (PCI 3.0 §6.8.2.6-9).
constexpr uint32_t kAddressLow = 0;
constexpr uint32_t kAddressHigh = 4;
constexpr uint32_t kData = 8;
constexpr uint32_t kVectorControl = 12;
}  // namespace

Msix::Msix(PciConfigSpace& config, uint16_t vectors, int bar, uint32_t table_offset, uint32_t pba_offset)
    : m_config(config), m_vectors(vectors) {
    assert(vectors >= 1 && vectors <= kMaxVectors);
    assert(bar >= 0 && bar < kNumBars);
    assert((table_offset & 7) == 0 && (pba_offset & 7) == 0);
    uint8_t cap[12] = {};
    cap[0] = kCapIdMsix;
    store_le<uint16_t>(&cap[2], static_cast<uint16_t>(vectors - 1));
    store_le<uint32_t>(&cap[4], table_offset | static_cast<uint32_t>(bar));
    store_le<uint32_t>(&cap[8], pba_offset | static_cast<uint32_t>(bar));
    uint8_t writable[12] = {};
    store_le<uint16_t>(&writable[2], kControlEnable | kControlFunctionMask);
    m_cap = config.add_capability(cap, writable);
    m_table.resize(size_t{vectors} * kEntrySize);
    m_pending.resize((size_t{vectors} + 63) / 64);
    reset();
}

void Msix::reset() {
    std::fill(m_table.begin(), m_table.end(), 0);
    for (uint16_t v = 0; v < m_vectors; ++v)
        store_le<uint32_t>(&m_table[size_t{v} * kEntrySize + kVectorControl], kVectorControlMask);
    std::fill(m_pending.begin(), m_pending.end(), 0);
    uint16_t control = m_config.u16(m_cap + 2u);
    m_config.set_u16(m_cap + 2u, static_cast<uint16_t>(control & ~(kControlEnable | kControlFunctionMask)));
    m_enabled = false;
    m_function_masked = false;
}

uint32_t Msix::entry_u32(uint16_t vector, uint32_t field) const {
    return load_le<uint32_t>(&m_table[size_t{vector} * kEntrySize + field]);
}

bool Msix::masked(uint16_t vector) const {
    return (entry_u32(vector, kVectorControl) & kVectorControlMask) != 0;
}

bool Msix::pending(uint16_t vector) const {
    return vector < m_vectors && ((m_pending[vector / 64] >> (vector % 64)) & 1) != 0;
}

void Msix::config_written(uint32_t offset, size_t size) {
    uint32_t control_at = m_cap + 2u;
    if (offset > control_at + 1 || offset + size <= control_at) return;
    uint16_t control = m_config.u16(control_at);
    bool was_deliverable = m_enabled && !m_function_masked;
    m_enabled = (control & kControlEnable) != 0;
    m_function_masked = (control & kControlFunctionMask) != 0;
    if (!was_deliverable && m_enabled && !m_function_masked) deliver_all_pending();
}

void Msix::table_read(uint64_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        data[i] = at < m_table.size() ? m_table[at] : 0xFF;
    }
}

void Msix::table_write(uint64_t offset, std::span<const uint8_t> data) {
    // Byte-granular, so any access width the guest uses lands where it points. Reserved bits of
    // the vector control word stay 0; the message address is dword aligned (§6.8.2.6).
    uint16_t first = static_cast<uint16_t>(std::min<uint64_t>(offset / kEntrySize, m_vectors));
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        if (at >= m_table.size()) break;
        uint32_t field = static_cast<uint32_t>(at % kEntrySize);
        uint8_t value = data[i];
        if (field == kAddressLow) value &= 0xFC;
        if (field == kVectorControl) value &= static_cast<uint8_t>(kVectorControlMask);
        if (field > kVectorControl) value = 0;
        m_table[at] = value;
    }
    // A vector that is now unmasked and has its pending bit set is delivered (§6.8.2.9).
    uint64_t end = std::min<uint64_t>((offset + data.size() + kEntrySize - 1) / kEntrySize, m_vectors);
    for (uint64_t v = first; v < end; ++v) {
        if (!masked(static_cast<uint16_t>(v))) deliver_pending(static_cast<uint16_t>(v));
    }
}

void Msix::pba_read(uint64_t offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        uint64_t word = at / 8;
        data[i] = word < m_pending.size() ? static_cast<uint8_t>(m_pending[word] >> (8 * (at % 8))) : 0xFF;
    }
}

void Msix::notify(uint16_t vector) {
    if (vector >= m_vectors) return;
    if (!m_enabled) return;  // no MSI-X: the caller uses INTx
    if (m_function_masked || masked(vector)) {
        m_pending[vector / 64] |= uint64_t{1} << (vector % 64);
        return;
    }
    uint64_t address = (uint64_t{entry_u32(vector, kAddressHigh)} << 32) | entry_u32(vector, kAddressLow);
    if (m_sink) m_sink->deliver(vector, address, entry_u32(vector, kData));
}

void Msix::deliver_pending(uint16_t vector) {
    if (!pending(vector) || !m_enabled || m_function_masked || masked(vector)) return;
    m_pending[vector / 64] &= ~(uint64_t{1} << (vector % 64));
    notify(vector);
}

void Msix::deliver_all_pending() {
    for (uint16_t v = 0; v < m_vectors; ++v)
        deliver_pending(v);
}

nlohmann::json Msix::save_state() const {
    std::vector<uint8_t> pba(m_pending.size() * 8);
    for (size_t i = 0; i < m_pending.size(); ++i)
        store_le<uint64_t>(&pba[i * 8], m_pending[i]);
    return nlohmann::json{{"version", 1}, {"table", bytes_to_hex(m_table)}, {"pba", bytes_to_hex(pba)}};
}

Status Msix::restore_state(const nlohmann::json& state) {
    StateFields fields(state, "msix", 1);
    auto table = fields.bytes("table", m_table.size());
    auto pba = fields.bytes("pba", m_pending.size() * 8);
    VIREO_TRY(fields.status());
    m_table = std::move(table);
    for (size_t i = 0; i < m_pending.size(); ++i)
        m_pending[i] = load_le<uint64_t>(&pba[i * 8]);
    sync_from_config();
    return {};
}

void Msix::sync_from_config() {
    uint16_t control = m_config.u16(m_cap + 2u);
    m_enabled = (control & kControlEnable) != 0;
    m_function_masked = (control & kControlFunctionMask) != 0;
}

}  // namespace vireo::devices::pci
