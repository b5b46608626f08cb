// PciDevice: one PCI function as the bus sees it: configuration space, BAR regions and INTx,
// guarded by one lock that the function's own logic (e.g. a virtio device) shares.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.hpp"
#include "devices/irq.hpp"
#include "devices/pci/config_space.hpp"

namespace vireo::devices::pci {

// A BAR as the function decodes it at the moment.
struct DecodedBar {
    int index = 0;
    BarKind kind = BarKind::kNone;
    uint64_t base = 0;
    uint64_t size = 0;
    bool enabled = false;  // decode on (command register) and a usable address programmed
};

class PciDevice {
  public:
    PciDevice(std::string name, const PciIdentity& identity);
    virtual ~PciDevice() = default;
    PciDevice(const PciDevice&) = delete;
    PciDevice& operator=(const PciDevice&) = delete;

    const std::string& name() const { return m_name; }

    // Guest accesses, from any vCPU thread. Offsets are inside the 4 KiB configuration space
    // or inside the BAR; sizes 1, 2, 4 or 8.
    void config_read(uint32_t offset, std::span<uint8_t> data);
    void config_write(uint32_t offset, std::span<const uint8_t> data);
    void bar_read(int bar, uint64_t offset, std::span<uint8_t> data);
    void bar_write(int bar, uint64_t offset, std::span<const uint8_t> data);

    // Every BAR the function defines, with its current address and whether it decodes.
    std::vector<DecodedBar> decoded_bars() const;

    // Set up by the VMM before the guest runs (there is no firmware to do it).
    void assign_bar(int bar, uint64_t address);
    void enable_decode();
    void set_interrupt_line(uint8_t irq);
    void attach_intx(std::unique_ptr<IrqLine> line);
    uint8_t interrupt_pin() const;

    // The function's PCI state in a snapshot: configuration space bytes and the INTx request
    // (the BAR layout and write masks come from the device's code, not from the snapshot).
    struct PciState {
        std::vector<uint8_t> config;
        bool intx = false;
    };
    static Result<PciState> parse_pci_state(const nlohmann::json& state, const std::string& what);

  protected:
    // Called with m_lock held.
    virtual void config_read_locked(uint32_t offset, std::span<uint8_t> data);
    virtual void config_write_locked(uint32_t offset, std::span<const uint8_t> data);
    virtual void bar_read_locked(int bar, uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void bar_write_locked(int bar, uint64_t offset, std::span<const uint8_t> data) = 0;

    // The function's INTx request. The pin is asserted while requested and the command
    // register's Interrupt Disable bit is clear; the status register's Interrupt Status bit
    // follows the request either way (PCI 3.0 §6.2.2, §6.2.3).
    void set_intx_locked(bool requested);
    bool intx_requested_locked() const { return m_intx_requested; }

    nlohmann::json save_pci_state_locked() const;
    // Applies parsed state; the caller re-maps BARs afterwards (PciBus::refresh_mappings).
    void apply_pci_state_locked(const PciState& state);

    mutable std::mutex m_lock;
    PciConfigSpace m_config;

  private:
    void update_intx_pin_locked();

    std::string m_name;
    std::unique_ptr<IrqLine> m_intx;
    bool m_intx_requested = false;
    bool m_intx_asserted = false;
};

}  // namespace vireo::devices::pci
