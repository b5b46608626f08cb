// KVM's variable-length ioctl arguments as the kernel lays them out. Linux 6.1's uapi headers
// declare their flexible arrays with __DECLARE_FLEX_ARRAY, which in C++ adds a one-byte empty
// struct: sizeof(kvm_cpuid2), kvm_msrs, kvm_msr_list, kvm_irq_routing and kvm_xsave, the entry
// offsets, and the ioctl numbers derived from those sizes all come out wrong. Vireo builds these
// arguments from the headers below instead.
#pragma once

#include <linux/kvm.h>
#include <sys/ioctl.h>

#include <cstdint>

namespace vireo::kvm::abi {

struct CpuidHeader {  // struct kvm_cpuid2; kvm_cpuid_entry2 entries follow
    uint32_t nent;
    uint32_t padding;
};
struct MsrsHeader {  // struct kvm_msrs; kvm_msr_entry entries follow
    uint32_t nmsrs;
    uint32_t pad;
};
struct MsrListHeader {  // struct kvm_msr_list; u32 indices follow
    uint32_t nmsrs;
};
struct IrqRoutingHeader {  // struct kvm_irq_routing; kvm_irq_routing_entry entries follow
    uint32_t nr;
    uint32_t flags;
};
struct Xsave {  // struct kvm_xsave without the KVM_GET_XSAVE2 tail
    uint32_t region[1024];
};
static_assert(sizeof(CpuidHeader) == 8 && sizeof(MsrsHeader) == 8 && sizeof(MsrListHeader) == 4 &&
              sizeof(IrqRoutingHeader) == 8 && sizeof(Xsave) == 4096);
static_assert(alignof(kvm_cpuid_entry2) <= 8 && alignof(kvm_msr_entry) <= 8 &&
              alignof(kvm_irq_routing_entry) <= 8);

inline constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, CpuidHeader);
inline constexpr unsigned long kSetCpuid2 = _IOW(KVMIO, 0x90, CpuidHeader);
inline constexpr unsigned long kGetCpuid2 = _IOWR(KVMIO, 0x91, CpuidHeader);
inline constexpr unsigned long kGetMsrIndexList = _IOWR(KVMIO, 0x02, MsrListHeader);
inline constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, MsrsHeader);
inline constexpr unsigned long kSetMsrs = _IOW(KVMIO, 0x89, MsrsHeader);
inline constexpr unsigned long kSetGsiRouting = _IOW(KVMIO, 0x6a, IrqRoutingHeader);
inline constexpr unsigned long kGetXsave = _IOR(KVMIO, 0xa4, Xsave);
inline constexpr unsigned long kSetXsave = _IOW(KVMIO, 0xa5, Xsave);
inline constexpr unsigned long kGetXsave2 = _IOR(KVMIO, 0xcf, Xsave);

// The values the kernel's C headers give (checked against a C build of <linux/kvm.h>).
static_assert(kGetSupportedCpuid == 0xc008ae05 && kSetCpuid2 == 0x4008ae90);
static_assert(kGetMsrs == 0xc008ae88 && kSetMsrs == 0x4008ae89 && kGetMsrIndexList == 0xc004ae02);
static_assert(kSetGsiRouting == 0x4008ae6a && kGetXsave == 0x9000aea4 && kSetXsave == 0x5000aea5);

inline constexpr size_t kXsaveSize = sizeof(Xsave);

}  // namespace vireo::kvm::abi
