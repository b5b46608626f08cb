// KVM interrupt lines, MSI and GSI routing.
#include "vmm/kvm_irq.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "base/log.hpp"

namespace vireo::vmm {

void KvmIrqLine::set_level(bool high) {
    std::lock_guard lock(m_lock);
    int level = high ? 1 : 0;
    if (level == m_level) return;
    if (auto s = m_vm.irq_line(m_gsi, high); !s.ok()) {
        if (m_errors++ == 0) log::get("vmm").error("IRQ {}: {}", m_gsi, s.error().message());
        return;
    }
    m_level = level;
}

Result<std::unique_ptr<IrqfdLine>> IrqfdLine::create(kvm::Vm& vm, uint32_t gsi) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return os_error("irqfd: eventfd");
    VIREO_TRY(vm.irqfd(fd.get(), gsi));
    return std::unique_ptr<IrqfdLine>(new IrqfdLine(vm, std::move(fd), gsi));
}

IrqfdLine::~IrqfdLine() {
    (void)m_vm.irqfd_remove(m_fd.get(), m_gsi);
}

void IrqfdLine::set_level(bool high) {
    if (!high) return;  // an edge: only the rising side means anything
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_fd.get(), &one, sizeof one);
}

void KvmMsiSink::signal(uint64_t address, uint32_t data) {
    if (auto s = m_vm.signal_msi(address, data); !s.ok()) {
        if (m_errors++ == 0)
            log::get("vmm").error("MSI 0x{:x}/0x{:x}: {}", address, data, s.error().message());
    }
}

Result<std::unique_ptr<MsiIrqfd>> MsiIrqfd::create(kvm::Vm& vm, IrqRouting& routing, uint64_t address,
                                                   uint32_t data) {
    UniqueFd fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!fd) return os_error("MSI irqfd: eventfd");
    VIREO_ASSIGN_OR_RETURN(uint32_t gsi, routing.add_msi_route(address, data));
    if (auto s = vm.irqfd(fd.get(), gsi); !s.ok()) {
        (void)routing.remove_msi_route(gsi);
        return std::move(s).error();
    }
    return std::unique_ptr<MsiIrqfd>(new MsiIrqfd(vm, routing, std::move(fd), gsi));
}

MsiIrqfd::~MsiIrqfd() {
    (void)m_vm.irqfd_remove(m_fd.get(), m_gsi);
    (void)m_routing.remove_msi_route(m_gsi);
}

void MsiIrqfd::trigger() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(m_fd.get(), &one, sizeof one);
}

Status MsiIrqfd::update(uint64_t address, uint32_t data) {
    return m_routing.update_msi_route(m_gsi, address, data);
}

std::vector<kvm_irq_routing_entry> IrqRouting::table_locked() const {
    std::vector<kvm_irq_routing_entry> entries;
    auto irqchip = [&](uint32_t gsi, uint32_t chip, uint32_t pin) {
        kvm_irq_routing_entry e{};
        e.gsi = gsi;
        e.type = KVM_IRQ_ROUTING_IRQCHIP;
        e.u.irqchip.irqchip = chip;
        e.u.irqchip.pin = pin;
        entries.push_back(e);
    };
    // KVM's defaults (arch/x86/kvm/irq_comm.c default_routing): ISA IRQs to the IOAPIC pin of
    // the same number and to the master or slave PIC.
    for (uint32_t gsi = 0; gsi < 16; ++gsi) {
        irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi);
        irqchip(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
    }
    for (uint32_t gsi = 16; gsi < kIoapicPins; ++gsi)
        irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi);
    for (const auto& [gsi, msi] : m_msi) {
        kvm_irq_routing_entry e{};
        e.gsi = gsi;
        e.type = KVM_IRQ_ROUTING_MSI;
        e.u.msi.address_lo = static_cast<uint32_t>(msi.first);
        e.u.msi.address_hi = static_cast<uint32_t>(msi.first >> 32);
        e.u.msi.data = msi.second;
        entries.push_back(e);
    }
    return entries;
}

std::vector<kvm_irq_routing_entry> IrqRouting::table() const {
    std::lock_guard lock(m_lock);
    return table_locked();
}

Status IrqRouting::commit_locked() {
    return m_vm.set_gsi_routing(table_locked());
}

Result<uint32_t> IrqRouting::add_msi_route(uint64_t address, uint32_t data) {
    std::lock_guard lock(m_lock);
    uint32_t gsi = kFirstMsiGsi;
    while (m_msi.contains(gsi))
        ++gsi;
    m_msi[gsi] = {address, data};
    if (auto s = commit_locked(); !s.ok()) {
        m_msi.erase(gsi);
        return std::move(s).error();
    }
    return gsi;
}

Status IrqRouting::update_msi_route(uint32_t gsi, uint64_t address, uint32_t data) {
    std::lock_guard lock(m_lock);
    auto it = m_msi.find(gsi);
    if (it == m_msi.end()) return make_error("IRQ routing: GSI {} is not an MSI route", gsi);
    auto old = it->second;
    it->second = {address, data};
    if (auto s = commit_locked(); !s.ok()) {
        it->second = old;
        return s;
    }
    return {};
}

Status IrqRouting::remove_msi_route(uint32_t gsi) {
    std::lock_guard lock(m_lock);
    if (m_msi.erase(gsi) == 0) return make_error("IRQ routing: GSI {} is not an MSI route", gsi);
    return commit_locked();
}

}  // namespace vireo::vmm
