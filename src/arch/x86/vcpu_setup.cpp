// Boot vCPU state for the Linux 64-bit and PVH entry points.
#include "arch/x86/vcpu_setup.hpp"

#include <array>
#include <cstring>

#include "arch/x86/boot_layout.hpp"

namespace vireo::arch::x86 {
namespace {

// GDT descriptors (Intel SDM Vol. 3A §3.4.5): base 0, limit 4 GiB (G), present, DPL 0.
constexpr uint64_t kGdtCode64 = 0x00af'9b00'0000'ffff;  // L=1, type 0xb (execute/read, accessed)
constexpr uint64_t kGdtCode32 = 0x00cf'9b00'0000'ffff;  // D=1
constexpr uint64_t kGdtData = 0x00cf'9300'0000'ffff;    // read/write, accessed
constexpr uint64_t kGdtTss = 0x0000'8b00'0000'0067;     // busy 32-bit TSS, limit 0x67

kvm_segment flat_segment(uint16_t selector, uint8_t type, bool code64) {
    kvm_segment s{};
    s.base = 0;
    s.limit = 0xffff'ffff;
    s.selector = selector;
    s.type = type;
    s.present = 1;
    s.dpl = 0;
    s.db = code64 ? 0 : 1;
    s.s = 1;
    s.l = code64 ? 1 : 0;
    s.g = 1;
    return s;
}

}  // namespace

Status write_boot_gdt(const GuestMemory& memory, BootProtocol protocol) {
    std::array<uint64_t, 5> gdt = {0, 0, protocol == BootProtocol::kLinux64 ? kGdtCode64 : kGdtCode32,
                                   kGdtData, kGdtTss};
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kGdtAddr, gdt), "boot GDT");
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kIdtAddr, uint64_t{0}), "boot IDT");
    return {};
}

Status write_identity_page_tables(const GuestMemory& memory) {
    constexpr uint64_t kPresentWritable = 0x3;
    constexpr uint64_t kLargePage = 0x80;
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kPml4Addr, boot_layout::kPdptAddr | kPresentWritable),
                  "boot page tables");
    std::array<uint64_t, 512> table{};
    for (uint64_t i = 0; i < 4; ++i)
        table[i] = (boot_layout::kPdAddr + i * 4096) | kPresentWritable;
    VIREO_TRY_CTX(memory.write_obj(boot_layout::kPdptAddr, table), "boot page tables");
    for (uint64_t pd = 0; pd < 4; ++pd) {
        for (uint64_t i = 0; i < 512; ++i)
            table[i] = ((pd << 30) | (i << 21)) | kPresentWritable | kLargePage;
        VIREO_TRY_CTX(memory.write_obj(boot_layout::kPdAddr + pd * 4096, table), "boot page tables");
    }
    return {};
}

kvm_sregs boot_sregs(const kvm_sregs& reset, BootProtocol protocol) {
    kvm_sregs s = reset;
    bool long_mode = protocol == BootProtocol::kLinux64;
    s.cs = flat_segment(boot_layout::kCodeSelector, 0xb, long_mode);
    kvm_segment data = flat_segment(boot_layout::kDataSelector, 0x3, false);
    s.ds = s.es = s.fs = s.gs = s.ss = data;
    kvm_segment tr{};
    tr.selector = boot_layout::kTssSelector;
    tr.limit = 0x67;
    tr.type = 0xb;  // busy TSS (32-bit, or 64-bit in long mode: same type value)
    tr.present = 1;
    s.tr = tr;
    kvm_segment ldt{};
    ldt.type = 0x2;
    ldt.present = 1;
    ldt.unusable = 1;
    s.ldt = ldt;
    s.gdt.base = boot_layout::kGdtAddr;
    s.gdt.limit = 5 * 8 - 1;
    s.idt.base = boot_layout::kIdtAddr;
    s.idt.limit = 0;
    if (long_mode) {
        s.cr0 = kCr0Pe | kCr0Mp | kCr0Et | kCr0Ne | kCr0Pg;
        s.cr3 = boot_layout::kPml4Addr;
        s.cr4 = kCr4Pae;
        s.efer = kEferLme | kEferLma;
    } else {
        // PVH: "paging disabled, protected mode enabled" (xen docs/misc/pvh.pandoc).
        s.cr0 = kCr0Pe | kCr0Et;
        s.cr3 = 0;
        s.cr4 = 0;
        s.efer = 0;
    }
    return s;
}

kvm_regs boot_regs(const BootEntry& entry) {
    kvm_regs r{};
    r.rflags = 0x2;  // bit 1 is reserved and reads as 1; interrupts off
    r.rip = entry.entry;
    if (entry.protocol == BootProtocol::kLinux64) {
        r.rsi = entry.boot_info;
        r.rsp = boot_layout::kBootStackTop;
        r.rbp = boot_layout::kBootStackTop;
    } else {
        r.rbx = entry.boot_info;
    }
    return r;
}

kvm_fpu boot_fpu() {
    kvm_fpu f{};
    f.fcw = 0x37f;
    f.mxcsr = 0x1f80;
    return f;
}

std::vector<kvm_msr_entry> boot_msrs() {
    auto msr = [](uint32_t index, uint64_t value) {
        kvm_msr_entry e{};
        e.index = index;
        e.data = value;
        return e;
    };
    return {
        msr(kMsrSysenterCs, 0),
        msr(kMsrSysenterEsp, 0),
        msr(kMsrSysenterEip, 0),
        msr(kMsrStar, 0),
        msr(kMsrCstar, 0),
        msr(kMsrKernelGsBase, 0),
        msr(kMsrSyscallMask, 0),
        msr(kMsrLstar, 0),
        msr(kMsrIa32MiscEnable, 1),           // fast-string operations enabled
        msr(kMsrMtrrDefType, (1 << 11) | 6),  // MTRRs enabled, default type write-back
    };
}

void set_lapic_lint(kvm_lapic_state& lapic) {
    auto update = [&](uint32_t offset, uint32_t mode) {
        uint32_t value;
        std::memcpy(&value, lapic.regs + offset, 4);
        // Delivery mode is bits 8-10; clearing bit 16 unmasks.
        value = (value & ~0x700u & ~(1u << 16)) | (mode << 8);
        std::memcpy(lapic.regs + offset, &value, 4);
    };
    update(kApicLvtLint0, kApicDeliveryModeExtInt);
    update(kApicLvtLint1, kApicDeliveryModeNmi);
}

}  // namespace vireo::arch::x86
