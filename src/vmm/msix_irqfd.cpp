// MSI-X vectors through KVM irqfds and MSI routes.
#include "vmm/msix_irqfd.hpp"

#include "base/log.hpp"

namespace vireo::vmm {

IrqfdMsixVectors::IrqfdMsixVectors(kvm::Vm& vm, IrqRouting& routing, devices::MsiSink& fallback,
                                   uint16_t vectors)
    : m_vm(vm), m_routing(routing), m_fallback(fallback), m_vectors(vectors) {}

IrqfdMsixVectors::~IrqfdMsixVectors() = default;

void IrqfdMsixVectors::deliver(uint16_t vector, uint64_t address, uint32_t data) {
    std::lock_guard lock(m_lock);
    if (vector >= m_vectors.size()) return;
    Vector& v = m_vectors[vector];
    if (!v.failed) {
        if (!v.irqfd) {
            auto irqfd = MsiIrqfd::create(m_vm, m_routing, address, data);
            if (irqfd.ok()) {
                v.irqfd = std::move(*irqfd);
                v.address = address;
                v.data = data;
            } else {
                log::get("vmm").warn("MSI-X: no irqfd route ({}); using KVM_SIGNAL_MSI",
                                     irqfd.error().message());
                v.failed = true;
            }
        } else if (v.address != address || v.data != data) {
            // The guest reprogrammed the entry (affinity change): the route follows. Rare, so
            // the cost of rewriting KVM's routing table does not matter.
            if (auto s = v.irqfd->update(address, data); s.ok()) {
                v.address = address;
                v.data = data;
            } else {
                log::get("vmm").warn("MSI-X: route update failed ({}); using KVM_SIGNAL_MSI",
                                     s.error().message());
                v.irqfd.reset();
                v.failed = true;
            }
        }
    }
    if (v.irqfd) {
        v.irqfd->trigger();
        ++m_irqfd;
        return;
    }
    ++m_fallback_count;
    m_fallback.signal(address, data);
}

uint64_t IrqfdMsixVectors::irqfd_deliveries() const {
    std::lock_guard lock(m_lock);
    return m_irqfd;
}

uint64_t IrqfdMsixVectors::fallback_deliveries() const {
    std::lock_guard lock(m_lock);
    return m_fallback_count;
}

}  // namespace vireo::vmm
