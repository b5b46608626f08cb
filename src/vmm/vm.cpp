// VM assembly and lifecycle.
#include "vmm/vm.hpp"

#include <time.h>

#include "arch/x86/acpi/acpi_builder.hpp"
#include "arch/x86/boot_layout.hpp"
#include "arch/x86/cpuid.hpp"
#include "arch/x86/e820.hpp"
#include "arch/x86/layout.hpp"
#include "arch/x86/vcpu_setup.hpp"
#include "base/log.hpp"
#include "devices/legacy/acpi_pm.hpp"
#include "devices/legacy/cmos_rtc.hpp"
#include "devices/legacy/i8042.hpp"
#include "devices/legacy/reset_control.hpp"
#include "devices/legacy/serial_16550.hpp"
#include "vmm/boot_timer.hpp"
#include "vmm/console.hpp"
#include "vmm/control/counting_device.hpp"
#include "vmm/mapped_file.hpp"
#include "vmm/pci_devices.hpp"

namespace vireo::vmm {

namespace layout = arch::x86::layout;

namespace {

int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// The POST-code port 0x80 (and 0xED): Linux writes it as an I/O delay. Ignored, read as ones;
// a device of its own keeps those writes off the unclaimed-access path.
class IgnoredPort final : public devices::BusDevice {
  public:
    void read(uint64_t, std::span<uint8_t> data) override { std::fill(data.begin(), data.end(), 0xff); }
    void write(uint64_t, std::span<const uint8_t>) override {}
};

}  // namespace

const char* to_string(StopReason reason) {
    switch (reason) {
        case StopReason::kNone:
            return "none";
        case StopReason::kPowerOff:
            return "power-off";
        case StopReason::kReset:
            return "reset";
        case StopReason::kFatal:
            return "fatal error";
        case StopReason::kQuit:
            return "quit";
        case StopReason::kSignal:
            return "signal";
    }
    return "unknown";
}

const char* to_string(VmState state) {
    switch (state) {
        case VmState::kCreated:
            return "created";
        case VmState::kRunning:
            return "running";
        case VmState::kPaused:
            return "paused";
        case VmState::kShuttingDown:
            return "shutting-down";
        case VmState::kStopped:
            return "stopped";
    }
    return "unknown";
}

Vm::Vm(const VmConfig& config, const Environment& env, GuestRam ram)
    : m_config(config), m_env(env), m_ram(std::move(ram)) {}

Vm::~Vm() {
    shutdown();
}

Result<std::unique_ptr<Vm>> Vm::create(const VmConfig& config, const Environment& env) {
    VIREO_TRY(validate(config));
    int64_t start = monotonic_ns();
    VIREO_ASSIGN_OR_RETURN(
        GuestRam ram, GuestRam::create({.size = config.memory_mib << 20, .hugepages = config.hugepages}));
    std::unique_ptr<Vm> vm(new Vm(config, env, std::move(ram)));
    vm->m_start_ns = start;
    VIREO_TRY(vm->build_kvm());
    VIREO_TRY(vm->build_devices());
    VIREO_ASSIGN_OR_RETURN(arch::x86::acpi::AcpiTables tables,
                           arch::x86::acpi::write_acpi_tables(
                               vm->memory(), arch::x86::acpi::AcpiConfig{.cpu_count = config.cpus}));
    VIREO_TRY(vm->load_kernel(tables.rsdp_address));
    VIREO_TRY(vm->build_vcpus(true));
    log::get("vmm").debug("VM built in {} us", (monotonic_ns() - start) / 1000);
    return vm;
}

Result<std::unique_ptr<Vm>> Vm::create_restored(const VmConfig& config, const Environment& env,
                                                GuestRam ram) {
    VIREO_TRY(validate(config));
    if (ram.size() != config.memory_mib << 20)
        return make_error("restore: the memory file holds {} bytes, the VM has {} MiB", ram.size(),
                          config.memory_mib);
    int64_t start = monotonic_ns();
    std::unique_ptr<Vm> vm(new Vm(config, env, std::move(ram)));
    vm->m_start_ns = start;
    VIREO_TRY(vm->build_kvm());
    VIREO_TRY(vm->build_devices());
    VIREO_TRY(vm->build_vcpus(false));
    log::get("vmm").debug("VM for restore built in {} us", (monotonic_ns() - start) / 1000);
    return vm;
}

Status Vm::insert_counted(devices::Bus& bus, const std::string& name,
                          std::shared_ptr<devices::BusDevice> device, uint64_t base, uint64_t length) {
    auto counted = std::make_shared<CountingDevice>(std::move(device));
    VIREO_TRY(bus.insert(counted, base, length));
    m_counted[name] = std::move(counted);
    return {};
}

Status Vm::build_kvm() {
    VIREO_ASSIGN_OR_RETURN(m_kvm, m_env.kvm.create_vm());
    // Guest RAM first, as Firecracker does: each memory slot change waits for an SRCU grace
    // period on the VM, which costs next to nothing while nothing else has used that SRCU yet and
    // several milliseconds once the irqchip and PIT have registered their I/O devices
    // (bench/startup.sh).
    uint32_t slot = 0;
    for (const GuestRam::Slot& s : m_ram.slots()) {
        VIREO_TRY_CTX(m_kvm->set_user_memory_region(slot++, s.gpa, s.size, s.host), "guest RAM");
    }
    // Both live in the hole, in pages the e820 map reserves; KVM needs them on Intel (VMX real
    // mode emulation) and they must be set before the first vCPU exists.
    VIREO_TRY(m_kvm->set_identity_map_addr(layout::kKvmIdentityMapAddr));
    VIREO_TRY(m_kvm->set_tss_addr(layout::kKvmTssAddr));
    VIREO_TRY(m_kvm->create_irqchip());
    // The PIT's speaker port reads as a dummy (KVM_PIT_SPEAKER_DUMMY), as Linux probes it.
    VIREO_TRY(m_kvm->create_pit2(KVM_PIT_SPEAKER_DUMMY));
    // Missed PIT ticks stay reinjected (KVM's default, QEMU's lost_tick_policy=delay, what
    // Firecracker leaves) except where AMD's AVIC is on: KVM inhibits AVIC while the PIT
    // reinjects (APICV_INHIBIT_REASON_PIT_REINJ), and guests keep time with the TSC, kvmclock or
    // the LAPIC timer, not by counting PIT ticks, so there ticks are dropped (QEMU's
    // lost_tick_policy=discard) to keep interrupts posted. Leaving reinjection waits out two IRQ
    // SRCU grace periods back to back (milliseconds; tens of them on nested or emulated KVM):
    // paid here only where it buys AVIC. Elsewhere KVM pays it when it destroys the VM, which
    // vireo-vmm hands to a child process at exit (kvm/teardown.hpp), off the startup and exit
    // paths (bench/startup.sh).
    if (kvm::host_has_avic() && m_kvm->check_extension(KVM_CAP_REINJECT_CONTROL) > 0)
        VIREO_TRY(m_kvm->set_pit_reinject(false));
    // Emulation failures then carry the instruction bytes (Linux 5.15+); older hosts work without.
    if (m_kvm->check_extension(KVM_CAP_EXIT_ON_EMULATION_FAILURE) > 0)
        (void)m_kvm->enable_cap(KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1);
    m_routing = std::make_unique<IrqRouting>(*m_kvm);
    m_msi = std::make_unique<KvmMsiSink>(*m_kvm);
    return {};
}

std::shared_ptr<devices::IrqLine> Vm::irq_line(uint32_t gsi) {
    std::lock_guard lock(m_irq_lock);
    auto& line = m_irq_lines[gsi];
    if (!line) line = std::make_shared<KvmIrqLine>(*m_kvm, gsi);
    return line;
}

Result<std::unique_ptr<IoEventFd>> Vm::add_ioeventfd(const IoEventFd::Spec& spec,
                                                     std::function<void()> on_signal) {
    return IoEventFd::create(*m_kvm, m_env.loop, spec, std::move(on_signal));
}

Result<std::unique_ptr<MsiIrqfd>> Vm::add_msi_irqfd(uint64_t address, uint32_t data) {
    return MsiIrqfd::create(*m_kvm, *m_routing, address, data);
}

Status Vm::build_devices() {
    Console& console = m_env.console;
    m_serial = std::make_shared<devices::Serial16550>(
        irq_line(layout::kIrqCom1),
        [&console](std::span<const uint8_t> bytes) { console.write_output(bytes); });
    m_serial->set_input_space_callback([&console] { console.input_space_available(); });
    VIREO_TRY(insert_counted(m_pio, "serial", m_serial, layout::kCom1Port, devices::Serial16550::kPortCount));

    VIREO_ASSIGN_OR_RETURN(m_rtc_timer, m_env.loop.create_timer([this] { m_rtc->on_timer(); }));
    uint64_t low = arch::x86::low_ram_end(m_ram.size());
    m_rtc = std::make_shared<devices::CmosRtc>(
        irq_line(layout::kIrqRtc), m_clock,
        devices::CmosRtc::MemoryInfo{
            .ram_below_4g = low, .ram_above_4g = m_ram.size() - low, .cpu_count = m_config.cpus},
        [timer = m_rtc_timer.get()](std::optional<int64_t> deadline) { timer->arm(deadline); });
    VIREO_TRY(insert_counted(m_pio, "rtc", m_rtc, layout::kCmosPort, devices::CmosRtc::kPortCount));

    auto reset = [this] { request_stop({StopReason::kReset, "the guest reset the machine", 0}); };
    m_i8042 =
        std::make_shared<devices::I8042>(irq_line(layout::kIrqKeyboard), irq_line(layout::kIrqMouse), reset);
    VIREO_TRY(insert_counted(m_pio, "i8042", m_i8042, layout::kI8042DataPort, devices::I8042::kPortCount));

    VIREO_ASSIGN_OR_RETURN(m_pm_timer, m_env.loop.create_timer([this] { m_pm->on_timer(); }));
    m_pm = std::make_shared<devices::AcpiPm>(
        irq_line(layout::kIrqAcpiSci), m_clock,
        devices::AcpiPm::Callbacks{
            .power_off =
                [this] {
                    request_stop({StopReason::kPowerOff, "the guest powered off (ACPI S5)", 0});
                }},
        [timer = m_pm_timer.get()](std::optional<int64_t> deadline) { timer->arm(deadline); });
    VIREO_TRY(insert_counted(m_pio, "acpi-pm", m_pm, layout::kAcpiPmPort, devices::AcpiPm::kPortCount));

    // 0xCF9 sits inside the PCI CONFIG_ADDRESS dword: the PCI configuration ports own 0xCF8-0xCFF
    // and forward byte accesses at 0xCF9 to the reset register.
    m_reset = std::make_shared<devices::ResetControl>(reset);
    VIREO_ASSIGN_OR_RETURN(
        m_pci, PciDevices::create(m_config, PciDevices::Environment{
                                                .kvm = *m_kvm,
                                                .loop = m_env.loop,
                                                .pio = m_pio,
                                                .mmio = m_mmio,
                                                .memory = memory(),
                                                .routing = *m_routing,
                                                .msi_fallback = *m_msi,
                                                .irq_line = [this](uint32_t gsi) { return irq_line(gsi); },
                                                .reset_register = m_reset,
                                            }));

    auto ignored = std::make_shared<IgnoredPort>();
    VIREO_TRY(m_pio.insert(ignored, 0x80, 1));
    VIREO_TRY(m_pio.insert(ignored, 0xED, 1));

    m_boot_timer = std::make_shared<BootTimer>(m_start_ns, monotonic_ns);
    VIREO_TRY(m_mmio.insert(m_boot_timer, layout::kBootTimerAddr, BootTimer::kSize));

    console.attach(m_serial);
    return {};
}

Status Vm::load_kernel(uint64_t rsdp) {
    VIREO_ASSIGN_OR_RETURN(MappedFile kernel, MappedFile::open(m_config.kernel, "--kernel"));
    std::optional<MappedFile> initrd;
    if (!m_config.initrd.empty()) {
        VIREO_ASSIGN_OR_RETURN(MappedFile f, MappedFile::open(m_config.initrd, "--initrd"));
        initrd.emplace(std::move(f));
    }
    arch::x86::BootRequest request{
        .kernel = kernel.bytes(),
        .initrd = initrd ? initrd->bytes() : std::span<const uint8_t>(),
        .cmdline = m_config.cmdline,
        .e820 = arch::x86::build_e820(m_ram.size()),
        .acpi_rsdp = rsdp,
    };
    auto boot = arch::x86::load_kernel(memory(), request);
    if (!boot.ok()) return std::move(boot).error().context(fmt::format("--kernel {}", m_config.kernel));
    m_boot = std::move(boot).value();
    log::get("vmm").debug("kernel: {} entered at 0x{:x}{}", arch::x86::kernel_format_name(m_boot.format),
                          m_boot.entry, m_boot.version.empty() ? "" : " (" + m_boot.version + ")");
    return {};
}

Status Vm::build_vcpus(bool boot) {
    if (boot) {
        VIREO_TRY(arch::x86::write_boot_gdt(memory(), m_boot.protocol));
        if (m_boot.protocol == arch::x86::BootProtocol::kLinux64)
            VIREO_TRY(arch::x86::write_identity_page_tables(memory()));
    }

    VIREO_ASSIGN_OR_RETURN(auto changes, arch::x86::parse_cpu_features(m_config.cpu_features));
    arch::x86::CpuidConfig cpuid_config{.cpu_count = m_config.cpus, .changes = std::move(changes)};
    ExitBuses buses{m_pio, m_mmio, m_unclaimed_pio, m_unclaimed_mmio};
    auto on_stop = [this](uint32_t id, const ExitResult& result) {
        switch (result.action) {
            case ExitAction::kPowerOff:
                request_stop({StopReason::kPowerOff, result.message, 0});
                break;
            case ExitAction::kReset:
                request_stop({StopReason::kReset, result.message, 0});
                break;
            default:
                request_stop({StopReason::kFatal,
                              result.message.empty() ? fmt::format("vCPU {} stopped", id) : result.message,
                              0});
        }
    };

    for (uint32_t i = 0; i < m_config.cpus; ++i) {
        VIREO_ASSIGN_OR_RETURN(std::unique_ptr<kvm::Vcpu> vcpu, m_kvm->create_vcpu(i));
        VIREO_ASSIGN_OR_RETURN(auto cpuid, arch::x86::build_cpuid(m_env.supported_cpuid, cpuid_config, i));
        VIREO_TRY_CTX(vcpu->set_cpuid(cpuid), fmt::format("vCPU {}", i));

        // MSRs a host lacks are skipped rather than failing the boot (KVM_SET_MSRS stops at the
        // first one it refuses).
        std::vector<kvm_msr_entry> msrs = arch::x86::boot_msrs();
        while (!msrs.empty()) {
            VIREO_ASSIGN_OR_RETURN(size_t set, vcpu->set_msrs_prefix(msrs));
            if (set == msrs.size()) break;
            log::get("vmm").debug("vCPU {}: host refuses MSR 0x{:x}; left at its reset value", i,
                                  msrs[set].index);
            msrs.erase(msrs.begin(), msrs.begin() + static_cast<std::ptrdiff_t>(set) + 1);
        }
        VIREO_TRY_CTX(vcpu->set_fpu(arch::x86::boot_fpu()), fmt::format("vCPU {}", i));
        VIREO_ASSIGN_OR_RETURN(kvm_lapic_state lapic, vcpu->get_lapic());
        arch::x86::set_lapic_lint(lapic);
        VIREO_TRY_CTX(vcpu->set_lapic(lapic), fmt::format("vCPU {}", i));

        if (!boot) {
            // Registers, LAPIC, MSRs and MP state come from the snapshot (load_state()).
        } else if (i == 0) {
            VIREO_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu->get_sregs());
            VIREO_TRY_CTX(vcpu->set_sregs(arch::x86::boot_sregs(sregs, m_boot.protocol)), "boot vCPU");
            VIREO_TRY_CTX(vcpu->set_regs(arch::x86::boot_regs(m_boot)), "boot vCPU");
            VIREO_TRY_CTX(vcpu->set_mp_state(kvm_mp_state{KVM_MP_STATE_RUNNABLE}), "boot vCPU");
        } else {
            // Application processors wait for the boot processor's INIT and SIPI (the in-kernel
            // LAPIC delivers them); they must not run the kernel's entry themselves.
            VIREO_TRY_CTX(vcpu->set_mp_state(kvm_mp_state{KVM_MP_STATE_UNINITIALIZED}),
                          fmt::format("vCPU {}", i));
        }
        m_vcpus.push_back(std::make_unique<VcpuRunner>(std::move(vcpu), buses, memory(), on_stop));
    }
    return {};
}

Status Vm::start() {
    for (auto& v : m_vcpus)
        VIREO_TRY(v->start());
    return resume();
}

Status Vm::pause() {
    {
        std::lock_guard lock(m_state_lock);
        if (m_state != VmState::kRunning) return make_error("VM is {}, not running", to_string(m_state));
    }
    for (auto& v : m_vcpus)
        v->pause();
    std::lock_guard lock(m_state_lock);
    m_state = VmState::kPaused;
    return {};
}

Status Vm::resume() {
    {
        std::lock_guard lock(m_state_lock);
        if (m_state != VmState::kCreated && m_state != VmState::kPaused)
            return make_error("VM is {}, not paused", to_string(m_state));
        m_state = VmState::kRunning;
    }
    for (auto& v : m_vcpus)
        v->resume();
    return {};
}

void Vm::request_stop(VmStop stop) {
    {
        std::lock_guard lock(m_state_lock);
        if (m_stop.reason != StopReason::kNone) return;
        m_stop = stop;
        if (m_state != VmState::kStopped) m_state = VmState::kShuttingDown;
    }
    // Stop guest code at once, from whichever thread noticed; the loop thread does the rest.
    for (auto& v : m_vcpus)
        v->exit();
    m_env.loop.post([this, stop] {
        if (m_env.on_stop) m_env.on_stop(stop);
    });
}

void Vm::shutdown() {
    for (auto& v : m_vcpus)
        v->exit();
    for (auto& v : m_vcpus)
        v->join();
    std::lock_guard lock(m_state_lock);
    m_state = VmState::kStopped;
}

VmState Vm::state() const {
    std::lock_guard lock(m_state_lock);
    return m_state;
}

VmStop Vm::stop_state() const {
    std::lock_guard lock(m_state_lock);
    return m_stop;
}

std::vector<VcpuRunner*> Vm::vcpus() {
    std::vector<VcpuRunner*> out;
    for (auto& v : m_vcpus)
        out.push_back(v.get());
    return out;
}

bool Vm::press_power_button() {
    return m_pm->press_power_button();
}

std::vector<std::pair<std::string, devices::StatefulDevice*>> Vm::stateful_devices() {
    return {{"serial", m_serial.get()},
            {"rtc", m_rtc.get()},
            {"i8042", m_i8042.get()},
            {"acpi-pm", m_pm.get()},
            // PCI configuration, virtio registers and queues: drain with pci().drain() first.
            {"pci", m_pci.get()}};
}

Result<std::vector<VcpuSnapshot>> Vm::save_vcpu_states() {
    std::vector<VcpuSnapshot> states;
    std::vector<uint32_t> msrs;
    size_t xsave_size = m_env.kvm.xsave_size();
    for (auto& runner_ptr : m_vcpus) {
        VcpuRunner& runner = *runner_ptr;
        Status s = runner.run_paused([&](kvm::Vcpu& vcpu) -> Status {
            if (msrs.empty()) {
                VIREO_ASSIGN_OR_RETURN(msrs, saveable_msrs(m_env.kvm, vcpu));
            }
            VIREO_ASSIGN_OR_RETURN(VcpuSnapshot snap, save_vcpu_state(vcpu, msrs, xsave_size));
            states.push_back(std::move(snap));
            return {};
        });
        VIREO_TRY(s);
    }
    return states;
}

Result<VmKvmSnapshot> Vm::save_kvm_state() const {
    return save_vm_kvm_state(*m_kvm);
}

Status Vm::load_state(const std::vector<VcpuSnapshot>& vcpus, const VmKvmSnapshot& kvm) {
    if (vcpus.size() != m_vcpus.size())
        return make_error("restore: the snapshot has {} vCPUs, the VM {}", vcpus.size(), m_vcpus.size());
    VIREO_TRY_CTX(restore_vm_kvm_state(*m_kvm, kvm), "restore");
    for (size_t i = 0; i < m_vcpus.size(); ++i) {
        Status s =
            m_vcpus[i]->run_paused([&](kvm::Vcpu& vcpu) { return restore_vcpu_state(vcpu, vcpus[i]); });
        VIREO_TRY_CTX(s, fmt::format("restore vCPU {}", i));
    }
    return {};
}

std::vector<DeviceStats> Vm::device_stats() const {
    auto stats = [this](const std::string& name, uint64_t errors) {
        const auto& c = m_counted.at(name);
        return DeviceStats{name, c->bytes(), c->requests(), errors};
    };
    auto serial = m_serial->counters();
    DeviceStats uart = stats("serial", serial.guest_errors + serial.overruns + serial.input_refused);
    uart.bytes = serial.tx_bytes + serial.rx_bytes;
    auto i8042 = m_i8042->counters();
    return {
        uart,
        stats("rtc", m_rtc->counters().guest_errors),
        stats("i8042", i8042.guest_errors + i8042.keys_dropped),
        stats("acpi-pm", m_pm->counters().guest_errors),
    };
}

}  // namespace vireo::vmm
