// KVM ioctl wrappers.
#include "kvm/kvm.hpp"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

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
        std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2));
        auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
        cpuid->nent = n;
        if (::ioctl(m_fd.get(), KVM_GET_SUPPORTED_CPUID, cpuid) == 0) {
            return std::vector<kvm_cpuid_entry2>(cpuid->entries, cpuid->entries + cpuid->nent);
        }
        if (errno != E2BIG) return os_error("kvm: KVM_GET_SUPPORTED_CPUID");
    }
    return make_error("kvm: KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<std::vector<uint32_t>> System::msr_index_list() const {
    for (uint32_t n = 256; n <= 8192; n *= 2) {
        std::vector<uint8_t> buf(sizeof(kvm_msr_list) + n * sizeof(uint32_t));
        auto* list = reinterpret_cast<kvm_msr_list*>(buf.data());
        list->nmsrs = n;
        if (::ioctl(m_fd.get(), KVM_GET_MSR_INDEX_LIST, list) == 0) {
            return std::vector<uint32_t>(list->indices, list->indices + list->nmsrs);
        }
        if (errno != E2BIG) return os_error("kvm: KVM_GET_MSR_INDEX_LIST");
    }
    return make_error("kvm: KVM_GET_MSR_INDEX_LIST: too many entries");
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
    std::vector<uint8_t> buf(sizeof(kvm_irq_routing) + entries.size() * sizeof(kvm_irq_routing_entry));
    auto* routing = reinterpret_cast<kvm_irq_routing*>(buf.data());
    routing->nr = static_cast<uint32_t>(entries.size());
    std::memcpy(routing->entries, entries.data(), entries.size() * sizeof(kvm_irq_routing_entry));
    if (xioctl(m_fd.get(), KVM_SET_GSI_ROUTING, routing) < 0) return os_error("kvm: KVM_SET_GSI_ROUTING");
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

#undef VIREO_VCPU_GET
#undef VIREO_VCPU_SET

Status Vcpu::set_cpuid(const std::vector<kvm_cpuid_entry2>& entries) {
    std::vector<uint8_t> buf(sizeof(kvm_cpuid2) + entries.size() * sizeof(kvm_cpuid_entry2));
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buf.data());
    cpuid->nent = static_cast<uint32_t>(entries.size());
    std::memcpy(cpuid->entries, entries.data(), entries.size() * sizeof(kvm_cpuid_entry2));
    if (xioctl(m_fd.get(), KVM_SET_CPUID2, cpuid) < 0) return os_error("kvm: KVM_SET_CPUID2");
    return {};
}

Status Vcpu::set_msrs(const std::vector<kvm_msr_entry>& entries) {
    std::vector<uint8_t> buf(sizeof(kvm_msrs) + entries.size() * sizeof(kvm_msr_entry));
    auto* msrs = reinterpret_cast<kvm_msrs*>(buf.data());
    msrs->nmsrs = static_cast<uint32_t>(entries.size());
    std::memcpy(msrs->entries, entries.data(), entries.size() * sizeof(kvm_msr_entry));
    int r = xioctl(m_fd.get(), KVM_SET_MSRS, msrs);
    if (r < 0) return os_error("kvm: KVM_SET_MSRS");
    if (static_cast<size_t>(r) != entries.size()) {
        return make_error("kvm: KVM_SET_MSRS: MSR 0x{:x} was refused", entries[static_cast<size_t>(r)].index);
    }
    return {};
}

Result<std::vector<kvm_msr_entry>> Vcpu::get_msrs(const std::vector<uint32_t>& indices) const {
    std::vector<uint8_t> buf(sizeof(kvm_msrs) + indices.size() * sizeof(kvm_msr_entry));
    auto* msrs = reinterpret_cast<kvm_msrs*>(buf.data());
    msrs->nmsrs = static_cast<uint32_t>(indices.size());
    for (size_t i = 0; i < indices.size(); ++i)
        msrs->entries[i].index = indices[i];
    int r = xioctl(m_fd.get(), KVM_GET_MSRS, msrs);
    if (r < 0) return os_error("kvm: KVM_GET_MSRS");
    return std::vector<kvm_msr_entry>(msrs->entries, msrs->entries + r);
}

}  // namespace vireo::kvm
