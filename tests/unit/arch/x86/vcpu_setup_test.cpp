// Boot vCPU state: segments and control registers for each protocol, GDT, page tables, LINT pins.
#include "arch/x86/vcpu_setup.hpp"

#include <gtest/gtest.h>

#include <cstring>

#include "arch/x86/boot_layout.hpp"
#include "fakes/test_memory.hpp"

namespace vireo::arch::x86 {
namespace {

TEST(VcpuSetup, LongModeForTheLinuxEntry) {
    kvm_sregs reset{};
    reset.cr0 = 0x60000010;
    kvm_sregs s = boot_sregs(reset, BootProtocol::kLinux64);
    EXPECT_TRUE(s.cr0 & kCr0Pe);
    EXPECT_TRUE(s.cr0 & kCr0Pg);
    EXPECT_FALSE(s.cr0 & (1ull << 30));  // caches enabled (CD clear)
    EXPECT_TRUE(s.cr4 & kCr4Pae);
    EXPECT_EQ(s.efer, kEferLme | kEferLma);
    EXPECT_EQ(s.cr3, boot_layout::kPml4Addr);
    EXPECT_EQ(s.cs.selector, 0x10);
    EXPECT_EQ(s.cs.l, 1);
    EXPECT_EQ(s.cs.db, 0);
    EXPECT_EQ(s.ds.selector, 0x18);
    EXPECT_EQ(s.ss.selector, 0x18);
    EXPECT_EQ(s.tr.type, 0xb);
    EXPECT_EQ(s.gdt.base, boot_layout::kGdtAddr);
}

TEST(VcpuSetup, FlatProtectedModeWithoutPagingForPvh) {
    kvm_sregs s = boot_sregs(kvm_sregs{}, BootProtocol::kPvh);
    EXPECT_EQ(s.cr0 & (kCr0Pe | kCr0Pg), kCr0Pe);
    EXPECT_EQ(s.cr4, 0u);
    EXPECT_EQ(s.efer, 0u);
    EXPECT_EQ(s.cs.l, 0);
    EXPECT_EQ(s.cs.db, 1);
    EXPECT_EQ(s.cs.base, 0u);
    EXPECT_EQ(s.cs.limit, 0xffffffffu);
    EXPECT_EQ(s.cs.g, 1);
    EXPECT_EQ(s.ds.db, 1);
}

TEST(VcpuSetup, RegistersCarryTheBootInfoPointer) {
    BootEntry linux_entry;
    linux_entry.protocol = BootProtocol::kLinux64;
    linux_entry.entry = 0x1000000;
    linux_entry.boot_info = 0x7000;
    kvm_regs r = boot_regs(linux_entry);
    EXPECT_EQ(r.rip, 0x1000000u);
    EXPECT_EQ(r.rsi, 0x7000u);
    EXPECT_EQ(r.rflags, 2u);
    EXPECT_NE(r.rsp, 0u);
    BootEntry pvh;
    pvh.protocol = BootProtocol::kPvh;
    pvh.entry = 0x100020;
    pvh.boot_info = 0x6000;
    kvm_regs p = boot_regs(pvh);
    EXPECT_EQ(p.rbx, 0x6000u);
    EXPECT_EQ(p.rsi, 0u);
}

TEST(VcpuSetup, GdtMatchesTheSegments) {
    testing::TestMemory mem(1 << 20);
    ASSERT_TRUE(write_boot_gdt(mem.memory(), BootProtocol::kLinux64).ok());
    uint64_t gdt[5];
    std::memcpy(gdt, mem.host(boot_layout::kGdtAddr), sizeof gdt);
    EXPECT_EQ(gdt[0], 0u);
    EXPECT_EQ(gdt[2], 0x00af9b000000ffffull);  // selector 0x10: 64-bit code
    EXPECT_EQ(gdt[3], 0x00cf93000000ffffull);  // selector 0x18: data
    ASSERT_TRUE(write_boot_gdt(mem.memory(), BootProtocol::kPvh).ok());
    std::memcpy(gdt, mem.host(boot_layout::kGdtAddr), sizeof gdt);
    EXPECT_EQ(gdt[2], 0x00cf9b000000ffffull);  // 32-bit code
}

TEST(VcpuSetup, PageTablesIdentityMapFourGib) {
    testing::TestMemory mem(1 << 20);
    ASSERT_TRUE(write_identity_page_tables(mem.memory()).ok());
    auto q = [&](uint64_t addr) {
        uint64_t v;
        std::memcpy(&v, mem.host(addr), 8);
        return v;
    };
    // Walk a few addresses: 0, 1 MiB, the kernel at 16 MiB, the local APIC.
    for (uint64_t va : {0x0ull, 0x100000ull, 0x1000000ull, 0xfee00000ull, 0xffffffffull}) {
        uint64_t pml4e = q(boot_layout::kPml4Addr + ((va >> 39) & 511) * 8);
        ASSERT_TRUE(pml4e & 1);
        uint64_t pdpte = q((pml4e & ~0xfffull) + ((va >> 30) & 511) * 8);
        ASSERT_TRUE(pdpte & 1) << std::hex << va;
        uint64_t pde = q((pdpte & ~0xfffull) + ((va >> 21) & 511) * 8);
        ASSERT_TRUE(pde & 1) << std::hex << va;
        ASSERT_TRUE(pde & 0x80) << std::hex << va;
        EXPECT_EQ((pde & ~0x1fffffull) | (va & 0x1fffff), va) << std::hex << va;
    }
}

TEST(VcpuSetup, LintPinsAreExtIntAndNmi) {
    kvm_lapic_state lapic{};
    uint32_t masked = 1u << 16;
    std::memcpy(lapic.regs + kApicLvtLint0, &masked, 4);
    std::memcpy(lapic.regs + kApicLvtLint1, &masked, 4);
    set_lapic_lint(lapic);
    uint32_t lint0, lint1;
    std::memcpy(&lint0, lapic.regs + kApicLvtLint0, 4);
    std::memcpy(&lint1, lapic.regs + kApicLvtLint1, 4);
    EXPECT_EQ((lint0 >> 8) & 7, kApicDeliveryModeExtInt);
    EXPECT_EQ((lint1 >> 8) & 7, kApicDeliveryModeNmi);
    EXPECT_FALSE(lint0 & masked);
    EXPECT_FALSE(lint1 & masked);
}

TEST(VcpuSetup, FpuAndMsrs) {
    kvm_fpu f = boot_fpu();
    EXPECT_EQ(f.fcw, 0x37f);
    EXPECT_EQ(f.mxcsr, 0x1f80u);
    bool mtrr = false;
    for (const auto& m : boot_msrs()) {
        if (m.index == kMsrMtrrDefType) {
            mtrr = true;
            EXPECT_EQ(m.data, (1u << 11) | 6u);
        }
    }
    EXPECT_TRUE(mtrr);
}

}  // namespace
}  // namespace vireo::arch::x86
