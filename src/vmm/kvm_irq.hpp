// KVM implementations of the device interrupt interfaces: an ISA/INTx line driven with
// KVM_IRQ_LINE (the in-kernel PIC and IOAPIC see its level), an edge line through an irqfd,
// and MSI delivery with KVM_SIGNAL_MSI; plus the GSI routing table that MSI irqfds need.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "devices/irq.hpp"
#include "kvm/kvm.hpp"

namespace vireo::vmm {

// A level on GSI `gsi` (ISA IRQs 0-15 reach both PICs and the IOAPIC; 16-23 the IOAPIC).
// Repeated levels are not passed on, so devices may call set_level() freely.
class KvmIrqLine final : public devices::IrqLine {
  public:
    KvmIrqLine(kvm::Vm& vm, uint32_t gsi) : m_vm(vm), m_gsi(gsi) {}
    void set_level(bool high) override;
    uint32_t gsi() const { return m_gsi; }
    uint64_t errors() const { return m_errors; }

  private:
    kvm::Vm& m_vm;
    const uint32_t m_gsi;
    std::mutex m_lock;  // keeps the KVM level in the order devices set it
    int m_level = -1;   // unknown at first
    std::atomic<uint64_t> m_errors{0};
};

// An edge-triggered line through an irqfd: set_level(true) signals the eventfd; KVM injects
// without a trip through this process's KVM ioctl path (usable from any thread, cheap).
class IrqfdLine final : public devices::IrqLine {
  public:
    static Result<std::unique_ptr<IrqfdLine>> create(kvm::Vm& vm, uint32_t gsi);
    ~IrqfdLine() override;
    void set_level(bool high) override;
    int eventfd() const { return m_fd.get(); }

  private:
    IrqfdLine(kvm::Vm& vm, UniqueFd fd, uint32_t gsi) : m_vm(vm), m_fd(std::move(fd)), m_gsi(gsi) {}
    kvm::Vm& m_vm;
    UniqueFd m_fd;
    uint32_t m_gsi;
};

// MSI delivery with KVM_SIGNAL_MSI (simple and always right; irqfd routes are faster for
// devices that fire often).
class KvmMsiSink final : public devices::MsiSink {
  public:
    explicit KvmMsiSink(kvm::Vm& vm) : m_vm(vm) {}
    void signal(uint64_t address, uint32_t data) override;
    uint64_t errors() const { return m_errors; }

  private:
    kvm::Vm& m_vm;
    std::atomic<uint64_t> m_errors{0};
};

class IrqRouting;

// One MSI (PCI MSI/MSI-X vector) delivered through an irqfd bound to its own GSI route: a
// device thread signals it with a write to an eventfd, KVM injects the message. The address and
// data follow the guest's reprogramming through update().
class MsiIrqfd {
  public:
    static Result<std::unique_ptr<MsiIrqfd>> create(kvm::Vm& vm, IrqRouting& routing, uint64_t address,
                                                    uint32_t data);
    ~MsiIrqfd();
    MsiIrqfd(const MsiIrqfd&) = delete;
    MsiIrqfd& operator=(const MsiIrqfd&) = delete;

    // Raises the interrupt (any thread).
    void trigger();
    Status update(uint64_t address, uint32_t data);
    uint32_t gsi() const { return m_gsi; }
    int eventfd() const { return m_fd.get(); }

  private:
    MsiIrqfd(kvm::Vm& vm, IrqRouting& routing, UniqueFd fd, uint32_t gsi)
        : m_vm(vm), m_routing(routing), m_fd(std::move(fd)), m_gsi(gsi) {}
    kvm::Vm& m_vm;
    IrqRouting& m_routing;
    UniqueFd m_fd;
    uint32_t m_gsi;
};

// The VM's GSI routing table. KVM_SET_GSI_ROUTING replaces the whole table, so this keeps the
// default irqchip routes (GSI 0-15 to the PICs and IOAPIC, 16-23 to the IOAPIC) and adds MSI
// routes from GSI 24 up, which virtio devices bind irqfds to.
class IrqRouting {
  public:
    static constexpr uint32_t kIoapicPins = 24;
    static constexpr uint32_t kFirstMsiGsi = kIoapicPins;

    explicit IrqRouting(kvm::Vm& vm) : m_vm(vm) {}

    // Allocates a GSI routed to the MSI (address, data) and commits the table.
    Result<uint32_t> add_msi_route(uint64_t address, uint32_t data);
    Status update_msi_route(uint32_t gsi, uint64_t address, uint32_t data);
    Status remove_msi_route(uint32_t gsi);
    // The full table as KVM gets it (tests).
    std::vector<kvm_irq_routing_entry> table() const;

  private:
    Status commit_locked();
    std::vector<kvm_irq_routing_entry> table_locked() const;

    kvm::Vm& m_vm;
    mutable std::mutex m_lock;
    std::map<uint32_t, std::pair<uint64_t, uint32_t>> m_msi;  // gsi -> (address, data)
};

}  // namespace vireo::vmm
