// MSI-X vectors through KVM irqfds and MSI routes.
#include "vmm/msix_irqfd.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.hpp"

namespace vireo::vmm {

IrqfdMsixVectors::IrqfdMsixVectors(kvm::Vm& vm, IrqRouting& routing, devices::MsiSink& fallback,
                                   uint16_t vectors)
    : m_vm(vm), m_routing(routing), m_fallback(fallback), m_vectors(vectors) {}

IrqfdMsixVectors::~IrqfdMsixVectors() {
    for (auto& v : m_vectors) {
        if (!v.bound) continue;
        (void)m_vm.irqfd_remove(v.fd.get(), v.gsi);
        (void)m_routing.remove_msi_route(v.gsi);
    }
}

bool IrqfdMsixVectors::bind(Vector& v, uint64_t address, uint32_t data) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return false;
    auto gsi = m_routing.add_msi_route(address, data);
    if (!gsi.ok()) {
        log::get("vmm").warn("MSI-X: no GSI route ({}); using KVM_SIGNAL_MSI", gsi.error().message());
        return false;
    }
    if (auto s = m_vm.irqfd(fd.get(), *gsi); !s.ok()) {
        log::get("vmm").warn("MSI-X: irqfd on GSI {} refused ({}); using KVM_SIGNAL_MSI", *gsi,
                             s.error().message());
        (void)m_routing.remove_msi_route(*gsi);
        return false;
    }
    v.fd = std::move(fd);
    v.gsi = *gsi;
    v.address = address;
    v.data = data;
    v.bound = true;
    return true;
}

void IrqfdMsixVectors::deliver(uint16_t vector, uint64_t address, uint32_t data) {
    std::lock_guard lock(m_lock);
    if (vector >= m_vectors.size()) return;
    Vector& v = m_vectors[vector];
    if (!v.failed) {
        if (!v.bound) {
            v.failed = !bind(v, address, data);
        } else if (v.address != address || v.data != data) {
            // The guest reprogrammed the entry (affinity change): the route follows. Rare, so
            // the cost of rewriting KVM's routing table does not matter.
            if (auto s = m_routing.update_msi_route(v.gsi, address, data); s.ok()) {
                v.address = address;
                v.data = data;
            } else {
                log::get("vmm").warn("MSI-X: route update failed ({}); using KVM_SIGNAL_MSI",
                                     s.error().message());
                (void)m_vm.irqfd_remove(v.fd.get(), v.gsi);
                (void)m_routing.remove_msi_route(v.gsi);
                v.bound = false;
                v.failed = true;
            }
        }
    }
    if (v.bound) {
        uint64_t one = 1;
        if (::write(v.fd.get(), &one, sizeof one) == sizeof one) {
            ++m_irqfd;
            return;
        }
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
