// PciBus: PCI bus 0 of the single host bridge: functions by slot, configuration access by
// bus/device/function, BAR assignment by the VMM (there is no firmware) and BAR mapping onto
// the MMIO and port I/O buses, following the guest when it moves a BAR or toggles decode.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "arch/x86/layout.hpp"
#include "base/result.hpp"
#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/pci/pci_device.hpp"
#include "devices/pci/shared_irq_line.hpp"

namespace vireo::devices::pci {

// Told when a BAR appears on or leaves the address map (the guest reprogrammed it or toggled
// decode). The VMM moves the ioeventfds of virtio notify regions with it. Called from the
// thread that made the change (a vCPU), with the bus's configuration lock held: a listener must
// not access PCI configuration space.
class PciBarListener {
  public:
    virtual ~PciBarListener() = default;
    virtual void bar_mapped(PciDevice& device, const DecodedBar& bar) = 0;
    virtual void bar_unmapped(PciDevice& device, const DecodedBar& bar) = 0;
};

struct PciBusConfig {
    // Window for memory BARs (32- and 64-bit BARs are both placed here, below 4 GiB).
    uint64_t mmio_base = arch::x86::layout::kPciMmio32Start;
    uint64_t mmio_size = arch::x86::layout::kPciMmio32Size;
    // Window for I/O BARs: above the legacy ports, inside the host bridge's _CRS I/O range.
    uint64_t io_base = 0xC000;
    uint64_t io_size = 0x4000;
    // INTA..INTD of slot s pin p raise intx_irqs[(s + p) % 4]: the swizzle the DSDT's _PRT
    // declares (arch/x86/acpi pci_intx_irq()).
    std::array<uint8_t, 4> intx_irqs = {static_cast<uint8_t>(arch::x86::layout::kIrqPciIntx[0]),
                                        static_cast<uint8_t>(arch::x86::layout::kIrqPciIntx[1]),
                                        static_cast<uint8_t>(arch::x86::layout::kIrqPciIntx[2]),
                                        static_cast<uint8_t>(arch::x86::layout::kIrqPciIntx[3])};
};

class PciBus {
  public:
    static constexpr uint8_t kMaxSlots = 32;

    // `intx_lines[i]` is the interrupt line of intx_irqs[i] (null: INTx not wired, e.g. in
    // tests that only use MSI-X). The host bridge is placed at 00:00.0.
    PciBus(Bus& mmio, Bus& pio, PciBusConfig config = {},
           std::array<std::shared_ptr<IrqLine>, 4> intx_lines = {});
    ~PciBus();
    PciBus(const PciBus&) = delete;
    PciBus& operator=(const PciBus&) = delete;

    // Places `device` at `slot` (or the first free slot), assigns its BARs (naturally aligned,
    // inside the windows), enables decode, routes its INTx pin and maps the BARs.
    Result<uint8_t> add_device(std::shared_ptr<PciDevice> device, std::optional<uint8_t> slot = std::nullopt);
    void add_listener(std::shared_ptr<PciBarListener> listener);

    // Configuration access. Absent functions read all ones and ignore writes. Only bus 0
    // exists and every function is function 0 (single-function devices).
    void config_read(uint8_t bus, uint8_t slot, uint8_t function, uint32_t offset, std::span<uint8_t> data);
    void config_write(uint8_t bus, uint8_t slot, uint8_t function, uint32_t offset,
                      std::span<const uint8_t> data);

    std::shared_ptr<PciDevice> device(uint8_t slot) const;
    // Where BAR `bar` of the function in `slot` is mapped now.
    std::optional<uint64_t> bar_address(uint8_t slot, int bar) const;
    // Re-reads every function's BARs and command register and moves mappings to match (after
    // a snapshot restore rewrote configuration space).
    void refresh_mappings();
    uint8_t intx_irq(uint8_t slot, uint8_t pin) const;
    // BAR programmings the guest made that could not be mapped (overlaps).
    uint64_t guest_errors() const;

  private:
    struct Mapping {
        DecodedBar bar;
        bool mapped = false;
    };
    struct Slot {
        std::shared_ptr<PciDevice> device;
        std::vector<Mapping> mappings;
    };
    Result<uint64_t> allocate(bool io, uint64_t size);
    void update_mappings_locked(Slot& slot);
    Bus& bus_for(BarKind kind) { return kind == BarKind::kIo ? m_pio : m_mmio; }

    Bus& m_mmio;
    Bus& m_pio;
    PciBusConfig m_config;
    std::array<std::shared_ptr<SharedIrqLine>, 4> m_intx;
    mutable std::mutex m_lock;  // lock order: PciBus::m_lock, then a device's lock
    std::array<Slot, kMaxSlots> m_slots;
    std::vector<std::shared_ptr<PciBarListener>> m_listeners;
    uint64_t m_next_mmio;
    uint64_t m_next_io;
    uint64_t m_guest_errors = 0;
};

}  // namespace vireo::devices::pci
