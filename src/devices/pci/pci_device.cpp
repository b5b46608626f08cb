// PciDevice: locking, INTx with the Interrupt Disable bit, BAR decode state, snapshot bytes.
#include "devices/pci/pci_device.hpp"

#include <cassert>

#include "devices/pci/state_util.hpp"

namespace vireo::devices::pci {

PciDevice::PciDevice(std::string name, const PciIdentity& identity)
    : m_config(identity), m_name(std::move(name)) {}

void PciDevice::config_read(uint32_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    config_read_locked(offset, data);
}

void PciDevice::config_write(uint32_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    config_write_locked(offset, data);
}

void PciDevice::bar_read(int bar, uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    bar_read_locked(bar, offset, data);
}

void PciDevice::bar_write(int bar, uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    bar_write_locked(bar, offset, data);
}

void PciDevice::config_read_locked(uint32_t offset, std::span<uint8_t> data) {
    m_config.read(offset, data);
}

void PciDevice::config_write_locked(uint32_t offset, std::span<const uint8_t> data) {
    m_config.write(offset, data);
    // The Interrupt Disable bit gates the pin.
    uint32_t cmd = reg(Reg::kCommand);
    if (offset <= cmd + 1 && offset + data.size() > cmd) update_intx_pin_locked();
}

std::vector<DecodedBar> PciDevice::decoded_bars() const {
    std::lock_guard lock(m_lock);
    std::vector<DecodedBar> bars;
    uint16_t command = m_config.command();
    for (int i = 0; i < kNumBars; ++i) {
        const BarInfo& info = m_config.bar_info(i);
        if (info.kind == BarKind::kNone) continue;
        DecodedBar bar;
        bar.index = i;
        bar.kind = info.kind;
        bar.base = m_config.bar_address(i);
        bar.size = info.size;
        bool decode = info.kind == BarKind::kIo ? (command & kCommandIoSpace) != 0
                                                : (command & kCommandMemorySpace) != 0;
        // Address 0 means "not assigned"; a range that wraps (a sizing pattern left in place)
        // or leaves the 16-bit port space cannot be decoded.
        uint64_t limit = info.kind == BarKind::kIo ? uint64_t{0x10000} : ~uint64_t{0};
        bool fits = bar.base != 0 && bar.base <= limit - bar.size;
        bar.enabled = decode && fits;
        bars.push_back(bar);
    }
    return bars;
}

void PciDevice::assign_bar(int bar, uint64_t address) {
    std::lock_guard lock(m_lock);
    m_config.set_bar_address(bar, address);
}

void PciDevice::enable_decode() {
    std::lock_guard lock(m_lock);
    uint16_t command = m_config.command();
    for (int i = 0; i < kNumBars; ++i) {
        BarKind kind = m_config.bar_info(i).kind;
        if (kind == BarKind::kIo) command |= kCommandIoSpace;
        if (kind == BarKind::kMemory32 || kind == BarKind::kMemory64) command |= kCommandMemorySpace;
    }
    m_config.set_u16(reg(Reg::kCommand), command);
}

void PciDevice::set_interrupt_line(uint8_t irq) {
    std::lock_guard lock(m_lock);
    m_config.set_u8(reg(Reg::kInterruptLine), irq);
}

void PciDevice::attach_intx(std::unique_ptr<IrqLine> line) {
    std::lock_guard lock(m_lock);
    m_intx = std::move(line);
    m_intx_asserted = false;
    update_intx_pin_locked();
}

uint8_t PciDevice::interrupt_pin() const {
    std::lock_guard lock(m_lock);
    return m_config.u8(reg(Reg::kInterruptPin));
}

void PciDevice::set_intx_locked(bool requested) {
    if (requested == m_intx_requested) return;
    m_intx_requested = requested;
    m_config.set_interrupt_status(requested);
    update_intx_pin_locked();
}

void PciDevice::update_intx_pin_locked() {
    bool assert_pin = m_intx_requested && (m_config.command() & kCommandInterruptDisable) == 0;
    if (assert_pin == m_intx_asserted) return;
    m_intx_asserted = assert_pin;
    if (m_intx) m_intx->set_level(assert_pin);
}

nlohmann::json PciDevice::save_pci_state_locked() const {
    return nlohmann::json{
        {"version", 1},
        {"config", bytes_to_hex(m_config.bytes())},
        {"intx", m_intx_requested},
    };
}

Result<PciDevice::PciState> PciDevice::parse_pci_state(const nlohmann::json& state, const std::string& what) {
    StateFields fields(state, what + " pci", 1);
    PciState out;
    out.config = fields.bytes("config", kExtConfigSpaceSize);
    out.intx = fields.boolean("intx");
    VIREO_TRY(fields.status());
    return out;
}

void PciDevice::apply_pci_state_locked(const PciState& state) {
    m_config.restore_bytes(state.config);
    m_intx_requested = state.intx;
    // Drive the pin from a known level so the line ends where the restored state says.
    m_intx_asserted = false;
    if (m_intx) m_intx->set_level(false);
    update_intx_pin_locked();
}

}  // namespace vireo::devices::pci
