// Virtio 1.2 constants shared by the transport and the devices: status bits, transport feature
// bits, device IDs, split-ring layouts (OASIS virtio v1.2, cs01).
#pragma once

#include <cstdint>

#include "base/endian.hpp"

namespace vireo::devices::virtio {

// Device status field (§2.1).
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusNeedsReset = 64;
inline constexpr uint8_t kStatusFailed = 128;

// Reserved feature bits (§6).
inline constexpr int kFeatureRingIndirectDesc = 28;  // VIRTIO_F_INDIRECT_DESC
inline constexpr int kFeatureRingEventIdx = 29;      // VIRTIO_F_EVENT_IDX
inline constexpr int kFeatureVersion1 = 32;          // VIRTIO_F_VERSION_1
inline constexpr int kFeatureAccessPlatform = 33;
inline constexpr int kFeatureRingPacked = 34;

constexpr uint64_t feature_bit(int bit) {
    return uint64_t{1} << bit;
}

// Device IDs (§5); the PCI device ID is 0x1040 + ID (§4.1.2).
inline constexpr uint16_t kDeviceIdNet = 1;
inline constexpr uint16_t kDeviceIdBlock = 2;
inline constexpr uint16_t kDeviceIdConsole = 3;
inline constexpr uint16_t kDeviceIdEntropy = 4;

// Split virtqueue (§2.7).
inline constexpr uint16_t kDescFlagNext = 1;
inline constexpr uint16_t kDescFlagWrite = 2;
inline constexpr uint16_t kDescFlagIndirect = 4;
inline constexpr uint16_t kAvailFlagNoInterrupt = 1;
inline constexpr uint16_t kUsedFlagNoNotify = 1;
inline constexpr uint32_t kMaxQueueSize = 32768;

struct [[gnu::packed]] VirtqDesc {
    Le<uint64_t> addr;
    Le<uint32_t> len;
    Le<uint16_t> flags;
    Le<uint16_t> next;
};
static_assert(sizeof(VirtqDesc) == 16);

struct [[gnu::packed]] VirtqUsedElem {
    Le<uint32_t> id;
    Le<uint32_t> len;
};
static_assert(sizeof(VirtqUsedElem) == 8);

// Ring sizes in bytes for a queue of `n` entries, with the event-index words (§2.7.6, §2.7.8).
constexpr uint64_t desc_table_size(uint32_t n) {
    return 16ull * n;
}
constexpr uint64_t avail_ring_size(uint32_t n) {
    return 6 + 2ull * n;
}
constexpr uint64_t used_ring_size(uint32_t n) {
    return 6 + 8ull * n;
}

// Alignment the driver must give each part (§2.7, table "Virtqueue Part Alignment").
inline constexpr uint64_t kDescAlign = 16;
inline constexpr uint64_t kAvailAlign = 2;
inline constexpr uint64_t kUsedAlign = 4;

// The used ring's event-index rule (§2.7.10): notify when new_idx has just passed event.
constexpr bool vring_need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx) {
    return static_cast<uint16_t>(new_idx - event - 1) < static_cast<uint16_t>(new_idx - old_idx);
}

}  // namespace vireo::devices::virtio
