// The GSI routing table the VMM gives KVM: the default irqchip routes plus MSI routes.
#include "vmm/kvm_irq.hpp"

#include <gtest/gtest.h>

namespace vireo::vmm {
namespace {

TEST(IrqRouting, DefaultTableMatchesKvm) {
    kvm::Vm vm(UniqueFd(), 0);  // no KVM needed to build the table
    IrqRouting routing(vm);
    auto table = routing.table();
    // 16 ISA IRQs to IOAPIC + PIC, 8 more IOAPIC pins.
    ASSERT_EQ(table.size(), 16u * 2 + 8);
    int pic = 0, ioapic = 0;
    for (const auto& e : table) {
        ASSERT_EQ(e.type, static_cast<uint32_t>(KVM_IRQ_ROUTING_IRQCHIP));
        if (e.u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
            EXPECT_EQ(e.u.irqchip.pin, e.gsi);
            ++ioapic;
        } else {
            EXPECT_EQ(e.u.irqchip.irqchip, e.gsi < 8 ? static_cast<uint32_t>(KVM_IRQCHIP_PIC_MASTER)
                                                     : static_cast<uint32_t>(KVM_IRQCHIP_PIC_SLAVE));
            EXPECT_EQ(e.u.irqchip.pin, e.gsi % 8);
            ++pic;
        }
    }
    EXPECT_EQ(pic, 16);
    EXPECT_EQ(ioapic, 24);
}

TEST(IrqRouting, MsiRouteThatKvmRefusesIsNotKept) {
    kvm::Vm vm(UniqueFd(), 0);  // an invalid fd: every commit fails
    IrqRouting routing(vm);
    EXPECT_FALSE(routing.add_msi_route(0xfee00000, 0x4021).ok());
    EXPECT_EQ(routing.table().size(), 40u);
    EXPECT_FALSE(routing.update_msi_route(24, 0, 0).ok());
    EXPECT_FALSE(routing.remove_msi_route(24).ok());
}

}  // namespace
}  // namespace vireo::vmm
