// PCI configuration space register map: type 0 header offsets, command/status bits, capability
// IDs and BAR encoding (PCI Local Bus Specification 3.0 §6, PCI Express Base 4.0 §7.5).
#pragma once

#include <cstdint>

namespace vireo::devices::pci {

// Type 0 header (PCI 3.0 §6.1, Figure 6-1).
enum class Reg : uint16_t {
    kVendorId = 0x00,       // 16 bits, read-only
    kDeviceId = 0x02,       // 16 bits, read-only
    kCommand = 0x04,        // 16 bits
    kStatus = 0x06,         // 16 bits, error bits write-1-to-clear
    kRevisionId = 0x08,     // 8 bits
    kClassProgIf = 0x09,    // 8 bits: programming interface
    kSubclass = 0x0A,       // 8 bits
    kClassCode = 0x0B,      // 8 bits: base class
    kCacheLineSize = 0x0C,  // 8 bits, read/write, no effect
    kLatencyTimer = 0x0D,   // 8 bits, read/write, no effect
    kHeaderType = 0x0E,     // 8 bits: 0 = type 0, bit 7 = multi-function
    kBist = 0x0F,           // 8 bits: 0 = no BIST
    kBar0 = 0x10,           // six 32-bit BARs, 0x10..0x27
    kCardbusCis = 0x28,
    kSubsystemVendorId = 0x2C,  // 16 bits
    kSubsystemId = 0x2E,        // 16 bits
    kExpansionRom = 0x30,       // 32 bits: not implemented, reads 0
    kCapabilitiesPointer = 0x34,
    kInterruptLine = 0x3C,  // 8 bits, read/write: the IRQ firmware (here: the VMM) routed INTx to
    kInterruptPin = 0x3D,   // 8 bits: 1 = INTA# .. 4 = INTD#, 0 = none
    kMinGrant = 0x3E,
    kMaxLatency = 0x3F,
};

constexpr uint16_t reg(Reg r) {
    return static_cast<uint16_t>(r);
}

inline constexpr uint16_t kHeaderSize = 0x40;            // standard header; capabilities follow
inline constexpr uint16_t kConfigSpaceSize = 0x100;      // conventional PCI
inline constexpr uint16_t kExtConfigSpaceSize = 0x1000;  // PCI Express (reachable through ECAM)
inline constexpr int kNumBars = 6;

// Command register bits (PCI 3.0 §6.2.2).
inline constexpr uint16_t kCommandIoSpace = 1u << 0;
inline constexpr uint16_t kCommandMemorySpace = 1u << 1;
inline constexpr uint16_t kCommandBusMaster = 1u << 2;
inline constexpr uint16_t kCommandParityErrorResponse = 1u << 6;
inline constexpr uint16_t kCommandSerrEnable = 1u << 8;
inline constexpr uint16_t kCommandInterruptDisable = 1u << 10;
// The bits a guest may change; the rest are hard-wired to 0 (no special cycles, no VGA snoop...).
inline constexpr uint16_t kCommandWritable = kCommandIoSpace | kCommandMemorySpace | kCommandBusMaster |
                                             kCommandParityErrorResponse | kCommandSerrEnable |
                                             kCommandInterruptDisable;

// Status register bits (PCI 3.0 §6.2.3).
inline constexpr uint16_t kStatusInterrupt = 1u << 3;         // read-only: INTx asserted
inline constexpr uint16_t kStatusCapabilitiesList = 1u << 4;  // read-only
// Error bits software clears by writing 1 (master data parity error, signalled/received
// target abort, received master abort, signalled system error, detected parity error).
inline constexpr uint16_t kStatusWrite1ToClear =
    (1u << 8) | (1u << 11) | (1u << 12) | (1u << 13) | (1u << 14) | (1u << 15);

inline constexpr uint8_t kHeaderTypeMultiFunction = 0x80;

// BAR encoding (PCI 3.0 §6.2.5.1).
inline constexpr uint32_t kBarIoSpace = 1u << 0;
inline constexpr uint32_t kBarMem64 = 2u << 1;  // type field bits 2:1 = 10b
inline constexpr uint32_t kBarPrefetchable = 1u << 3;
inline constexpr uint32_t kBarMemAddressMask = ~uint32_t{0xF};
inline constexpr uint32_t kBarIoAddressMask = ~uint32_t{0x3};

// Capability IDs (PCI Code and ID Assignment Specification §2).
inline constexpr uint8_t kCapIdMsi = 0x05;
inline constexpr uint8_t kCapIdVendor = 0x09;
inline constexpr uint8_t kCapIdPcie = 0x10;
inline constexpr uint8_t kCapIdMsix = 0x11;

// Class codes used here (PCI Code and ID Assignment Specification §1).
inline constexpr uint32_t kClassHostBridge = 0x060000;
inline constexpr uint32_t kClassMassStorageOther = 0x018000;
inline constexpr uint32_t kClassNetworkEthernet = 0x020000;
inline constexpr uint32_t kClassCommunicationOther = 0x078000;
inline constexpr uint32_t kClassOther = 0xFF0000;

}  // namespace vireo::devices::pci
