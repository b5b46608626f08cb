// PciDevices: a VM's PCI bus and the virtio devices on it, wired to KVM and the I/O thread:
// configuration mechanism #1 and ECAM on the buses, INTx on the _PRT lines, MSI-X vectors
// through irqfds and GSI routes, queue notifications through ioeventfds (moved with the BAR
// when the guest reprograms it) serviced on the event loop, disk I/O on an io_uring IoContext
// whose completions the loop polls, tap fds and console input watched by the loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/guest_memory.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/pci/pci_bus.hpp"
#include "devices/snapshot.hpp"
#include "devices/virtio/pci_transport.hpp"
#include "disk/block_backend.hpp"
#include "disk/io_context.hpp"
#include "kvm/kvm.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/kvm_irq.hpp"
#include "vmm/msix_irqfd.hpp"
#include "vmm/vm_config.hpp"

namespace vireo::devices::virtio {
class VirtioConsole;
}

namespace vireo::vmm {

class PciDevices final : public devices::StatefulDevice {
  public:
    struct Environment {
        kvm::Vm& kvm;
        EventLoop& loop;
        devices::Bus& pio;
        devices::Bus& mmio;
        const GuestMemory& memory;
        IrqRouting& routing;
        devices::MsiSink& msi_fallback;  // KVM_SIGNAL_MSI, when an irqfd cannot be had
        std::function<std::shared_ptr<devices::IrqLine>(uint32_t gsi)> irq_line;
        std::shared_ptr<devices::BusDevice> reset_register;  // 0xCF9, inside the 0xCF8 dword
    };

    // Builds the host bridge and one virtio function per configured device (disks first, in
    // command-line order, then network cards, console, entropy). Errors name the device.
    static Result<std::unique_ptr<PciDevices>> create(const VmConfig& config, const Environment& env);
    // On the loop thread (it removes loop sources), after the vCPUs stopped.
    ~PciDevices() override;
    PciDevices(const PciDevices&) = delete;
    PciDevices& operator=(const PciDevices&) = delete;

    devices::pci::PciBus& bus() { return *m_bus; }
    size_t function_count() const { return m_functions.size(); }

    // Per-device counters for vm.counters: [{"name", "slot", "type", ...counters}]. Any thread.
    nlohmann::json counters() const;

    // ---- Snapshots (loop thread, vCPUs paused) ---------------------------------------------
    // Completes every request in flight (their used entries and interrupts go out), so the
    // queue state saved next is consistent. Fails after `timeout_ms`.
    Status drain(int timeout_ms = 30000);
    // Flushes every writable disk (a snapshot writes after this).
    Status flush_disks();
    // Paths of the attached disk images, in configuration order.
    std::vector<std::string> disk_paths() const;
    // Requests not yet completed, over all functions (0 after drain()).
    size_t in_flight() const;
    // StatefulDevice: every function's state, keyed by slot. Call drain() first: a request in
    // flight would be lost (it is reported as an error in the log).
    nlohmann::json save_state() const override;
    // Restores functions built from the same configuration; validates each function before
    // applying it, remaps BARs (ioeventfds follow) and kicks live queues.
    Status restore_state(const nlohmann::json& state) override;

  private:
    struct Function;
    class BarListener;
    explicit PciDevices(const Environment& env);
    Status add_function(std::unique_ptr<devices::virtio::VirtioDevice> device, std::string type,
                        std::shared_ptr<disk::BlockBackend> disk = nullptr);
    Status setup_console(const VirtioConsoleConfig& config, devices::virtio::VirtioConsole& console);
    void bar_moved(devices::pci::PciDevice& device, const devices::pci::DecodedBar& bar, bool mapped);
    void read_console_input();

    Environment m_env;
    // Declared first so it is destroyed last: it waits for kernel I/O into guest memory.
    std::unique_ptr<disk::IoContext> m_io;
    EventLoop::Token m_io_token = 0;
    std::unique_ptr<devices::pci::PciBus> m_bus;
    std::shared_ptr<BarListener> m_listener;
    std::vector<std::unique_ptr<Function>> m_functions;
    std::vector<EventLoop::Token> m_host_tokens;  // tap fds, console input

    // --console
    UniqueFd m_console_file;
    int m_console_out = -1;
    devices::virtio::VirtioConsole* m_console = nullptr;
    EventLoop::Token m_console_input_token = 0;
    bool m_console_input_paused = false;
    // Work posted to the loop checks this: a VM rebuilt on reboot reuses the loop.
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
};

}  // namespace vireo::vmm
