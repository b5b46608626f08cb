// Exit reason names (linux/kvm.h KVM_EXIT_*) and the process RSS.
#include "vmm/control/exit_reasons.hpp"

#include <linux/kvm.h>
#include <unistd.h>

#include <cstdio>

namespace vireo::vmm {

std::string_view exit_reason_name(uint32_t reason) {
    switch (reason) {
        case KVM_EXIT_UNKNOWN:
            return "unknown";
        case KVM_EXIT_EXCEPTION:
            return "exception";
        case KVM_EXIT_IO:
            return "io";
        case KVM_EXIT_HYPERCALL:
            return "hypercall";
        case KVM_EXIT_DEBUG:
            return "debug";
        case KVM_EXIT_HLT:
            return "hlt";
        case KVM_EXIT_MMIO:
            return "mmio";
        case KVM_EXIT_IRQ_WINDOW_OPEN:
            return "irq_window_open";
        case KVM_EXIT_SHUTDOWN:
            return "shutdown";
        case KVM_EXIT_FAIL_ENTRY:
            return "fail_entry";
        case KVM_EXIT_INTR:
            return "intr";
        case KVM_EXIT_SET_TPR:
            return "set_tpr";
        case KVM_EXIT_TPR_ACCESS:
            return "tpr_access";
        case KVM_EXIT_NMI:
            return "nmi";
        case KVM_EXIT_INTERNAL_ERROR:
            return "internal_error";
        case KVM_EXIT_SYSTEM_EVENT:
            return "system_event";
        case KVM_EXIT_IOAPIC_EOI:
            return "ioapic_eoi";
        case KVM_EXIT_HYPERV:
            return "hyperv";
        case KVM_EXIT_X86_RDMSR:
            return "rdmsr";
        case KVM_EXIT_X86_WRMSR:
            return "wrmsr";
        case KVM_EXIT_DIRTY_RING_FULL:
            return "dirty_ring_full";
        case KVM_EXIT_X86_BUS_LOCK:
            return "bus_lock";
        default:
            return "other";
    }
}

uint64_t process_rss_bytes() {
    std::FILE* f = std::fopen("/proc/self/statm", "re");
    if (f == nullptr) return 0;
    unsigned long long size = 0, resident = 0;
    int n = std::fscanf(f, "%llu %llu", &size, &resident);
    std::fclose(f);
    if (n != 2) return 0;
    return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace vireo::vmm
