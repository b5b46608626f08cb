// Thin RAII wrappers over the KVM ioctls: System (/dev/kvm), Vm and Vcpu, with readable errors.
#pragma once

#include "kvm/linux_kvm.hpp"

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
    Result<std::unique_ptr<Vm>> create_vm() const;

  private:
    explicit System(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
};

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
    Result<std::unique_ptr<Vcpu>> create_vcpu(uint32_t id);

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

    // KVM_RUN. EINTR (a signal kicked the vCPU) is not an error: the exit reason is KVM_EXIT_INTR.
    Status run();

    Result<kvm_regs> get_regs() const;
    Status set_regs(const kvm_regs& regs);
    Result<kvm_sregs> get_sregs() const;
    Status set_sregs(const kvm_sregs& sregs);
    Result<kvm_fpu> get_fpu() const;
    Status set_fpu(const kvm_fpu& fpu);
    Status set_cpuid(const std::vector<kvm_cpuid_entry2>& entries);
    Status set_msrs(const std::vector<kvm_msr_entry>& entries);
    Result<std::vector<kvm_msr_entry>> get_msrs(const std::vector<uint32_t>& indices) const;
    Result<kvm_lapic_state> get_lapic() const;
    Status set_lapic(const kvm_lapic_state& lapic);
    Result<kvm_mp_state> get_mp_state() const;
    Status set_mp_state(const kvm_mp_state& state);

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

}  // namespace vireo::kvm
