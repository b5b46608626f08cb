// Virtio modern PCI transport: capabilities, common configuration, feature negotiation,
// device status and reset, notifications, ISR and interrupt routing.
#include "devices/virtio/pci_transport.hpp"

#include <cassert>
#include <cstring>

#include <fmt/format.h>

#include "base/endian.hpp"
#include "base/log.hpp"
#include "devices/pci/state_util.hpp"
#include "devices/virtio/virtio_spec.hpp"

namespace vireo::devices::virtio {

namespace {

using pci::BarInfo;
using pci::BarKind;

struct Field {
    VirtioPciDevice::Common reg;
    uint32_t size;
};
constexpr Field kFields[] = {
    {VirtioPciDevice::Common::kDeviceFeatureSelect, 4}, {VirtioPciDevice::Common::kDeviceFeature, 4},
    {VirtioPciDevice::Common::kDriverFeatureSelect, 4}, {VirtioPciDevice::Common::kDriverFeature, 4},
    {VirtioPciDevice::Common::kConfigMsixVector, 2},    {VirtioPciDevice::Common::kNumQueues, 2},
    {VirtioPciDevice::Common::kDeviceStatus, 1},        {VirtioPciDevice::Common::kConfigGeneration, 1},
    {VirtioPciDevice::Common::kQueueSelect, 2},         {VirtioPciDevice::Common::kQueueSize, 2},
    {VirtioPciDevice::Common::kQueueMsixVector, 2},     {VirtioPciDevice::Common::kQueueEnable, 2},
    {VirtioPciDevice::Common::kQueueNotifyOff, 2},      {VirtioPciDevice::Common::kQueueDesc, 8},
    {VirtioPciDevice::Common::kQueueDriver, 8},         {VirtioPciDevice::Common::kQueueDevice, 8},
};

constexpr uint32_t off(VirtioPciDevice::Common c) {
    return static_cast<uint32_t>(c);
}

pci::PciIdentity identity_for(const VirtioDevice& device) {
    // §4.1.2.1: device ID 0x1040 + type, revision >= 1, subsystem ID >= 0x40.
    return pci::PciIdentity{
        .vendor_id = VirtioPciDevice::kVendorId,
        .device_id = static_cast<uint16_t>(VirtioPciDevice::kDeviceIdBase + device.device_id()),
        .subsystem_vendor_id = VirtioPciDevice::kVendorId,
        .subsystem_id = VirtioPciDevice::kSubsystemId,
        .revision = 1,
        .class_code = device.pci_class(),
        .interrupt_pin = 1};
}

// struct virtio_pci_cap (§4.1.4): vndr, next, len, cfg_type, bar, id, padding[2], offset, length.
std::vector<uint8_t> virtio_cap(uint8_t type, uint32_t offset, uint32_t length, size_t total = 16) {
    std::vector<uint8_t> cap(total, 0);
    cap[0] = pci::kCapIdVendor;
    cap[2] = static_cast<uint8_t>(total);
    cap[3] = type;
    cap[4] = static_cast<uint8_t>(VirtioPciDevice::kBar);
    store_le<uint32_t>(&cap[8], offset);
    store_le<uint32_t>(&cap[12], length);
    return cap;
}

}  // namespace

VirtioPciDevice::VirtioPciDevice(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory)
    : pci::PciDevice(device->name(), identity_for(*device)),
      m_device(std::move(device)),
      m_memory(memory),
      m_num_queues(m_device->num_queues()),
      m_msix(m_config, static_cast<uint16_t>(m_num_queues + 1), kBar, kMsixTableOffset, kMsixPbaOffset),
      m_errors(m_device->name()) {
    assert(m_num_queues >= 1 && m_num_queues * kNotifyMultiplier <= kPageSize);
    assert(m_msix.table_size_bytes() <= kPageSize);
    for (uint16_t q = 0; q < m_num_queues; ++q)
        m_queues.emplace_back(m_device->queue_max_size(q));

    m_config.define_bar(kBar, BarInfo{BarKind::kMemory32, kBarSize, false});
    m_config.add_capability(virtio_cap(kCapCommon, kCommonOffset, kCommonSize));
    m_config.add_capability(virtio_cap(kCapIsr, kIsrOffset, 1));
    uint32_t device_size = m_device->config_size();
    assert(device_size <= kPageSize);
    if (device_size > 0) m_config.add_capability(virtio_cap(kCapDevice, kDeviceOffset, device_size));
    // struct virtio_pci_notify_cap adds notify_off_multiplier (§4.1.4.4).
    auto notify = virtio_cap(kCapNotify, kNotifyOffset, uint32_t{m_num_queues} * kNotifyMultiplier, 20);
    store_le<uint32_t>(&notify[16], kNotifyMultiplier);
    m_config.add_capability(notify);
    // struct virtio_pci_cfg_cap (§4.1.4.9): bar, offset, length and the data window are
    // writable; the device MUST present it even though Linux does not use it.
    auto pci_cfg = virtio_cap(kCapPciCfg, 0, 0, 20);
    std::vector<uint8_t> writable(20, 0);
    writable[4] = 0xFF;
    std::fill(writable.begin() + 8, writable.end(), 0xFF);
    m_pci_cfg_cap = m_config.add_capability(pci_cfg, writable);
    m_device->attach(*this);
}

VirtioPciDevice::~VirtioPciDevice() = default;

void VirtioPciDevice::set_msix_sink(std::shared_ptr<pci::MsixVectorSink> sink) {
    std::lock_guard lock(m_lock);
    m_msix.set_sink(std::move(sink));
}

void VirtioPciDevice::set_notify_hook(std::function<void(uint16_t)> hook) {
    std::lock_guard lock(m_lock);
    m_notify_hook = std::move(hook);
}

std::vector<VirtioPciDevice::NotifyRegion> VirtioPciDevice::notify_regions() const {
    std::vector<NotifyRegion> regions;
    for (uint16_t q = 0; q < m_num_queues; ++q)
        regions.push_back(NotifyRegion{q, kNotifyOffset + uint64_t{q} * kNotifyMultiplier, 2});
    return regions;
}

uint64_t VirtioPciDevice::offered_features() const {
    // Never offered: packed rings, ACCESS_PLATFORM (no IOMMU), NOTIFICATION_DATA, RING_RESET.
    uint64_t allowed =
        feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx) | 0xFFFFFFull;
    return (m_device->device_features() & allowed) | feature_bit(kFeatureVersion1);
}

bool VirtioPciDevice::driver_ok() const {
    return (m_status & kStatusDriverOk) != 0 && !m_needs_reset && !m_resetting;
}

size_t VirtioPciDevice::in_flight() const {
    std::lock_guard lock(m_lock);
    return m_device->in_flight();
}

uint64_t VirtioPciDevice::guest_errors() const {
    std::lock_guard lock(m_lock);
    return m_errors.count();
}

nlohmann::json VirtioPciDevice::counters() const {
    std::lock_guard lock(m_lock);
    nlohmann::json c = m_device->counters();
    c["notifications"] = m_notifications;
    c["interrupts"] = m_interrupts;
    c["resets"] = m_resets;
    c["guest_errors"] = m_errors.count();
    return c;
}

// ---- Configuration space: the PCI configuration access capability -------------------------

bool VirtioPciDevice::pci_cfg_window(uint32_t& offset, uint32_t& length) const {
    uint8_t bar = m_config.u8(m_pci_cfg_cap + 4u);
    offset = m_config.u32(m_pci_cfg_cap + 8u);
    length = m_config.u32(m_pci_cfg_cap + 12u);
    // §4.1.4.9.1: length 1, 2 or 4, offset aligned to it, inside our BAR.
    if (bar != kBar || (length != 1 && length != 2 && length != 4)) return false;
    if (offset % length != 0 || offset > kBarSize - length) return false;
    return true;
}

void VirtioPciDevice::config_read_locked(uint32_t offset, std::span<uint8_t> data) {
    uint32_t window = m_pci_cfg_cap + 16u;
    if (offset < window + 4 && offset + data.size() > window) {
        uint32_t bar_offset = 0;
        uint32_t length = 0;
        uint8_t value[4] = {0, 0, 0, 0};
        if (pci_cfg_window(bar_offset, length)) {
            bar_read_locked(kBar, bar_offset, std::span<uint8_t>(value, length));
        }
        for (uint32_t i = 0; i < 4; ++i)
            m_config.set_u8(window + i, value[i]);
    }
    m_config.read(offset, data);
}

void VirtioPciDevice::config_write_locked(uint32_t offset, std::span<const uint8_t> data) {
    PciDevice::config_write_locked(offset, data);
    m_msix.config_written(offset, data.size());
    uint32_t window = m_pci_cfg_cap + 16u;
    if (offset < window + 4 && offset + data.size() > window) {
        uint32_t bar_offset = 0;
        uint32_t length = 0;
        if (pci_cfg_window(bar_offset, length)) {
            uint8_t value[4];
            for (uint32_t i = 0; i < 4; ++i)
                value[i] = m_config.u8(window + i);
            bar_write_locked(kBar, bar_offset, std::span<const uint8_t>(value, length));
        } else {
            guest_error("PCI configuration access capability with a bad window");
        }
    }
}

// ---- BAR ---------------------------------------------------------------------------------

void VirtioPciDevice::bar_read_locked(int bar, uint64_t offset, std::span<uint8_t> data) {
    std::memset(data.data(), 0, data.size());
    if (bar != kBar) return;
    if (offset < kCommonOffset + kPageSize) {
        common_read(static_cast<uint32_t>(offset), data);
    } else if (offset >= kIsrOffset && offset < kIsrOffset + kPageSize) {
        // §4.1.4.5: reading the ISR returns and clears it, and de-asserts INTx.
        if (offset == kIsrOffset) {
            data[0] = m_isr;
            m_isr = 0;
            set_intx_locked(false);
        }
    } else if (offset >= kDeviceOffset && offset < kDeviceOffset + kPageSize) {
        uint64_t rel = offset - kDeviceOffset;
        if (rel < m_device->config_size()) {
            size_t n = std::min<uint64_t>(data.size(), m_device->config_size() - rel);
            m_device->read_config(static_cast<uint32_t>(rel), data.first(n));
        }
    } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + kPageSize) {
        m_msix.table_read(offset - kMsixTableOffset, data);
    } else if (offset >= kMsixPbaOffset && offset < kMsixPbaOffset + kPageSize) {
        m_msix.pba_read(offset - kMsixPbaOffset, data);
    }
}

void VirtioPciDevice::bar_write_locked(int bar, uint64_t offset, std::span<const uint8_t> data) {
    if (bar != kBar) return;
    if (offset < kCommonOffset + kPageSize) {
        common_write(static_cast<uint32_t>(offset), data);
    } else if (offset >= kDeviceOffset && offset < kDeviceOffset + kPageSize) {
        uint64_t rel = offset - kDeviceOffset;
        if (rel < m_device->config_size()) {
            size_t n = std::min<uint64_t>(data.size(), m_device->config_size() - rel);
            m_device->write_config(static_cast<uint32_t>(rel), data.first(n));
        }
    } else if (offset >= kNotifyOffset && offset < kNotifyOffset + kPageSize) {
        uint64_t rel = offset - kNotifyOffset;
        // Without VIRTIO_F_NOTIFICATION_DATA the address identifies the queue (§4.1.5.2).
        if (rel % kNotifyMultiplier != 0 || rel / kNotifyMultiplier >= m_num_queues) {
            guest_error("notify write outside the queues' registers");
            return;
        }
        auto q = static_cast<uint16_t>(rel / kNotifyMultiplier);
        if (m_notify_hook) {
            m_notify_hook(q);
        } else {
            handle_notify_locked(q);
        }
    } else if (offset >= kMsixTableOffset && offset < kMsixTableOffset + kPageSize) {
        m_msix.table_write(offset - kMsixTableOffset, data);
    } else if (offset >= kIsrOffset && offset < kIsrOffset + kPageSize) {
        guest_error("write to the read-only ISR status");
    }
}

// ---- Common configuration ------------------------------------------------------------------

Virtqueue* VirtioPciDevice::selected_queue() {
    return m_queue_select < m_num_queues ? &m_queues[m_queue_select] : nullptr;
}

void VirtioPciDevice::common_read(uint32_t offset, std::span<uint8_t> data) {
    uint8_t image[kCommonSize] = {};
    uint64_t features = offered_features();
    store_le<uint32_t>(&image[off(Common::kDeviceFeatureSelect)], m_device_feature_select);
    uint32_t word =
        m_device_feature_select < 2 ? static_cast<uint32_t>(features >> (32 * m_device_feature_select)) : 0;
    store_le<uint32_t>(&image[off(Common::kDeviceFeature)], word);
    store_le<uint32_t>(&image[off(Common::kDriverFeatureSelect)], m_driver_feature_select);
    uint32_t driver_word = m_driver_feature_select < 2
                               ? static_cast<uint32_t>(m_driver_features >> (32 * m_driver_feature_select))
                               : 0;
    store_le<uint32_t>(&image[off(Common::kDriverFeature)], driver_word);
    store_le<uint16_t>(&image[off(Common::kConfigMsixVector)], m_config_vector);
    store_le<uint16_t>(&image[off(Common::kNumQueues)], m_num_queues);
    image[off(Common::kDeviceStatus)] =
        static_cast<uint8_t>(m_status | (m_needs_reset ? kStatusNeedsReset : 0));
    image[off(Common::kConfigGeneration)] = m_config_generation;
    store_le<uint16_t>(&image[off(Common::kQueueSelect)], m_queue_select);
    if (Virtqueue* q = selected_queue()) {
        store_le<uint16_t>(&image[off(Common::kQueueSize)], q->size());
        store_le<uint16_t>(&image[off(Common::kQueueMsixVector)], q->msix_vector());
        store_le<uint16_t>(&image[off(Common::kQueueEnable)], q->enabled() ? 1 : 0);
        store_le<uint16_t>(&image[off(Common::kQueueNotifyOff)], m_queue_select);
        store_le<uint64_t>(&image[off(Common::kQueueDesc)], q->desc_addr());
        store_le<uint64_t>(&image[off(Common::kQueueDriver)], q->driver_addr());
        store_le<uint64_t>(&image[off(Common::kQueueDevice)], q->device_addr());
    } else {
        // §4.1.4.3.1: a queue that does not exist reads as size 0.
        store_le<uint16_t>(&image[off(Common::kQueueMsixVector)], Virtqueue::kNoVector);
    }
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = uint64_t{offset} + i;
        data[i] = at < kCommonSize ? image[at] : 0;
    }
}

void VirtioPciDevice::common_write(uint32_t offset, std::span<const uint8_t> data) {
    // Overlay the written bytes on the current register image, then apply every field the
    // write touched (in address order), so any access width lands as a driver meant it; a
    // 64-bit address written as two dwords updates one half at a time.
    uint8_t image[kCommonSize];
    common_read(0, image);
    uint32_t end = offset + static_cast<uint32_t>(data.size());
    for (size_t i = 0; i < data.size(); ++i) {
        if (offset + i < kCommonSize) image[offset + i] = data[i];
    }
    for (const Field& f : kFields) {
        uint32_t at = off(f.reg);
        if (at >= end || at + f.size <= offset) continue;
        uint64_t value = 0;
        std::memcpy(&value, &image[at], f.size);
        write_common_field(f.reg, from_le(value));
    }
}

void VirtioPciDevice::write_common_field(Common field, uint64_t value) {
    if (m_resetting && field != Common::kDeviceStatus) {
        guest_error("register write while a reset is in progress");
        return;
    }
    bool features_locked = (m_status & kStatusFeaturesOk) != 0;
    bool live = (m_status & kStatusDriverOk) != 0;
    switch (field) {
        case Common::kDeviceFeatureSelect:
            m_device_feature_select = static_cast<uint32_t>(value);
            break;
        case Common::kDriverFeatureSelect:
            m_driver_feature_select = static_cast<uint32_t>(value);
            break;
        case Common::kDriverFeature: {
            if (features_locked) {
                guest_error("driver features written after FEATURES_OK");
                break;
            }
            if (m_driver_feature_select >= 2) {
                if (value != 0) guest_error("driver feature word past bit 63");
                break;
            }
            unsigned shift = 32 * m_driver_feature_select;
            m_driver_features = (m_driver_features & ~(uint64_t{0xFFFFFFFF} << shift)) | (value << shift);
            break;
        }
        case Common::kConfigMsixVector: {
            auto v = static_cast<uint16_t>(value);
            // §4.1.5.1.2: a vector that cannot be mapped reads back as NO_VECTOR.
            m_config_vector = v < m_msix.vectors() ? v : Virtqueue::kNoVector;
            break;
        }
        case Common::kDeviceStatus:
            write_status(static_cast<uint8_t>(value));
            break;
        case Common::kQueueSelect:
            m_queue_select = static_cast<uint16_t>(value);
            break;
        case Common::kQueueSize:
        case Common::kQueueMsixVector:
        case Common::kQueueEnable:
        case Common::kQueueDesc:
        case Common::kQueueDriver:
        case Common::kQueueDevice: {
            Virtqueue* q = selected_queue();
            if (q == nullptr) {
                guest_error("queue register written with queue_select past num_queues");
                break;
            }
            if (field == Common::kQueueMsixVector) {
                auto v = static_cast<uint16_t>(value);
                q->set_msix_vector(v < m_msix.vectors() ? v : Virtqueue::kNoVector);
                break;
            }
            // §4.1.4.3.2: the rest is configured before the queue is enabled and before
            // DRIVER_OK.
            if (q->enabled() || live) {
                if (field != Common::kQueueEnable || value != 1)
                    guest_error("queue configuration written after the queue was enabled");
                break;
            }
            if (field == Common::kQueueSize) {
                if (!q->set_size(static_cast<uint16_t>(value)))
                    guest_error("queue size not a power of two up to the maximum",
                                fmt::format("{} (max {})", value, q->max_size()));
            } else if (field == Common::kQueueEnable) {
                if (value != 1) {
                    guest_error("queue_enable written with a value other than 1");
                    break;
                }
                q->set_enabled(true);
            } else if (field == Common::kQueueDesc) {
                q->set_desc_addr(value);
            } else if (field == Common::kQueueDriver) {
                q->set_driver_addr(value);
            } else {
                q->set_device_addr(value);
            }
            break;
        }
        case Common::kDeviceFeature:
        case Common::kNumQueues:
        case Common::kConfigGeneration:
        case Common::kQueueNotifyOff:
            guest_error("write to a read-only common configuration register");
            break;
    }
}

void VirtioPciDevice::write_status(uint8_t status) {
    if (status == 0) {
        begin_reset_locked();
        return;
    }
    if (m_resetting) {
        guest_error("device status written before the reset completed");
        return;
    }
    status = static_cast<uint8_t>(status & ~kStatusNeedsReset);  // the device's bit, not the driver's
    // §2.1.2: the driver never clears a bit except by reset.
    if ((status & m_status) != m_status) {
        guest_error("device status bits cleared without a reset");
        return;
    }
    uint8_t added = static_cast<uint8_t>(status & ~m_status);
    if (added & kStatusFeaturesOk) {
        // §3.1.1 step 5-6: accept the subset only if it is one we offered, with VERSION_1
        // (this is a modern-only device, §4.1.2.3) and the device can work with it.
        uint64_t offered = offered_features();
        Status accepted{};
        if ((m_driver_features & ~offered) != 0) {
            accepted = make_error("driver accepted features 0x{:x} that were not offered",
                                  m_driver_features & ~offered);
        } else if ((m_driver_features & feature_bit(kFeatureVersion1)) == 0) {
            accepted = make_error("driver did not accept VIRTIO_F_VERSION_1");
        } else {
            accepted = m_device->check_features(m_driver_features);
        }
        if (!accepted.ok()) {
            guest_error("feature negotiation refused", accepted.error().message());
            status = static_cast<uint8_t>(status & ~kStatusFeaturesOk);
            added = static_cast<uint8_t>(added & ~kStatusFeaturesOk);
        }
    }
    if ((added & kStatusDriverOk) && (status & kStatusFeaturesOk) == 0) {
        guest_error("DRIVER_OK without FEATURES_OK");
        set_needs_reset_locked();
        return;
    }
    m_status = status;
    if (added & kStatusDriverOk) activate_locked();
}

void VirtioPciDevice::activate_locked() {
    for (uint16_t i = 0; i < m_num_queues; ++i) {
        Virtqueue& q = m_queues[i];
        if (!q.enabled()) continue;
        if (auto s = q.activate(m_memory, m_driver_features); !s.ok()) {
            queue_error(i, s.error());
            return;
        }
    }
    if (auto s = m_device->activate(); !s.ok()) {
        log::get("virtio").error("{}: {}", m_device->name(), s.error().message());
        set_needs_reset_locked();
        return;
    }
    // Buffers made available before DRIVER_OK (console and net fill receive queues early)
    // are looked at now.
    for (uint16_t i = 0; i < m_num_queues; ++i) {
        if (m_queues[i].ready()) kick_locked(i);
    }
}

void VirtioPciDevice::begin_reset_locked() {
    ++m_resets;
    if (m_resetting) return;
    m_resetting = true;
    // Queues stop at once: nothing is popped or published from here on. In-flight requests
    // complete into the void; the status reads non-zero until they are gone (§4.1.4.3.2: the
    // driver waits for 0).
    for (auto& q : m_queues)
        q.reset();
    if (m_device->reset()) finish_reset_locked();
}

void VirtioPciDevice::reset_complete() {
    if (m_resetting) finish_reset_locked();
}

void VirtioPciDevice::finish_reset_locked() {
    m_resetting = false;
    m_status = 0;
    m_needs_reset = false;
    m_device_feature_select = 0;
    m_driver_feature_select = 0;
    m_driver_features = 0;
    m_config_vector = Virtqueue::kNoVector;
    m_queue_select = 0;
    m_isr = 0;
    set_intx_locked(false);
    for (auto& q : m_queues)
        q.reset();
}

// ---- Notifications and interrupts ----------------------------------------------------------

void VirtioPciDevice::notify_queue(uint16_t queue) {
    std::lock_guard lock(m_lock);
    handle_notify_locked(queue);
}

void VirtioPciDevice::kick_locked(uint16_t queue) {
    if (m_notify_hook) {
        m_notify_hook(queue);
    } else {
        handle_notify_locked(queue);
    }
}

void VirtioPciDevice::handle_notify_locked(uint16_t queue) {
    ++m_notifications;
    // Notifications before DRIVER_OK, after NEEDS_RESET or for a queue that is not live are
    // dropped: the device looks at every queue again when it goes live.
    if (queue >= m_num_queues || !driver_ok() || !m_queues[queue].ready()) return;
    m_device->queue_notify(queue);
}

void VirtioPciDevice::notify_used(uint16_t queue) {
    if (queue >= m_num_queues || !m_queues[queue].needs_notification()) return;
    signal_queue_locked(queue);
}

void VirtioPciDevice::signal_queue_locked(uint16_t queue) {
    ++m_interrupts;
    if (m_msix.enabled()) {
        uint16_t vector = m_queues[queue].msix_vector();
        if (vector != Virtqueue::kNoVector) m_msix.notify(vector);
        return;
    }
    m_isr |= kIsrQueue;
    set_intx_locked(true);
}

void VirtioPciDevice::signal_config_locked() {
    if ((m_status & kStatusDriverOk) == 0) return;
    ++m_interrupts;
    if (m_msix.enabled()) {
        if (m_config_vector != Virtqueue::kNoVector) m_msix.notify(m_config_vector);
        return;
    }
    m_isr |= kIsrConfig;
    set_intx_locked(true);
}

void VirtioPciDevice::config_changed() {
    ++m_config_generation;
    signal_config_locked();
}

void VirtioPciDevice::set_needs_reset_locked() {
    if (m_needs_reset) return;
    m_needs_reset = true;
    // §2.1.2: after DRIVER_OK, setting DEVICE_NEEDS_RESET comes with a config notification.
    signal_config_locked();
}

void VirtioPciDevice::queue_error(uint16_t queue, const Error& error) {
    m_errors.report("malformed virtqueue", fmt::format("queue {}: {}", queue, error.message()));
    set_needs_reset_locked();
}

void VirtioPciDevice::guest_error(std::string_view kind, std::string_view detail) {
    m_errors.report(kind, detail);
}

// ---- Snapshot --------------------------------------------------------------------------------

nlohmann::json VirtioPciDevice::save_state() const {
    std::lock_guard lock(m_lock);
    nlohmann::json queues = nlohmann::json::array();
    for (const auto& q : m_queues)
        queues.push_back(q.save_state());
    return nlohmann::json{
        {"version", 1},
        {"device_id", m_device->device_id()},
        {"pci", save_pci_state_locked()},
        {"msix", m_msix.save_state()},
        {"status", m_status},
        {"needs_reset", m_needs_reset},
        {"device_feature_select", m_device_feature_select},
        {"driver_feature_select", m_driver_feature_select},
        {"driver_features", m_driver_features},
        {"config_vector", m_config_vector},
        {"queue_select", m_queue_select},
        {"isr", m_isr},
        {"config_generation", m_config_generation},
        {"queues", queues},
        {"device", m_device->save_state()},
    };
}

Status VirtioPciDevice::restore_state(const nlohmann::json& state) {
    std::lock_guard lock(m_lock);
    std::string what = m_device->name();
    pci::StateFields f(state, what, 1);
    uint64_t device_id = f.number("device_id", 0xFFFF);
    const auto& pci_json = f.object("pci");
    const auto& msix_json = f.object("msix");
    auto status = static_cast<uint8_t>(f.number("status", 0xFF));
    bool needs_reset = f.boolean("needs_reset");
    auto dfs = static_cast<uint32_t>(f.number("device_feature_select", 0xFFFFFFFF));
    auto drfs = static_cast<uint32_t>(f.number("driver_feature_select", 0xFFFFFFFF));
    uint64_t driver_features = f.number("driver_features", ~uint64_t{0});
    auto config_vector = static_cast<uint16_t>(f.number("config_vector", 0xFFFF));
    auto queue_select = static_cast<uint16_t>(f.number("queue_select", 0xFFFF));
    auto isr = static_cast<uint8_t>(f.number("isr", 3));
    auto generation = static_cast<uint8_t>(f.number("config_generation", 0xFF));
    const auto& queues_json = f.array("queues", m_num_queues);
    const auto& device_json = f.object("device");
    VIREO_TRY(f.status());
    if (device_id != m_device->device_id())
        return make_error("{} snapshot: device type {} does not match {}", what, device_id,
                          m_device->device_id());
    if ((driver_features & ~offered_features()) != 0)
        return make_error("{} snapshot: negotiated features 0x{:x} include ones this device does not offer",
                          what, driver_features);
    VIREO_ASSIGN_OR_RETURN(auto pci_state, parse_pci_state(pci_json, what));

    // Validate every queue on scratch copies before touching the live ones.
    std::vector<Virtqueue> queues;
    for (uint16_t i = 0; i < m_num_queues; ++i) {
        queues.emplace_back(m_queues[i].max_size());
        VIREO_TRY_CTX(queues.back().restore_state(queues_json[i]), fmt::format("{} queue {}", what, i));
    }

    // Apply. The MSI-X table and the device's own state validate before they change anything,
    // so they go first; MSI-X then re-reads its enable bits from the restored config space.
    VIREO_TRY(m_msix.restore_state(msix_json));
    VIREO_TRY(m_device->restore_state(device_json));
    apply_pci_state_locked(pci_state);
    m_msix.sync_from_config();
    m_status = status;
    m_needs_reset = needs_reset;
    m_resetting = false;
    m_device_feature_select = dfs;
    m_driver_feature_select = drfs;
    m_driver_features = driver_features;
    m_config_vector = config_vector;
    m_queue_select = queue_select;
    m_isr = isr;
    m_config_generation = generation;
    m_queues = std::move(queues);
    if (m_status & kStatusDriverOk) {
        for (uint16_t i = 0; i < m_num_queues; ++i) {
            Virtqueue& q = m_queues[i];
            if (!q.enabled()) continue;
            if (auto s = q.activate(m_memory, m_driver_features); !s.ok())
                return make_error("{} snapshot: queue {}: {}", what, i, s.error().message());
        }
        if (!m_needs_reset) {
            VIREO_TRY_CTX(m_device->activate(), what);
            for (uint16_t i = 0; i < m_num_queues; ++i) {
                if (m_queues[i].ready()) kick_locked(i);
            }
        }
    }
    return {};
}

}  // namespace vireo::devices::virtio
