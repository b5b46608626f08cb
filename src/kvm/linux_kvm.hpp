// <linux/kvm.h> made safe for C++: the right struct sizes, hence the right ioctl numbers.
#pragma once

// Linux UAPI headers up to 6.2 declare flexible arrays with __DECLARE_FLEX_ARRAY, an anonymous
// struct holding an empty struct. In C++ an empty struct has size 1, so kvm_cpuid2, kvm_msrs,
// kvm_msr_list, kvm_xsave and kvm_irq_routing grow by 4 bytes, and the ioctl numbers that
// encode their sizes (KVM_GET_SUPPORTED_CPUID, KVM_GET_MSRS, KVM_GET_XSAVE, ...) no longer
// match the kernel's: every such ioctl fails with EINVAL. A plain zero-length array (a GNU
// extension that g++ and clang++ accept) has the C layout.
#include <linux/stddef.h>
#undef __DECLARE_FLEX_ARRAY
#define __DECLARE_FLEX_ARRAY(TYPE, NAME) TYPE NAME[0]
#include <linux/kvm.h>

static_assert(sizeof(kvm_cpuid2) == 8, "kvm_cpuid2 must have the kernel's layout");
static_assert(sizeof(kvm_msrs) == 8, "kvm_msrs must have the kernel's layout");
static_assert(sizeof(kvm_msr_list) == 4, "kvm_msr_list must have the kernel's layout");
static_assert(sizeof(kvm_xsave) == 4096, "kvm_xsave must have the kernel's layout");
static_assert(sizeof(kvm_irq_routing) == 8, "kvm_irq_routing must have the kernel's layout");
