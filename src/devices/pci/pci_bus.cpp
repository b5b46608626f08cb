// PCI bus 0: configuration dispatch, BAR assignment and BAR mapping.
#include "devices/pci/pci_bus.hpp"

#include <algorithm>
#include <cstring>

#include "base/log.hpp"
#include "devices/pci/host_bridge.hpp"

namespace vireo::devices::pci {

namespace {

// One BAR on the MMIO or port I/O bus: forwards accesses to the function with the BAR index.
class BarRegion final : public BusDevice {
  public:
    BarRegion(std::shared_ptr<PciDevice> device, int bar) : m_device(std::move(device)), m_bar(bar) {}
    void read(uint64_t offset, std::span<uint8_t> data) override { m_device->bar_read(m_bar, offset, data); }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        m_device->bar_write(m_bar, offset, data);
    }

  private:
    std::shared_ptr<PciDevice> m_device;
    int m_bar;
};

}  // namespace

PciBus::PciBus(Bus& mmio, Bus& pio, PciBusConfig config, std::array<std::shared_ptr<IrqLine>, 4> intx_lines)
    : m_mmio(mmio), m_pio(pio), m_config(config), m_next_mmio(config.mmio_base), m_next_io(config.io_base) {
    for (size_t i = 0; i < 4; ++i) {
        if (intx_lines[i]) m_intx[i] = SharedIrqLine::create(std::move(intx_lines[i]));
    }
    m_slots[0].device = std::make_shared<PciHostBridge>();
}

PciBus::~PciBus() {
    // Leave the buses without ranges that point at functions of a bus that is gone.
    for (auto& slot : m_slots) {
        for (auto& m : slot.mappings) {
            if (m.mapped) bus_for(m.bar.kind).remove(m.bar.base);
        }
    }
}

uint8_t PciBus::intx_irq(uint8_t slot, uint8_t pin) const {
    // pin: 1 = INTA .. 4 = INTD, as in the Interrupt Pin register.
    return m_config.intx_irqs[(slot + (pin - 1u)) % 4];
}

Result<uint64_t> PciBus::allocate(bool io, uint64_t size) {
    uint64_t& next = io ? m_next_io : m_next_mmio;
    uint64_t base = io ? m_config.io_base : m_config.mmio_base;
    uint64_t end = base + (io ? m_config.io_size : m_config.mmio_size);
    uint64_t at = (next + size - 1) & ~(size - 1);
    if (at < next || at > end || size > end - at) {
        return make_error("pci: no room for a {} BAR of 0x{:x} bytes in the window 0x{:x}-0x{:x}",
                          io ? "I/O" : "memory", size, base, end - 1);
    }
    next = at + size;
    return at;
}

Result<uint8_t> PciBus::add_device(std::shared_ptr<PciDevice> device, std::optional<uint8_t> slot) {
    std::lock_guard lock(m_lock);
    uint8_t s = 0;
    if (slot) {
        if (*slot == 0 || *slot >= kMaxSlots)
            return make_error("pci: slot {} is not usable (1..{})", *slot, kMaxSlots - 1);
        if (m_slots[*slot].device) return make_error("pci: slot {} is taken", *slot);
        s = *slot;
    } else {
        for (s = 1; s < kMaxSlots && m_slots[s].device; ++s) {
        }
        if (s == kMaxSlots) return make_error("pci: all {} slots of bus 0 are taken", kMaxSlots - 1);
    }

    // Largest BARs first keeps natural alignment from wasting the window.
    auto bars = device->decoded_bars();
    std::sort(bars.begin(), bars.end(),
              [](const DecodedBar& a, const DecodedBar& b) { return a.size > b.size; });
    for (const auto& bar : bars) {
        VIREO_ASSIGN_OR_RETURN(uint64_t at, allocate(bar.kind == BarKind::kIo, bar.size));
        device->assign_bar(bar.index, at);
    }
    device->enable_decode();
    uint8_t pin = device->interrupt_pin();
    if (pin >= 1 && pin <= 4) {
        uint8_t irq = intx_irq(s, pin);
        device->set_interrupt_line(irq);
        auto& line = m_intx[(s + (pin - 1u)) % 4];
        if (line) device->attach_intx(line->connect());
    }
    m_slots[s].device = std::move(device);
    update_mappings_locked(m_slots[s]);
    return s;
}

void PciBus::add_listener(std::shared_ptr<PciBarListener> listener) {
    std::lock_guard lock(m_lock);
    m_listeners.push_back(std::move(listener));
}

std::shared_ptr<PciDevice> PciBus::device(uint8_t slot) const {
    std::lock_guard lock(m_lock);
    return slot < kMaxSlots ? m_slots[slot].device : nullptr;
}

std::optional<uint64_t> PciBus::bar_address(uint8_t slot, int bar) const {
    std::lock_guard lock(m_lock);
    if (slot >= kMaxSlots) return std::nullopt;
    for (const auto& m : m_slots[slot].mappings) {
        if (m.bar.index == bar && m.mapped) return m.bar.base;
    }
    return std::nullopt;
}

uint64_t PciBus::guest_errors() const {
    std::lock_guard lock(m_lock);
    return m_guest_errors;
}

void PciBus::config_read(uint8_t bus, uint8_t slot, uint8_t function, uint32_t offset,
                         std::span<uint8_t> data) {
    std::shared_ptr<PciDevice> device;
    {
        std::lock_guard lock(m_lock);
        if (bus == 0 && function == 0 && slot < kMaxSlots) device = m_slots[slot].device;
    }
    if (!device) {
        std::memset(data.data(), 0xFF, data.size());
        return;
    }
    device->config_read(offset, data);
}

void PciBus::config_write(uint8_t bus, uint8_t slot, uint8_t function, uint32_t offset,
                          std::span<const uint8_t> data) {
    // Held across the write and the remap so two vCPUs moving BARs at once cannot interleave
    // their bus updates.
    std::lock_guard lock(m_lock);
    if (bus != 0 || function != 0 || slot >= kMaxSlots || !m_slots[slot].device) return;
    Slot& s = m_slots[slot];
    s.device->config_write(offset, data);
    // Only the command register and the BARs change what is mapped.
    uint32_t end = offset + static_cast<uint32_t>(data.size());
    bool touches_command = offset < reg(Reg::kCommand) + 2u && end > reg(Reg::kCommand);
    bool touches_bars = offset < reg(Reg::kBar0) + 4u * kNumBars && end > reg(Reg::kBar0);
    if (touches_command || touches_bars) update_mappings_locked(s);
}

void PciBus::refresh_mappings() {
    std::lock_guard lock(m_lock);
    for (auto& slot : m_slots) {
        if (slot.device) update_mappings_locked(slot);
    }
}

void PciBus::update_mappings_locked(Slot& slot) {
    auto bars = slot.device->decoded_bars();
    if (slot.mappings.size() != bars.size()) {
        slot.mappings.clear();
        for (const auto& b : bars)
            slot.mappings.push_back(Mapping{b, false});
    }
    for (size_t i = 0; i < bars.size(); ++i) {
        Mapping& m = slot.mappings[i];
        const DecodedBar& now = bars[i];
        bool want = now.enabled;
        if (m.mapped && want && m.bar.base == now.base) continue;
        if (!m.mapped && !want) {
            m.bar = now;
            continue;
        }
        if (m.mapped) {
            bus_for(m.bar.kind).remove(m.bar.base);
            m.mapped = false;
            for (auto& l : m_listeners)
                l->bar_unmapped(*slot.device, m.bar);
        }
        m.bar = now;
        if (!want) continue;
        auto region = std::make_shared<BarRegion>(slot.device, now.index);
        if (auto s = bus_for(now.kind).insert(region, now.base, now.size); !s.ok()) {
            // The guest placed the BAR over something else: it stays unmapped, as a real
            // bridge would leave a conflicting decode undefined. Logged once per bus.
            if (m_guest_errors++ == 0)
                log::get("pci").warn("{} BAR{}: {}", slot.device->name(), now.index, s.error().message());
            continue;
        }
        m.mapped = true;
        for (auto& l : m_listeners)
            l->bar_mapped(*slot.device, m.bar);
    }
}

}  // namespace vireo::devices::pci
