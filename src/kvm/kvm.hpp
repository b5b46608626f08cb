// Thin RAII wrappers over the KVM ioctls: System (/dev/kvm), Vm and Vcpu, with readable errors.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "base/unique_fd.hpp"

namespace vireo::kvm {

class Vm;
class Vcpu;

// A capability Vireo relies on, with the name users see in errors and in `vireo doctor`.
struct Capability {
    int id;
    const char* name;
};

class System {
  public:
    // Opens /dev/kvm (or `path`) and checks the API version; errors say how to fix the host.
    static Result<System> open(const std::string& path = "/dev/kvm");

    int fd() const { return m_fd.get(); }
    int api_version() const;
    // KVM_CHECK_EXTENSION on the system fd: 0 when absent, otherwise a capability-specific value.
    int check_extension(int cap) const;
    Status require(Capability cap) const;
    Result<size_t> vcpu_mmap_size() const;
    Result<std::vector<kvm_cpuid_entry2>> supported_cpuid() const;
    // MSR indices KVM can save/restore (KVM_GET_MSR_INDEX_LIST).
    Result<std::vector<uint32_t>> msr_index_list() const;
    // Bytes of a vCPU's XSAVE area (KVM_CAP_XSAVE2; sizeof(kvm_xsave) on older hosts).
    size_t xsave_size() const;
    Result<std::unique_ptr<Vm>> create_vm() const;

  private:
    explicit System(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

// Whether AMD's AVIC (posted interrupts) is enabled in kvm_amd: reads the module parameter at
// `path` ("Y"/"1"); false on Intel hosts, where it does not exist.
bool host_has_avic(const std::string& path = "/sys/module/kvm_amd/parameters/avic");

class Vm {
  public:
    Vm(UniqueFd fd, size_t vcpu_mmap_size) : m_fd(std::move(fd)), m_vcpu_mmap_size(vcpu_mmap_size) {}

    int fd() const { return m_fd.get(); }
    int check_extension(int cap) const;

    Status set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags = 0);
    Status set_tss_addr(uint64_t addr);
    Status set_identity_map_addr(uint64_t addr);
    Status create_irqchip();
    Status create_pit2(uint32_t flags = 0);
    // KVM_REINJECT_CONTROL: whether PIT ticks the guest missed are delivered late (true, KVM's
    // default) or dropped.
    Status set_pit_reinject(bool reinject);
    Status irq_line(uint32_t irq, bool level);
    Status irqfd(int eventfd, uint32_t gsi, int resample_fd = -1);
    Status irqfd_remove(int eventfd, uint32_t gsi);
    Status ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                     std::optional<uint64_t> datamatch = {});
    Status ioeventfd_remove(int eventfd, uint64_t addr, uint32_t len, bool pio,
                            std::optional<uint64_t> datamatch = {});
    Status signal_msi(uint64_t address, uint32_t data);
    Status set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries);
    Result<std::vector<uint64_t>> dirty_log(uint32_t slot, uint64_t size);
    // KVM_ENABLE_CAP on the VM (e.g. KVM_CAP_EXIT_ON_EMULATION_FAILURE).
    Status enable_cap(uint32_t cap, uint64_t arg0 = 0);
    Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);

    // In-kernel device state, for snapshots: the PICs and IOAPIC (chip ids KVM_IRQCHIP_PIC_MASTER,
    // KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC), the PIT and kvmclock.
    Result<kvm_irqchip> get_irqchip(uint32_t chip_id) const;
    Status set_irqchip(const kvm_irqchip& chip);
    Result<kvm_pit_state2> get_pit2() const;
    Status set_pit2(const kvm_pit_state2& state);
    Result<kvm_clock_data> get_clock() const;
    Status set_clock(const kvm_clock_data& clock);

  private:
    UniqueFd m_fd;
    size_t m_vcpu_mmap_size;
};

class Vcpu {
  public:
    Vcpu(UniqueFd fd, uint32_t id, kvm_run* run, size_t run_size)
        : m_fd(std::move(fd)), m_id(id), m_run(run), m_run_size(run_size) {}
    ~Vcpu();
    Vcpu(const Vcpu&) = delete;
    Vcpu& operator=(const Vcpu&) = delete;

    int fd() const { return m_fd.get(); }
    uint32_t id() const { return m_id; }
    kvm_run* run_state() const { return m_run; }
    size_t run_size() const { return m_run_size; }

    // KVM_RUN. EINTR (a signal kicked the vCPU) is not an error: the exit reason is KVM_EXIT_INTR.
    Status run();
    // With immediate exit set, the next KVM_RUN returns at once with EINTR (after completing a
    // pending I/O instruction): how another thread stops a vCPU without racing its KVM_RUN.
    void set_immediate_exit(bool on) {
        __atomic_store_n(&m_run->immediate_exit, on ? 1 : 0, __ATOMIC_SEQ_CST);
    }

    Result<kvm_regs> get_regs() const;
    Status set_regs(const kvm_regs& regs);
    Result<kvm_sregs> get_sregs() const;
    Status set_sregs(const kvm_sregs& sregs);
    Result<kvm_fpu> get_fpu() const;
    Status set_fpu(const kvm_fpu& fpu);
    Status set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
    // What KVM_SET_CPUID2 left in force (KVM_GET_CPUID2).
    Result<std::vector<kvm_cpuid_entry2>> get_cpuid() const;
    Status set_msrs(const std::vector<kvm_msr_entry>& entries);
    // Like set_msrs, but returns how many leading entries KVM accepted (it stops at the first
    // MSR it refuses).
    Result<size_t> set_msrs_prefix(const std::vector<kvm_msr_entry>& entries);
    Result<std::vector<kvm_msr_entry>> get_msrs(const std::vector<uint32_t>& indices) const;
    Result<kvm_lapic_state> get_lapic() const;
    Status set_lapic(const kvm_lapic_state& lapic);
    Result<kvm_mp_state> get_mp_state() const;
    Status set_mp_state(const kvm_mp_state& state);
    Result<kvm_vcpu_events> get_vcpu_events() const;
    Status set_vcpu_events(const kvm_vcpu_events& events);
    Result<kvm_debugregs> get_debugregs() const;
    Status set_debugregs(const kvm_debugregs& regs);
    Result<kvm_xcrs> get_xcrs() const;
    Status set_xcrs(const kvm_xcrs& xcrs);
    // The XSAVE area (KVM_GET_XSAVE2 when the host's area is larger than struct kvm_xsave).
    // `size` is System::xsave_size(); the bytes are opaque to Vireo.
    Result<std::vector<uint8_t>> get_xsave(size_t size) const;
    Status set_xsave(const std::vector<uint8_t>& area);
    // Guest-virtual to guest-physical address (KVM_TRANSLATE) with the vCPU's current paging.
    Result<uint64_t> translate(uint64_t linear) const;
    // Guest TSC frequency in kHz (KVM_GET_TSC_KHZ).
    Result<uint32_t> get_tsc_khz() const;
    Status set_tsc_khz(uint32_t khz);
    // Tells a guest using kvmclock that the vCPU was paused (avoids soft-lockup warnings).
    Status kvmclock_ctrl();

  private:
    UniqueFd m_fd;
    uint32_t m_id;
    kvm_run* m_run;
    size_t m_run_size;
};

// Capabilities Vireo's VMM needs.
inline constexpr Capability kCapIrqchip{KVM_CAP_IRQCHIP, "irqchip"};
inline constexpr Capability kCapIrqfd{KVM_CAP_IRQFD, "irqfd"};
inline constexpr Capability kCapIoeventfd{KVM_CAP_IOEVENTFD, "ioeventfd"};
inline constexpr Capability kCapPit2{KVM_CAP_PIT2, "PIT2"};
inline constexpr Capability kCapMsi{KVM_CAP_SIGNAL_MSI, "MSI"};
inline constexpr Capability kCapImmediateExit{KVM_CAP_IMMEDIATE_EXIT, "immediate exit"};
inline constexpr Capability kCapUserMemory{KVM_CAP_USER_MEMORY, "user memory"};
inline constexpr Capability kCapIrqRouting{KVM_CAP_IRQ_ROUTING, "IRQ routing"};
inline constexpr Capability kCapExtCpuid{KVM_CAP_EXT_CPUID, "extended CPUID"};
inline constexpr Capability kCapTssAddr{KVM_CAP_SET_TSS_ADDR, "TSS address"};

// The name of a KVM exit reason ("KVM_EXIT_IO"), or "unknown exit reason N".
std::string exit_reason_name(uint32_t reason);

}  // namespace vireo::kvm
