// Host probe: KVM capabilities, guest instruction speed, tun, io_uring and fuse.
#include "kvm/probe.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <fstream>
#include <mutex>
#include <thread>

#include "base/unique_fd.hpp"

namespace vireo::kvm {
namespace {

constexpr uint64_t kProbeMemSize = 0x10000;
constexpr uint64_t kCodeAddr = 0x1000;

// Real-mode loop: mov ecx, N; 1: dec ecx; jnz 1b; hlt.  Executes 2N + 2 instructions.
void write_loop(uint8_t* mem, uint32_t iterations) {
    uint8_t* p = mem + kCodeAddr;
    const uint8_t code[] = {
        0x66, 0xB9, 0, 0, 0, 0,  // mov ecx, imm32
        0x66, 0x49,              // dec ecx
        0x75, 0xFC,              // jnz -4
        0xF4,                    // hlt
    };
    std::memcpy(p, code, sizeof code);
    std::memcpy(p + 2, &iterations, sizeof iterations);
}

void noop_signal(int) {}

// Kicks a vCPU thread out of KVM_RUN with a signal when a deadline passes.
class Watchdog {
  public:
    Watchdog(pthread_t target, std::chrono::duration<double> timeout) : m_target(target) {
        m_thread = std::thread([this, timeout]() mutable {
            std::unique_lock lock(m_mutex);
            while (!m_done) {
                if (m_cv.wait_for(lock, timeout) == std::cv_status::timeout && !m_done) {
                    m_fired = true;
                    pthread_kill(m_target, SIGUSR1);
                    // Keep kicking in case the signal arrived between two KVM_RUN calls.
                    timeout = std::chrono::duration<double>(0.05);
                }
            }
        });
    }
    ~Watchdog() {
        {
            std::lock_guard lock(m_mutex);
            m_done = true;
        }
        m_cv.notify_all();
        m_thread.join();
    }
    bool fired() const { return m_fired; }

  private:
    pthread_t m_target;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_done = false;
    std::atomic<bool> m_fired{false};
    std::thread m_thread;
};

Result<double> time_loop(Vcpu& vcpu, uint8_t* mem, uint32_t iterations, const Watchdog& watchdog) {
    write_loop(mem, iterations);
    VIREO_ASSIGN_OR_RETURN(kvm_sregs sregs, vcpu.get_sregs());
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    VIREO_TRY(vcpu.set_sregs(sregs));
    kvm_regs regs{};
    regs.rip = kCodeAddr;
    regs.rflags = 0x2;
    VIREO_TRY(vcpu.set_regs(regs));

    auto start = std::chrono::steady_clock::now();
    for (;;) {
        VIREO_TRY(vcpu.run());
        uint32_t reason = vcpu.run_state()->exit_reason;
        if (reason == KVM_EXIT_HLT) break;
        if (reason == KVM_EXIT_INTR) {
            if (watchdog.fired()) return make_error("probe guest did not finish in time");
            continue;
        }
        return make_error("probe guest stopped with unexpected KVM exit reason {}", reason);
    }
    auto elapsed = std::chrono::steady_clock::now() - start;
    return std::chrono::duration<double, std::nano>(elapsed).count();
}

FeatureCheck check_tun(const std::string& path) {
    FeatureCheck c{"tun", false, {}};
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        c.detail = fmt::format("{}: {}", path, std::strerror(errno));
        return c;
    }
    UniqueFd guard(fd);
    ifreq ifr{};
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    std::strncpy(ifr.ifr_name, "vireoprobe%d", IFNAMSIZ - 1);
    if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
        c.detail = fmt::format("{} opens, but creating a tap failed: {} (needs CAP_NET_ADMIN)", path,
                               std::strerror(errno));
        return c;
    }
    c.usable = true;
    c.detail = fmt::format("{} opens and a tap with vnet headers can be created", path);
    return c;
}

FeatureCheck check_io_uring() {
    FeatureCheck c{"io_uring", false, {}};
    io_uring_params params{};
    long fd = ::syscall(__NR_io_uring_setup, 4, &params);
    if (fd < 0) {
        int err = errno;
        c.detail = fmt::format("io_uring_setup failed: {}", std::strerror(err));
        if (err == EPERM) c.detail += " (check /proc/sys/kernel/io_uring_disabled or the seccomp policy)";
        return c;
    }
    ::close(static_cast<int>(fd));
    c.usable = true;
    c.detail = fmt::format("io_uring_setup works (features 0x{:x})", params.features);
    return c;
}

FeatureCheck check_fuse(const std::string& path) {
    FeatureCheck c{"fuse", false, {}};
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        c.detail = fmt::format("{}: {}", path, std::strerror(errno));
        return c;
    }
    ::close(fd);
    c.usable = true;
    c.detail = fmt::format("{} opens", path);
    return c;
}

}  // namespace

bool HostReport::vmm_ready() const {
    if (!kvm_openable) return false;
    return std::all_of(capabilities.begin(), capabilities.end(),
                       [](const FeatureCheck& c) { return c.usable; });
}

std::string classify_speed(double ns_per_instruction) {
    return ns_per_instruction > kEmulatedThresholdNs ? "emulated" : "hardware";
}

Result<double> measure_guest_speed(const System& system, double timeout_seconds) {
    struct sigaction sa {};
    sa.sa_handler = noop_signal;  // no SA_RESTART: the signal makes KVM_RUN return EINTR
    struct sigaction old {};
    ::sigaction(SIGUSR1, &sa, &old);
    struct RestoreSignal {
        struct sigaction old;
        ~RestoreSignal() { ::sigaction(SIGUSR1, &old, nullptr); }
    } restore{old};

    VIREO_ASSIGN_OR_RETURN(auto vm, system.create_vm());
    void* mem = ::mmap(nullptr, kProbeMemSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) return os_error("probe: mmap guest memory");
    struct Unmap {
        void* p;
        ~Unmap() { ::munmap(p, kProbeMemSize); }
    } unmap{mem};
    VIREO_TRY(vm->set_tss_addr(0xfffbd000));
    VIREO_TRY(vm->set_user_memory_region(0, 0, kProbeMemSize, mem));

    VIREO_ASSIGN_OR_RETURN(auto vcpu, vm->create_vcpu(0));
    Watchdog watchdog(pthread_self(), std::chrono::duration<double>(timeout_seconds));
    // Short and long runs; their difference is 2 * (long - short) instructions of pure loop.
    constexpr uint32_t kShort = 1000;
    constexpr uint32_t kLong = 51000;
    double best = 0;
    bool have = false;
    for (int attempt = 0; attempt < 3; ++attempt) {
        VIREO_ASSIGN_OR_RETURN(double t_short,
                               time_loop(*vcpu, static_cast<uint8_t*>(mem), kShort, watchdog));
        VIREO_ASSIGN_OR_RETURN(double t_long, time_loop(*vcpu, static_cast<uint8_t*>(mem), kLong, watchdog));
        double per = std::max(0.0, t_long - t_short) / (2.0 * (kLong - kShort));
        if (!have || per < best) best = per;
        have = true;
        // Emulated KVM: one round already takes a tenth of a second and says enough.
        if (per > kEmulatedThresholdNs) break;
    }
    return best;
}

HostReport probe_host(const ProbeOptions& options) {
    HostReport report;
    report.kvm_device = options.kvm_device;
    struct stat st {};
    report.kvm_present = ::stat(options.kvm_device.c_str(), &st) == 0;

    auto system = System::open(options.kvm_device);
    if (!system.ok()) {
        report.kvm_error = system.error().message();
        report.advice.push_back(system.error().message());
    } else {
        report.kvm_openable = true;
        report.api_version = system->api_version();
        auto cap = [&](const char* name, int id) {
            bool present = system->check_extension(id) > 0;
            report.capabilities.push_back({name, present, present ? "present" : "missing"});
        };
        cap("irqchip", KVM_CAP_IRQCHIP);
        cap("irqfd", KVM_CAP_IRQFD);
        cap("ioeventfd", KVM_CAP_IOEVENTFD);
        cap("pit2", KVM_CAP_PIT2);
        cap("msi", KVM_CAP_SIGNAL_MSI);

        // Dirty logging has no capability bit of its own; try it on a one-page slot.
        FeatureCheck dirty{"dirty_log", false, {}};
        if (auto vm = system->create_vm(); vm.ok()) {
            void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (page != MAP_FAILED) {
                auto set = (*vm)->set_user_memory_region(0, 0, 4096, page, KVM_MEM_LOG_DIRTY_PAGES);
                auto log = set.ok() ? (*vm)->dirty_log(0, 4096) : Result<std::vector<uint64_t>>(set.error());
                dirty.usable = log.ok();
                dirty.detail = log.ok() ? "KVM_GET_DIRTY_LOG works" : log.error().message();
                ::munmap(page, 4096);
            }
        } else {
            dirty.detail = vm.error().message();
        }
        report.capabilities.push_back(dirty);
        cap("immediate_exit", KVM_CAP_IMMEDIATE_EXIT);

        for (const auto& c : report.capabilities) {
            if (!c.usable) {
                report.advice.push_back(fmt::format(
                    "KVM lacks '{}': update the host kernel (Vireo needs Linux 5.10 or newer with KVM)",
                    c.name));
            }
        }

        if (options.measure_speed) {
            auto speed = measure_guest_speed(*system);
            if (speed.ok()) {
                report.ns_per_instruction = *speed;
                report.acceleration = classify_speed(*speed);
                if (report.acceleration == "emulated") {
                    report.advice.push_back(fmt::format(
                        "guest code runs emulated ({:.0f} ns per instruction): KVM here is a software "
                        "implementation (nested virtualization without hardware support?); guests will boot "
                        "very slowly",
                        *speed));
                }
            } else {
                report.speed_error = speed.error().message();
            }
        }
    }

    report.host.push_back(check_tun(options.tun_device));
    report.host.push_back(check_io_uring());
    report.host.push_back(check_fuse(options.fuse_device));
    for (const auto& c : report.host) {
        if (c.usable) continue;
        if (c.name == "tun") {
            report.advice.push_back(
                "tap networking is unavailable: load the tun module (modprobe tun) and run "
                "with CAP_NET_ADMIN to create taps");
        } else if (c.name == "io_uring") {
            report.advice.push_back("io_uring is unavailable: disk I/O falls back to a thread pool");
        } else if (c.name == "fuse") {
            report.advice.push_back(
                "FUSE is unavailable: load the fuse module (modprobe fuse) to mount images");
        }
    }
    return report;
}

}  // namespace vireo::kvm
