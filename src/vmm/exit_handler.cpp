// KVM exit handling (Documentation/virt/kvm/api.rst, "The kvm_run structure").
#include "vmm/exit_handler.hpp"

#include <cstring>

#include "base/log.hpp"
#include "kvm/kvm.hpp"

#ifndef KVM_EXIT_MEMORY_FAULT
#define KVM_EXIT_MEMORY_FAULT 39
#endif
#ifndef KVM_NOTIFY_CONTEXT_INVALID
#define KVM_NOTIFY_CONTEXT_INVALID (1 << 0)
#endif

namespace vireo::vmm {
namespace {

uint64_t to_value(std::span<const uint8_t> data) {
    uint64_t v = 0;
    std::memcpy(&v, data.data(), std::min<size_t>(data.size(), 8));
    return v;
}

std::string hex_bytes(const std::vector<uint8_t>& bytes) {
    std::string out;
    for (uint8_t b : bytes) {
        if (!out.empty()) out += ' ';
        out += fmt::format("{:02x}", b);
    }
    return out.empty() ? "unavailable" : out;
}

std::string where(VcpuInspector& inspector) {
    std::optional<uint64_t> rip = inspector.rip();
    std::string r = rip ? fmt::format("0x{:x}", *rip) : "unknown";
    return fmt::format("RIP {}, instruction bytes {}", r, hex_bytes(inspector.instruction_bytes()));
}

ExitResult fatal(std::string message) {
    return {ExitAction::kFatal, std::move(message)};
}

ExitResult handle_io(std::span<uint8_t> run_area, const kvm_run& run, const ExitBuses& buses,
                     uint32_t vcpu_id) {
    const auto& io = run.io;
    uint64_t total = static_cast<uint64_t>(io.size) * io.count;
    if (io.size == 0 || io.size > 8 || io.data_offset > run_area.size() ||
        total > run_area.size() - io.data_offset)
        return fatal(
            fmt::format("vCPU {}: KVM reported port I/O data outside the run area (offset {}, {} x {})",
                        vcpu_id, io.data_offset, io.count, io.size));
    uint8_t* data = run_area.data() + io.data_offset;
    // A string instruction (rep ins/outs) arrives as `count` accesses of `size` bytes.
    for (uint32_t i = 0; i < io.count; ++i) {
        std::span<uint8_t> item(data + static_cast<size_t>(i) * io.size, io.size);
        if (io.direction == KVM_EXIT_IO_OUT) {
            if (!buses.pio.write(io.port, item))
                buses.unclaimed_pio.record(io.port, io.size, true, to_value(item));
        } else if (!buses.pio.read(io.port, item)) {
            std::memset(item.data(), 0xff, item.size());
            buses.unclaimed_pio.record(io.port, io.size, false, 0);
        }
    }
    return {};
}

ExitResult handle_mmio(kvm_run& run, const ExitBuses& buses) {
    auto& mmio = run.mmio;
    size_t len = std::min<size_t>(mmio.len, sizeof mmio.data);
    std::span<uint8_t> data(mmio.data, len);
    if (mmio.is_write) {
        if (!buses.mmio.write(mmio.phys_addr, data))
            buses.unclaimed_mmio.record(mmio.phys_addr, len, true, to_value(data));
    } else if (!buses.mmio.read(mmio.phys_addr, data)) {
        std::memset(data.data(), 0xff, data.size());
        buses.unclaimed_mmio.record(mmio.phys_addr, len, false, 0);
    }
    return {};
}

const char* internal_error_name(uint32_t suberror) {
    switch (suberror) {
        case KVM_INTERNAL_ERROR_EMULATION:
            return "emulation failure";
        case KVM_INTERNAL_ERROR_SIMUL_EX:
            return "exception while delivering an exception";
        case KVM_INTERNAL_ERROR_DELIVERY_EV:
            return "exception while delivering an event";
        case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON:
            return "unexpected hardware exit";
        default:
            return "internal error";
    }
}

ExitResult handle_internal_error(const kvm_run& run, uint32_t vcpu_id, VcpuInspector& inspector) {
    const auto& ie = run.internal;
    if (ie.suberror == KVM_INTERNAL_ERROR_EMULATION) {
        const auto& ef = run.emulation_failure;
        std::string bytes;
        if (ef.ndata >= 2 && (ef.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES) &&
            ef.insn_size > 0) {
            std::vector<uint8_t> insn(ef.insn_bytes, ef.insn_bytes + std::min<uint8_t>(ef.insn_size, 15));
            std::optional<uint64_t> rip = inspector.rip();
            bytes = fmt::format("RIP {}, instruction bytes {}", rip ? fmt::format("0x{:x}", *rip) : "unknown",
                                hex_bytes(insn));
        } else {
            bytes = where(inspector);
        }
        return fatal(
            fmt::format("vCPU {}: KVM could not emulate an instruction ({}). Where KVM runs without "
                        "hardware virtualization, instructions such as cmpxchg16b and xsave are not "
                        "emulated; --cpu-features -cx16,-xsave hides them from the guest's CPUID (a "
                        "software-emulated KVM may still report xsave to the guest, which then fails at "
                        "its first xrstor)",
                        vcpu_id, bytes));
    }
    std::string data;
    for (uint32_t i = 0; i < std::min<uint32_t>(ie.ndata, 16); ++i)
        data += fmt::format(" 0x{:x}", ie.data[i]);
    return fatal(fmt::format("vCPU {}: KVM internal error {} ({}), {}; data:{}", vcpu_id, ie.suberror,
                             internal_error_name(ie.suberror), where(inspector),
                             data.empty() ? " none" : data));
}

}  // namespace

void UnclaimedAccessLog::record(uint64_t addr, size_t size, bool is_write, uint64_t value) {
    ++m_count;
    if (m_full) return;
    {
        std::lock_guard lock(m_lock);
        if (m_seen.size() >= kMaxLoggedAddresses) {
            m_full = true;
            log::get("vmm").warn(
                "unclaimed {} accesses at more than {} addresses: no longer logging new ones", m_space,
                kMaxLoggedAddresses);
            return;
        }
        if (!m_seen.insert(addr).second) return;
    }
    if (is_write) {
        log::get("vmm").info("guest wrote 0x{:x} ({} bytes) to unclaimed {} 0x{:x}: ignored", value, size,
                             m_space, addr);
    } else {
        log::get("vmm").info("guest read {} bytes from unclaimed {} 0x{:x}: all ones", size, m_space, addr);
    }
}

bool UnclaimedAccessLog::logged(uint64_t addr) const {
    std::lock_guard lock(m_lock);
    return m_seen.contains(addr);
}

ExitResult handle_exit(std::span<uint8_t> run_area, uint32_t vcpu_id, const ExitBuses& buses,
                       VcpuInspector& inspector) {
    if (run_area.size() < sizeof(kvm_run)) return fatal("kvm_run area too small");
    kvm_run& run = *reinterpret_cast<kvm_run*>(run_area.data());
    switch (run.exit_reason) {
        case KVM_EXIT_IO:
            return handle_io(run_area, run, buses, vcpu_id);
        case KVM_EXIT_MMIO:
            return handle_mmio(run, buses);
        case KVM_EXIT_INTR:
            return {ExitAction::kInterrupted, {}};

        case KVM_EXIT_SHUTDOWN: {
            // A triple fault: a PC resets (and Linux's last-resort reboot method relies on it).
            // Where it happened is looked up (registers, page walks) only if it will be logged.
            auto& log = log::get("vmm");
            if (log.should_log(spdlog::level::info))
                log.info("vCPU {}: triple fault (KVM_EXIT_SHUTDOWN) at {}: resetting", vcpu_id,
                         where(inspector));
            return {ExitAction::kReset, "triple fault"};
        }
        case KVM_EXIT_SYSTEM_EVENT:
            switch (run.system_event.type) {
                case KVM_SYSTEM_EVENT_SHUTDOWN:
                    return {ExitAction::kPowerOff, "system event: shutdown"};
                case KVM_SYSTEM_EVENT_RESET:
                    return {ExitAction::kReset, "system event: reset"};
                case KVM_SYSTEM_EVENT_CRASH:
                    return fatal(fmt::format("vCPU {}: the guest crashed (KVM system event)", vcpu_id));
                case KVM_SYSTEM_EVENT_WAKEUP:
                case KVM_SYSTEM_EVENT_SUSPEND:
                    return {};
                default:
                    return fatal(
                        fmt::format("vCPU {}: unknown KVM system event {}", vcpu_id, run.system_event.type));
            }

        case KVM_EXIT_INTERNAL_ERROR:
            return handle_internal_error(run, vcpu_id, inspector);
        case KVM_EXIT_FAIL_ENTRY:
            return fatal(fmt::format(
                "vCPU {}: KVM could not enter the guest (hardware entry failure reason 0x{:x} "
                "on host CPU {}), {}",
                vcpu_id, run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu, where(inspector)));
        case KVM_EXIT_UNKNOWN:
            return fatal(fmt::format("vCPU {}: unknown hardware exit 0x{:x}, {}", vcpu_id,
                                     run.hw.hardware_exit_reason, where(inspector)));
        case KVM_EXIT_EXCEPTION:
            return fatal(fmt::format("vCPU {}: unhandled exception {} (error code 0x{:x}), {}", vcpu_id,
                                     run.ex.exception, run.ex.error_code, where(inspector)));
        case KVM_EXIT_MEMORY_FAULT:
            return fatal(fmt::format("vCPU {}: KVM memory fault, {}", vcpu_id, where(inspector)));

        // With the in-kernel irqchip these never reach userspace; if one does, the VM was set up
        // wrongly (a host bug), and running on would spin.
        case KVM_EXIT_HLT:
        case KVM_EXIT_DEBUG:
            return fatal(fmt::format("vCPU {}: unexpected {} ({})", vcpu_id,
                                     kvm::exit_reason_name(run.exit_reason), where(inspector)));

        // Harmless notifications: run on.
        case KVM_EXIT_IRQ_WINDOW_OPEN:
        case KVM_EXIT_SET_TPR:
        case KVM_EXIT_TPR_ACCESS:
        case KVM_EXIT_NMI:
        case KVM_EXIT_X86_BUS_LOCK:
        case KVM_EXIT_DIRTY_RING_FULL:
        case KVM_EXIT_AP_RESET_HOLD:
        case KVM_EXIT_IOAPIC_EOI:
            return {};
        case KVM_EXIT_NOTIFY:
            if (run.notify.flags & KVM_NOTIFY_CONTEXT_INVALID)
                return fatal(fmt::format("vCPU {}: KVM notify exit with an invalid VM context", vcpu_id));
            return {};

        // MSR accesses KVM hands to userspace (only with an MSR filter): refuse with #GP, as a
        // real CPU does for an MSR it lacks.
        case KVM_EXIT_X86_RDMSR:
        case KVM_EXIT_X86_WRMSR:
            run.msr.error = 1;
            return {};
        case KVM_EXIT_HYPERCALL:
            run.hypercall.ret = static_cast<uint64_t>(-1000);  // -KVM_ENOSYS
            return {};

        default:
            return fatal(fmt::format("vCPU {}: unhandled {}, {}", vcpu_id,
                                     kvm::exit_reason_name(run.exit_reason), where(inspector)));
    }
}

}  // namespace vireo::vmm
