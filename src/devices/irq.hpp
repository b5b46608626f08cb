// Interrupt interfaces devices raise interrupts through. The VMM implements them with KVM
// (KVM_IRQ_LINE / irqfd / KVM_SIGNAL_MSI); tests implement them with counters (tests/fakes/).
#pragma once

#include <cstdint>

namespace vireo::devices {

// A wire to the interrupt controller (ISA IRQ or PCI INTx).
class IrqLine {
  public:
    virtual ~IrqLine() = default;
    virtual void set_level(bool high) = 0;
    // An edge: raise and lower (for edge-triggered ISA interrupts).
    void pulse() {
        set_level(true);
        set_level(false);
    }
};

// A message-signalled interrupt (PCI MSI / MSI-X): write `data` to `address`.
class MsiSink {
  public:
    virtual ~MsiSink() = default;
    virtual void signal(uint64_t address, uint32_t data) = 0;
};

}  // namespace vireo::devices
