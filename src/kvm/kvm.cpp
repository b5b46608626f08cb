// KVM ioctl wrappers.
#include "kvm/kvm.hpp"

#include "kvm/abi.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace vireo::kvm {
namespace {

template <typename... Args>
int xioctl(int fd, unsigned long request, Args... args) {
    int r;
    do {
        r = ::ioctl(fd, request, args...);
    } while (r < 0 && errno == EINTR);
    return r;
}

}  // namespace

bool host_has_avic(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    char c = 0;
    return fd && ::read(fd.get(), &c, 1) == 1 && (c == 'Y' || c == 'y' || c == '1');
}

Result<System> System::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) {
            return Error(fmt::format("{} does not exist: KVM is not available. Enable virtualization in the "
                                     "firmware and load the module (modprobe kvm_intel or modprobe kvm_amd)",
                                     path),
                         err);
        }
        if (err == EACCES || err == EPERM) {
            return Error(fmt::format("{}: permission denied. Add your user to the kvm group "
                                     "(usermod -aG kvm $USER, then log in again) or run as root",
                                     path),
                         err);
        }
        return os_error(fmt::format("open {}", path), err);
    }
    System sys{UniqueFd(fd)};
    int version = sys.api_version();
    if (version != KVM_API_VERSION) {
        return make_error("{}: KVM API version {} is not supported (need {})", path, version,
                          KVM_API_VERSION);
    }
    return sys;
}

int System::api_version() const {
    return ::ioctl(m_fd.get(), KVM_GET_API_VERSION, 0);
}

int System::check_extension(int cap) const {
    int r = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

Status System::require(Capability cap) const {
    if (check_extension(cap.id) <= 0) {
        return make_error("kvm: this host's KVM lacks the {} capability (KVM_CAP {}), which Vireo needs",
                          cap.name, cap.id);
    }
    return {};
}

Result<size_t> System::vcpu_mmap_size() const {
    int r = ::ioctl(m_fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (r <= 0) return os_error("kvm: KVM_GET_VCPU_MMAP_SIZE");
    return static_cast<size_t>(r);
}

Result<std::vector<kvm_cpuid_entry2>> System::supported_cpuid() const {
    for (uint32_t n = 128; n <= 4096; n *= 2) {
        std::vector<uint64_t> buf((sizeof(abi::CpuidHeader) + n * sizeof(kvm_cpuid_entry2) + 7) / 8);
        auto* header = reinterpret_cast<abi::CpuidHeader*>(buf.data());
        header->nent = n;
        if (::ioctl(m_fd.get(), abi::kGetSupportedCpuid, header) == 0) {
            auto* entries = reinterpret_cast<const kvm_cpuid_entry2*>(header + 1);
            return std::vector<kvm_cpuid_entry2>(entries, entries + header->nent);
        }
        if (errno != E2BIG) return os_error("kvm: KVM_GET_SUPPORTED_CPUID");
    }
    return make_error("kvm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> System::msr_index_list() const {
    for (uint32_t n = 256; n <= 8192; n *= 2) {
        std::vector<uint32_t> buf(1 + n);
        auto* header = reinterpret_cast<abi::MsrListHeader*>(buf.data());
        header->nmsrs = n;
        if (::ioctl(m_fd.get(), abi::kGetMsrIndexList, header) == 0) {
            return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + header->nmsrs);
        }
        if (errno != E2BIG) return os_error("kvm: KVM_GET_MSR_INDEX_LIST");
    }
    return make_error("kvm: KVM_GET_MSR_INDEX_LIST: too many entries");
}

size_t System::xsave_size() const {
    int size = check_extension(KVM_CAP_XSAVE2);
    return size > static_cast<int>(abi::kXsaveSize) ? static_cast<size_t>(size) : abi::kXsaveSize;
}

Result<std::unique_ptr<Vm>> System::create_vm() const {
    VIREO_ASSIGN_OR_RETURN(size_t mmap_size, vcpu_mmap_size());
    int fd = xioctl(m_fd.get(), KVM_CREATE_VM, 0);
    if (fd < 0) return os_error("kvm: KVM_CREATE_VM");
    return std::make_unique<Vm>(UniqueFd(fd), mmap_size);
}

int Vm::check_extension(int cap) const {
    int r = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, cap);
    return r < 0 ? 0 : r;
}

Status Vm::set_user_memory_region(uint32_t slot, uint64_t gpa, uint64_t size, void* host, uint32_t flags) {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = gpa;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    if (xioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0) {
        return os_error(
            fmt::format("kvm: KVM_SET_USER_MEMORY_REGION slot {} gpa 0x{:x} size 0x{:x}", slot, gpa, size));
    }
    return {};
}

Status Vm::set_tss_addr(uint64_t addr) {
    if (xioctl(m_fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0) {
        return os_error("kvm: KVM_SET_TSS_ADDR");
    }
    return {};
}

Status Vm::set_identity_map_addr(uint64_t addr) {
    if (xioctl(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
        return os_error("kvm: KVM_SET_IDENTITY_MAP_ADDR");
    return {};
}

Status Vm::create_irqchip() {
    if (xioctl(m_fd.get(), KVM_CREATE_IRQCHIP, 0) < 0) return os_error("kvm: KVM_CREATE_IRQCHIP");
    return {};
}

Status Vm::create_pit2(uint32_t flags) {
    kvm_pit_config config{};
    config.flags = flags;
    if (xioctl(m_fd.get(), KVM_CREATE_PIT2, &config) < 0) return os_error("kvm: KVM_CREATE_PIT2");
    return {};
}

Status Vm::set_pit_reinject(bool reinject) {
    kvm_reinject_control control{};
    control.pit_reinject = reinject ? 1 : 0;
    if (xioctl(m_fd.get(), KVM_REINJECT_CONTROL, &control) < 0) return os_error("kvm: KVM_REINJECT_CONTROL");
    return {};
}

Status Vm::irq_line(uint32_t irq, bool level) {
    kvm_irq_level l{};
    l.irq = irq;
    l.level = level ? 1 : 0;
    if (xioctl(m_fd.get(), KVM_IRQ_LINE, &l) < 0) return os_error(fmt::format("kvm: KVM_IRQ_LINE {}", irq));
    return {};
}

Status Vm::irqfd(int eventfd, uint32_t gsi, int resample_fd) {
    kvm_irqfd req{};
    req.fd = static_cast<uint32_t>(eventfd);
    req.gsi = gsi;
    if (resample_fd >= 0) {
        req.flags = KVM_IRQFD_FLAG_RESAMPLE;
        req.resamplefd = static_cast<uint32_t>(resample_fd);
    }
    if (xioctl(m_fd.get(), KVM_IRQFD, &req) < 0) return os_error(fmt::format("kvm: KVM_IRQFD gsi {}", gsi));
    return {};
}

Status Vm::irqfd_remove(int eventfd, uint32_t gsi) {
    kvm_irqfd req{};
    req.fd = static_cast<uint32_t>(eventfd);
    req.gsi = gsi;
    req.flags = KVM_IRQFD_FLAG_DEASSIGN;
    if (xioctl(m_fd.get(), KVM_IRQFD, &req) < 0)
        return os_error(fmt::format("kvm: KVM_IRQFD deassign gsi {}", gsi));
    return {};
}

namespace {
kvm_ioeventfd make_ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio,
                             std::optional<uint64_t> datamatch) {
    kvm_ioeventfd req{};
    req.fd = eventfd;
    req.addr = addr;
    req.len = len;
    if (pio) req.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        req.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        req.datamatch = *datamatch;
    }
    return req;
}
}  // namespace

Status Vm::ioeventfd(int eventfd, uint64_t addr, uint32_t len, bool pio, std::optional<uint64_t> datamatch) {
    kvm_ioeventfd req = make_ioeventfd(eventfd, addr, len, pio, datamatch);
    if (xioctl(m_fd.get(), KVM_IOEVENTFD, &req) < 0) {
        return os_error(fmt::format("kvm: KVM_IOEVENTFD at 0x{:x}", addr));
    }
    return {};
}

Status Vm::ioeventfd_remove(int eventfd, uint64_t addr, uint32_t len, bool pio,
                            std::optional<uint64_t> datamatch) {
    kvm_ioeventfd req = make_ioeventfd(eventfd, addr, len, pio, datamatch);
    req.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (xioctl(m_fd.get(), KVM_IOEVENTFD, &req) < 0) {
        return os_error(fmt::format("kvm: KVM_IOEVENTFD deassign at 0x{:x}", addr));
    }
    return {};
}

Status Vm::signal_msi(uint64_t address, uint32_t data) {
    kvm_msi msi{};
    msi.address_lo = static_cast<uint32_t>(address);
    msi.address_hi = static_cast<uint32_t>(address >> 32);
    msi.data = data;
    if (xioctl(m_fd.get(), KVM_SIGNAL_MSI, &msi) < 0) return os_error("kvm: KVM_SIGNAL_MSI");
    return {};
}

Status Vm::set_gsi_routing(const std::vector<kvm_irq_routing_entry>& entries) {
    std::vector<uint64_t> buf(
        (sizeof(abi::IrqRoutingHeader) + entries.size() * sizeof(kvm_irq_routing_entry) + 7) / 8);
    auto* header = reinterpret_cast<abi::IrqRoutingHeader*>(buf.data());
    header->nr = static_cast<uint32_t>(entries.size());
    std::memcpy(header + 1, entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
    if (xioctl(m_fd.get(), abi::kSetGsiRouting, header) < 0) return os_error("kvm: KVM_SET_GSI_ROUTING");
    return {};
}

Result<std::vector<uint64_t>> Vm::dirty_log(uint32_t slot, uint64_t size) {
    uint64_t pages = (size + 4095) / 4096;
    std::vector<uint64_t> bitmap((pages + 63) / 64);
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bitmap.data();
    if (xioctl(m_fd.get(), KVM_GET_DIRTY_LOG, &log) < 0) return os_error("kvm: KVM_GET_DIRTY_LOG");
    return bitmap;
}

Status Vm::enable_cap(uint32_t cap, uint64_t arg0) {
    kvm_enable_cap req{};
    req.cap = cap;
    req.args[0] = arg0;
    if (xioctl(m_fd.get(), KVM_ENABLE_CAP, &req) < 0)
        return os_error(fmt::format("kvm: KVM_ENABLE_CAP {}", cap));
    return {};
}

Result<kvm_irqchip> Vm::get_irqchip(uint32_t chip_id) const {
    kvm_irqchip chip{};
    chip.chip_id = chip_id;
    if (xioctl(m_fd.get(), KVM_GET_IRQCHIP, &chip) < 0)
        return os_error(fmt::format("kvm: KVM_GET_IRQCHIP {}", chip_id));
    return chip;
}

Status Vm::set_irqchip(const kvm_irqchip& chip) {
    if (xioctl(m_fd.get(), KVM_SET_IRQCHIP, &chip) < 0)
        return os_error(fmt::format("kvm: KVM_SET_IRQCHIP {}", chip.chip_id));
    return {};
}

Result<kvm_pit_state2> Vm::get_pit2() const {
    kvm_pit_state2 state{};
    if (xioctl(m_fd.get(), KVM_GET_PIT2, &state) < 0) return os_error("kvm: KVM_GET_PIT2");
    return state;
}

Status Vm::set_pit2(const kvm_pit_state2& state) {
    if (xioctl(m_fd.get(), KVM_SET_PIT2, &state) < 0) return os_error("kvm: KVM_SET_PIT2");
    return {};
}

Result<kvm_clock_data> Vm::get_clock() const {
    kvm_clock_data clock{};
    if (xioctl(m_fd.get(), KVM_GET_CLOCK, &clock) < 0) return os_error("kvm: KVM_GET_CLOCK");
    return clock;
}

Status Vm::set_clock(const kvm_clock_data& clock) {
    kvm_clock_data c = clock;
    // Only the clock value is restored; KVM refuses flags it did not report as settable.
    c.flags &= KVM_CLOCK_REALTIME;
    if (xioctl(m_fd.get(), KVM_SET_CLOCK, &c) < 0) return os_error("kvm: KVM_SET_CLOCK");
    return {};
}

Result<std::unique_ptr<Vcpu>> Vm::create_vcpu(uint32_t id) {
    int fd = xioctl(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) return os_error(fmt::format("kvm: KVM_CREATE_VCPU {}", id));
    UniqueFd vcpu_fd(fd);
    void* run = ::mmap(nullptr, m_vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) return os_error(fmt::format("kvm: mmap of vCPU {} run area", id));
    return std::make_unique<Vcpu>(std::move(vcpu_fd), id, static_cast<kvm_run*>(run), m_vcpu_mmap_size);
}

Vcpu::~Vcpu() {
    if (m_run != nullptr) ::munmap(m_run, m_run_size);
}

Status Vcpu::run() {
    if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            m_run->exit_reason = KVM_EXIT_INTR;
            return {};
        }
        return os_error(fmt::format("kvm: KVM_RUN on vCPU {}", m_id));
    }
    return {};
}

#define VIREO_VCPU_GET(type, name, req)                                         \
    Result<type> Vcpu::name() const {                                           \
        type value{};                                                           \
        if (xioctl(m_fd.get(), req, &value) < 0) return os_error("kvm: " #req); \
        return value;                                                           \
    }
#define VIREO_VCPU_SET(type, name, req)                                         \
    Status Vcpu::name(const type& value) {                                      \
        if (xioctl(m_fd.get(), req, &value) < 0) return os_error("kvm: " #req); \
        return {};                                                              \
    }

VIREO_VCPU_GET(kvm_regs, get_regs, KVM_GET_REGS)
VIREO_VCPU_SET(kvm_regs, set_regs, KVM_SET_REGS)
VIREO_VCPU_GET(kvm_sregs, get_sregs, KVM_GET_SREGS)
VIREO_VCPU_SET(kvm_sregs, set_sregs, KVM_SET_SREGS)
VIREO_VCPU_GET(kvm_fpu, get_fpu, KVM_GET_FPU)
VIREO_VCPU_SET(kvm_fpu, set_fpu, KVM_SET_FPU)
VIREO_VCPU_GET(kvm_lapic_state, get_lapic, KVM_GET_LAPIC)
VIREO_VCPU_SET(kvm_lapic_state, set_lapic, KVM_SET_LAPIC)
VIREO_VCPU_GET(kvm_mp_state, get_mp_state, KVM_GET_MP_STATE)
VIREO_VCPU_SET(kvm_mp_state, set_mp_state, KVM_SET_MP_STATE)
VIREO_VCPU_GET(kvm_vcpu_events, get_vcpu_events, KVM_GET_VCPU_EVENTS)
VIREO_VCPU_SET(kvm_vcpu_events, set_vcpu_events, KVM_SET_VCPU_EVENTS)
VIREO_VCPU_GET(kvm_debugregs, get_debugregs, KVM_GET_DEBUGREGS)
VIREO_VCPU_SET(kvm_debugregs, set_debugregs, KVM_SET_DEBUGREGS)
VIREO_VCPU_GET(kvm_xcrs, get_xcrs, KVM_GET_XCRS)
VIREO_VCPU_SET(kvm_xcrs, set_xcrs, KVM_SET_XCRS)

#undef VIREO_VCPU_GET
#undef VIREO_VCPU_SET

Result<std::vector<uint8_t>> Vcpu::get_xsave(size_t size) const {
    size = std::max(size, abi::kXsaveSize);
    std::vector<uint8_t> area(size);
    unsigned long req = size > abi::kXsaveSize ? abi::kGetXsave2 : abi::kGetXsave;
    if (xioctl(m_fd.get(), req, area.data()) < 0) return os_error("kvm: KVM_GET_XSAVE");
    return area;
}

Status Vcpu::set_xsave(const std::vector<uint8_t>& area) {
    if (area.size() < abi::kXsaveSize)
        return make_error("kvm: XSAVE area of {} bytes is too small (need {})", area.size(), abi::kXsaveSize);
    if (xioctl(m_fd.get(), abi::kSetXsave, area.data()) < 0) return os_error("kvm: KVM_SET_XSAVE");
    return {};
}

Result<uint64_t> Vcpu::translate(uint64_t linear) const {
    kvm_translation t{};
    t.linear_address = linear;
    if (xioctl(m_fd.get(), KVM_TRANSLATE, &t) < 0) return os_error("kvm: KVM_TRANSLATE");
    if (!t.valid) return make_error("kvm: guest address 0x{:x} is not mapped", linear);
    return t.physical_address;
}

Result<uint32_t> Vcpu::get_tsc_khz() const {
    int r = xioctl(m_fd.get(), KVM_GET_TSC_KHZ, 0);
    if (r < 0) return os_error("kvm: KVM_GET_TSC_KHZ");
    return static_cast<uint32_t>(r);
}

Status Vcpu::set_tsc_khz(uint32_t khz) {
    if (xioctl(m_fd.get(), KVM_SET_TSC_KHZ, static_cast<unsigned long>(khz)) < 0)
        return os_error(fmt::format("kvm: KVM_SET_TSC_KHZ {}", khz));
    return {};
}

Status Vcpu::kvmclock_ctrl() {
    // EINVAL: the guest does not use kvmclock, which is fine.
    if (xioctl(m_fd.get(), KVM_KVMCLOCK_CTRL, 0) < 0 && errno != EINVAL)
        return os_error("kvm: KVM_KVMCLOCK_CTRL");
    return {};
}

Result<std::vector<kvm_cpuid_entry2>> Vcpu::get_cpuid() const {
    for (uint32_t n = 128; n <= 4096; n *= 2) {
        std::vector<uint64_t> buf((sizeof(abi::CpuidHeader) + n * sizeof(kvm_cpuid_entry2) + 7) / 8);
        auto* header = reinterpret_cast<abi::CpuidHeader*>(buf.data());
        header->nent = n;
        if (xioctl(m_fd.get(), abi::kGetCpuid2, header) == 0) {
            auto* entries = reinterpret_cast<const kvm_cpuid_entry2*>(header + 1);
            return std::vector<kvm_cpuid_entry2>(entries, entries + header->nent);
        }
        if (errno != E2BIG) return os_error("kvm: KVM_GET_CPUID2");
    }
    return make_error("kvm: KVM_GET_CPUID2: too many entries");
}

Status Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
    std::vector<uint64_t> buf((sizeof(abi::CpuidHeader) + entries.size() * sizeof(kvm_cpuid_entry2) + 7) / 8);
    auto* header = reinterpret_cast<abi::CpuidHeader*>(buf.data());
    header->nent = static_cast<uint32_t>(entries.size());
    std::memcpy(header + 1, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
    if (xioctl(m_fd.get(), abi::kSetCpuid2, header) < 0) return os_error("kvm: KVM_SET_CPUID2");
    return {};
}

namespace {

// A kvm_msrs argument: header, then the entries.
std::vector<uint64_t> msrs_buffer(size_t count) {
    return std::vector<uint64_t>((sizeof(abi::MsrsHeader) + count * sizeof(kvm_msr_entry) + 7) / 8);
}

}  // namespace

Result<size_t> Vcpu::set_msrs_prefix(const std::vector<kvm_msr_entry>& entries) {
    std::vector<uint64_t> buf = msrs_buffer(entries.size());
    auto* header = reinterpret_cast<abi::MsrsHeader*>(buf.data());
    header->nmsrs = static_cast<uint32_t>(entries.size());
    std::memcpy(header + 1, entries.data(), entries.size() * sizeof(kvm_msr_entry));
    int r = xioctl(m_fd.get(), abi::kSetMsrs, header);
    if (r < 0) return os_error("kvm: KVM_SET_MSRS");
    return static_cast<size_t>(r);
}

Status Vcpu::set_msrs(const std::vector<kvm_msr_entry>& entries) {
    VIREO_ASSIGN_OR_RETURN(size_t set, set_msrs_prefix(entries));
    if (set != entries.size())
        return make_error("kvm: KVM_SET_MSRS: MSR 0x{:x} was refused", entries[set].index);
    return {};
}

Result<std::vector<kvm_msr_entry>> Vcpu::get_msrs(const std::vector<uint32_t>& indices) const {
    std::vector<uint64_t> buf = msrs_buffer(indices.size());
    auto* header = reinterpret_cast<abi::MsrsHeader*>(buf.data());
    header->nmsrs = static_cast<uint32_t>(indices.size());
    auto* entries = reinterpret_cast<kvm_msr_entry*>(header + 1);
    for (size_t i = 0; i < indices.size(); ++i)
        entries[i].index = indices[i];
    int r = xioctl(m_fd.get(), abi::kGetMsrs, header);
    if (r < 0) return os_error("kvm: KVM_GET_MSRS");
    return std::vector<kvm_msr_entry>(entries, entries + r);
}

std::string exit_reason_name(uint32_t reason) {
    static constexpr const char* kNames[] = {
        "KVM_EXIT_UNKNOWN",
        "KVM_EXIT_EXCEPTION",
        "KVM_EXIT_IO",
        "KVM_EXIT_HYPERCALL",
        "KVM_EXIT_DEBUG",
        "KVM_EXIT_HLT",
        "KVM_EXIT_MMIO",
        "KVM_EXIT_IRQ_WINDOW_OPEN",
        "KVM_EXIT_SHUTDOWN",
        "KVM_EXIT_FAIL_ENTRY",
        "KVM_EXIT_INTR",
        "KVM_EXIT_SET_TPR",
        "KVM_EXIT_TPR_ACCESS",
        "KVM_EXIT_S390_SIEIC",
        "KVM_EXIT_S390_RESET",
        "KVM_EXIT_DCR",
        "KVM_EXIT_NMI",
        "KVM_EXIT_INTERNAL_ERROR",
        "KVM_EXIT_OSI",
        "KVM_EXIT_PAPR_HCALL",
        "KVM_EXIT_S390_UCONTROL",
        "KVM_EXIT_WATCHDOG",
        "KVM_EXIT_S390_TSCH",
        "KVM_EXIT_EPR",
        "KVM_EXIT_SYSTEM_EVENT",
        "KVM_EXIT_S390_STSI",
        "KVM_EXIT_IOAPIC_EOI",
        "KVM_EXIT_HYPERV",
        "KVM_EXIT_ARM_NISV",
        "KVM_EXIT_X86_RDMSR",
        "KVM_EXIT_X86_WRMSR",
        "KVM_EXIT_DIRTY_RING_FULL",
        "KVM_EXIT_AP_RESET_HOLD",
        "KVM_EXIT_X86_BUS_LOCK",
        "KVM_EXIT_XEN",
        "KVM_EXIT_RISCV_SBI",
        "KVM_EXIT_RISCV_CSR",
        "KVM_EXIT_NOTIFY",
        "KVM_EXIT_LOONGARCH_IOCSR",
        "KVM_EXIT_MEMORY_FAULT",
    };
    if (reason < std::size(kNames)) return kNames[reason];
    return fmt::format("unknown exit reason {}", reason);
}

}  // namespace vireo::kvm
