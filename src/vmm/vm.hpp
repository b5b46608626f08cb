// Vm: one virtual machine assembled from its config — KVM VM with in-kernel irqchip and PIT,
// guest RAM, the port I/O and MMIO buses with the platform devices, ACPI tables, the loaded
// kernel and one VcpuRunner per vCPU. Later devices (virtio-PCI) register on its buses and use
// its interrupt routing; the control API pauses it and saves its state through it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arch/x86/kernel_loader.hpp"
#include "base/result.hpp"
#include "devices/bus.hpp"
#include "devices/legacy/clock.hpp"
#include "kvm/kvm.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/exit_handler.hpp"
#include "vmm/guest_ram.hpp"
#include "vmm/io_eventfd.hpp"
#include "vmm/kvm_irq.hpp"
#include "vmm/vcpu_runner.hpp"
#include "vmm/vcpu_state.hpp"
#include "vmm/vm_config.hpp"

namespace vireo::devices {
class StatefulDevice;
class Serial16550;
class CmosRtc;
class I8042;
class AcpiPm;
class ResetControl;
}  // namespace vireo::devices

namespace vireo::vmm {

class Console;
class BootTimer;
class CountingDevice;
class PciDevices;

// Why a VM stopped running.
enum class StopReason {
    kNone,
    kPowerOff,  // ACPI S5 or a KVM shutdown event
    kReset,     // i8042 reset pulse, 0xCF9, triple fault, KVM reset event
    kFatal,     // emulation failure, internal error, host error
    kQuit,      // the user asked (Ctrl-A x, API power-off)
    kSignal,    // SIGTERM/SIGINT/SIGHUP
};
const char* to_string(StopReason reason);

struct VmStop {
    StopReason reason = StopReason::kNone;
    std::string message;
    int signal = 0;  // kSignal
};

// A device's I/O counters for vm.counters: requests are the guest's accesses to it (port or
// MMIO), bytes what those accesses moved (for the UART: characters sent and received), errors
// the guest mistakes it counted.
struct DeviceStats {
    std::string name;
    uint64_t bytes = 0;
    uint64_t requests = 0;
    uint64_t errors = 0;
};

// The states the control API reports.
enum class VmState { kCreated, kRunning, kPaused, kShuttingDown, kStopped };
const char* to_string(VmState state);

class Vm {
  public:
    struct Environment {
        const kvm::System& kvm;
        EventLoop& loop;
        Console& console;
        // Runs on the loop thread, once, when the VM first asks to stop.
        std::function<void(const VmStop&)> on_stop;
        // CPUID KVM supports (KVM_GET_SUPPORTED_CPUID), read once per process.
        const std::vector<kvm_cpuid_entry2>& supported_cpuid;
    };

    static Result<std::unique_ptr<Vm>> create(const VmConfig& config, const Environment& env);
    // A VM to restore a snapshot into: `ram` already holds the guest's memory, so no kernel is
    // loaded and no table written. load_state() then sets the saved KVM and vCPU state.
    static Result<std::unique_ptr<Vm>> create_restored(const VmConfig& config, const Environment& env,
                                                       GuestRam ram);
    ~Vm();
    Vm(const Vm&) = delete;
    Vm& operator=(const Vm&) = delete;

    // Starts the vCPU threads and lets them run (the boot vCPU enters the kernel; the others
    // wait for INIT/SIPI from it).
    Status start();
    // Pauses every vCPU at a clean point / lets them run again.
    Status pause();
    Status resume();
    // Asks the VM to stop (any thread); the first reason wins.
    void request_stop(VmStop stop);
    // Stops and joins the vCPU threads. Idempotent.
    void shutdown();

    VmState state() const;
    VmStop stop_state() const;
    const VmConfig& config() const { return m_config; }
    const arch::x86::BootEntry& boot_entry() const { return m_boot; }

    // What devices and later subsystems build on.
    kvm::Vm& kvm_vm() { return *m_kvm; }
    const GuestMemory& memory() const { return m_ram.memory(); }
    GuestRam& ram() { return m_ram; }
    devices::Bus& pio_bus() { return m_pio; }
    devices::Bus& mmio_bus() { return m_mmio; }
    EventLoop& loop() { return m_env.loop; }
    IrqRouting& irq_routing() { return *m_routing; }
    devices::MsiSink& msi_sink() { return *m_msi; }
    // The ISA/INTx line for a GSI (one shared object per GSI).
    std::shared_ptr<devices::IrqLine> irq_line(uint32_t gsi);
    // A guest write KVM signals through an eventfd, handled on the I/O thread (loop thread only).
    Result<std::unique_ptr<IoEventFd>> add_ioeventfd(const IoEventFd::Spec& spec,
                                                     std::function<void()> on_signal);
    // An MSI delivered through its own GSI route and irqfd.
    Result<std::unique_ptr<MsiIrqfd>> add_msi_irqfd(uint64_t address, uint32_t data);
    std::vector<VcpuRunner*> vcpus();
    const UnclaimedAccessLog& unclaimed_pio() const { return m_unclaimed_pio; }
    const UnclaimedAccessLog& unclaimed_mmio() const { return m_unclaimed_mmio; }
    const BootTimer& boot_timer() const { return *m_boot_timer; }
    // The PCI bus and its virtio devices (counters, snapshot drain/save/restore).
    PciDevices& pci() { return *m_pci; }

    // The platform devices (the desktop feeds the i8042, the API presses the power button and
    // reads counters, snapshots save every StatefulDevice).
    devices::Serial16550& serial() { return *m_serial; }
    devices::CmosRtc& rtc() { return *m_rtc; }
    devices::I8042& i8042() { return *m_i8042; }
    devices::AcpiPm& acpi_pm() { return *m_pm; }
    // ACPI power button: a guest that handles it shuts down cleanly. False if it will not see it.
    bool press_power_button();
    // Every device with guest-visible state, by a stable name ("serial", "rtc", "i8042", "acpi-pm").
    std::vector<std::pair<std::string, devices::StatefulDevice*>> stateful_devices();

    // State capture for snapshots (the VM must be paused).
    Result<std::vector<VcpuSnapshot>> save_vcpu_states();
    Result<VmKvmSnapshot> save_kvm_state() const;
    // Into a VM from create_restored(), before start(): the in-kernel devices first, then each
    // vCPU.
    Status load_state(const std::vector<VcpuSnapshot>& vcpus, const VmKvmSnapshot& kvm);
    std::vector<DeviceStats> device_stats() const;

  private:
    Vm(const VmConfig& config, const Environment& env, GuestRam ram);
    Status build_kvm();
    Status build_devices();
    Status load_kernel(uint64_t rsdp);
    // `boot`: set up the boot vCPU for the loaded kernel; false for a restore, whose state
    // comes from the snapshot.
    Status build_vcpus(bool boot);
    // Registers a device on a bus behind a CountingDevice, for device_stats().
    Status insert_counted(devices::Bus& bus, const std::string& name,
                          std::shared_ptr<devices::BusDevice> device, uint64_t base, uint64_t length);

    VmConfig m_config;
    Environment m_env;
    std::unique_ptr<kvm::Vm> m_kvm;
    GuestRam m_ram;
    devices::Bus m_pio{"port"};
    devices::Bus m_mmio{"MMIO"};
    UnclaimedAccessLog m_unclaimed_pio{"port"};
    UnclaimedAccessLog m_unclaimed_mmio{"MMIO"};
    std::unique_ptr<IrqRouting> m_routing;
    std::unique_ptr<KvmMsiSink> m_msi;
    std::mutex m_irq_lock;
    std::map<uint32_t, std::shared_ptr<KvmIrqLine>> m_irq_lines;
    devices::SystemClock m_clock;
    int64_t m_start_ns = 0;

    std::shared_ptr<devices::Serial16550> m_serial;
    std::shared_ptr<devices::CmosRtc> m_rtc;
    std::shared_ptr<devices::I8042> m_i8042;
    std::shared_ptr<devices::AcpiPm> m_pm;
    std::shared_ptr<devices::ResetControl> m_reset;
    std::shared_ptr<BootTimer> m_boot_timer;
    std::unique_ptr<PciDevices> m_pci;  // after the buses, KVM and RAM: destroyed before them
    std::unique_ptr<EventLoop::Timer> m_rtc_timer;
    std::unique_ptr<EventLoop::Timer> m_pm_timer;

    arch::x86::BootEntry m_boot;
    std::vector<std::unique_ptr<VcpuRunner>> m_vcpus;
    std::map<std::string, std::shared_ptr<CountingDevice>> m_counted;

    mutable std::mutex m_state_lock;
    VmState m_state = VmState::kCreated;
    VmStop m_stop;
};

}  // namespace vireo::vmm
