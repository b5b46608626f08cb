// IrqfdMsixVectors: a PCI function's MSI-X vectors delivered through KVM irqfds. Each vector gets
// a GSI with an MSI route and an eventfd bound to it the first time it fires; an interrupt is
// then one eventfd write from the I/O thread, injected by KVM without any ioctl on our side. The
// route follows the table entry when the guest reprograms it. If KVM refuses a route or an
// irqfd, the message goes out through KVM_SIGNAL_MSI instead.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include <memory>

#include "devices/irq.hpp"
#include "devices/pci/msix.hpp"
#include "kvm/kvm.hpp"
#include "vmm/kvm_irq.hpp"

namespace vireo::vmm {

class IrqfdMsixVectors final : public devices::pci::MsixVectorSink {
  public:
    IrqfdMsixVectors(kvm::Vm& vm, IrqRouting& routing, devices::MsiSink& fallback, uint16_t vectors);
    ~IrqfdMsixVectors() override;
    IrqfdMsixVectors(const IrqfdMsixVectors&) = delete;
    IrqfdMsixVectors& operator=(const IrqfdMsixVectors&) = delete;

    void deliver(uint16_t vector, uint64_t address, uint32_t data) override;

    uint64_t irqfd_deliveries() const;
    uint64_t fallback_deliveries() const;

  private:
    struct Vector {
        std::unique_ptr<MsiIrqfd> irqfd;  // route + irqfd, made when the vector first fires
        uint64_t address = 0;
        uint32_t data = 0;
        bool failed = false;  // KVM refused: use the fallback from now on
    };

    kvm::Vm& m_vm;
    IrqRouting& m_routing;
    devices::MsiSink& m_fallback;
    mutable std::mutex m_lock;
    std::vector<Vector> m_vectors;
    uint64_t m_irqfd = 0;
    uint64_t m_fallback_count = 0;
};

}  // namespace vireo::vmm
