// VirtioPciDevice: the virtio 1.2 modern PCI transport (§4.1): a PCI function with the common,
// notify, ISR, device and PCI-configuration-access capabilities, MSI-X for the config change
// and each queue, INTx through the ISR as fallback; it carries one VirtioDevice.
//
// BAR 0 (32-bit memory, 32 KiB), one page per structure:
//   0x0000 common configuration   0x1000 ISR status     0x2000 device configuration
//   0x3000 notifications (queue q at 0x3000 + 4q)      0x4000 MSI-X table   0x5000 MSI-X PBA
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/guest_memory.hpp"
#include "devices/pci/guest_errors.hpp"
#include "devices/pci/msix.hpp"
#include "devices/pci/pci_device.hpp"
#include "devices/snapshot.hpp"
#include "devices/virtio/virtio_device.hpp"

namespace vireo::devices::virtio {

class VirtioPciDevice final : public pci::PciDevice, public VirtioTransport, public StatefulDevice {
  public:
    static constexpr uint16_t kVendorId = 0x1AF4;
    static constexpr uint16_t kDeviceIdBase = 0x1040;
    static constexpr uint16_t kSubsystemId = 0x1100;
    static constexpr int kBar = 0;
    static constexpr uint64_t kBarSize = 0x8000;
    static constexpr uint32_t kCommonOffset = 0x0000;
    static constexpr uint32_t kCommonSize = 0x38;
    static constexpr uint32_t kIsrOffset = 0x1000;
    static constexpr uint32_t kDeviceOffset = 0x2000;
    static constexpr uint32_t kNotifyOffset = 0x3000;
    static constexpr uint32_t kNotifyMultiplier = 4;
    static constexpr uint32_t kMsixTableOffset = 0x4000;
    static constexpr uint32_t kMsixPbaOffset = 0x5000;
    static constexpr uint32_t kPageSize = 0x1000;

    // Common configuration registers (§4.1.4.3).
    enum class Common : uint32_t {
        kDeviceFeatureSelect = 0x00,  // le32 RW
        kDeviceFeature = 0x04,        // le32 RO: 32 feature bits selected by the above
        kDriverFeatureSelect = 0x08,  // le32 RW
        kDriverFeature = 0x0C,        // le32 RW
        kConfigMsixVector = 0x10,     // le16 RW
        kNumQueues = 0x12,            // le16 RO
        kDeviceStatus = 0x14,         // u8 RW
        kConfigGeneration = 0x15,     // u8 RO
        kQueueSelect = 0x16,          // le16 RW
        kQueueSize = 0x18,            // le16 RW
        kQueueMsixVector = 0x1A,      // le16 RW
        kQueueEnable = 0x1C,          // le16 RW
        kQueueNotifyOff = 0x1E,       // le16 RO
        kQueueDesc = 0x20,            // le64 RW
        kQueueDriver = 0x28,          // le64 RW
        kQueueDevice = 0x30,          // le64 RW
    };
    // Capability config types (§4.1.4).
    static constexpr uint8_t kCapCommon = 1;
    static constexpr uint8_t kCapNotify = 2;
    static constexpr uint8_t kCapIsr = 3;
    static constexpr uint8_t kCapDevice = 4;
    static constexpr uint8_t kCapPciCfg = 5;
    static constexpr uint8_t kIsrQueue = 1;
    static constexpr uint8_t kIsrConfig = 2;

    VirtioPciDevice(std::unique_ptr<VirtioDevice> device, const GuestMemory& memory);
    ~VirtioPciDevice() override;

    VirtioDevice& device() { return *m_device; }
    void set_msix_sink(std::shared_ptr<pci::MsixVectorSink> sink);

    // Queue notifications. notify_queue() runs the device's queue handling; the VMM's I/O
    // thread calls it when a queue's ioeventfd fires. Notify writes that reach the BAR itself
    // (no ioeventfd), and the kicks at DRIVER_OK and after restore, go to the hook when one is
    // set (the VMM's hook signals the queue's eventfd, moving the work to the I/O thread);
    // without a hook they run inline (tests).
    void notify_queue(uint16_t queue);
    void set_notify_hook(std::function<void(uint16_t queue)> hook);

    // Where each queue's notify register is inside the BAR (for ioeventfd registration).
    struct NotifyRegion {
        uint16_t queue;
        uint64_t bar_offset;
        uint32_t length;
    };
    std::vector<NotifyRegion> notify_regions() const;
    uint16_t num_queues() const { return m_num_queues; }

    // Requests the device has in flight (a snapshot is taken when this is 0).
    size_t in_flight() const;
    uint64_t guest_errors() const;
    // Transport and device counters.
    nlohmann::json counters() const;

    // StatefulDevice: registers, configuration space, MSI-X, queue indexes and device state.
    // Save only while nothing is in flight (the VMM drains first); restore re-activates the
    // queues and kicks them.
    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;

    // VirtioTransport (lock held).
    std::mutex& lock() override { return m_lock; }
    const GuestMemory& memory() const override { return m_memory; }
    Virtqueue& queue(uint16_t index) override { return m_queues[index]; }
    uint64_t negotiated_features() const override { return m_driver_features; }
    bool driver_ok() const override;
    void notify_used(uint16_t queue) override;
    void config_changed() override;
    void queue_error(uint16_t queue, const Error& error) override;
    void guest_error(std::string_view kind, std::string_view detail = {}) override;
    void reset_complete() override;

  protected:
    void config_read_locked(uint32_t offset, std::span<uint8_t> data) override;
    void config_write_locked(uint32_t offset, std::span<const uint8_t> data) override;
    void bar_read_locked(int bar, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write_locked(int bar, uint64_t offset, std::span<const uint8_t> data) override;

  private:
    uint64_t offered_features() const;
    void common_read(uint32_t offset, std::span<uint8_t> data);
    void common_write(uint32_t offset, std::span<const uint8_t> data);
    void write_common_field(Common field, uint64_t value);
    void write_status(uint8_t status);
    void activate_locked();
    void begin_reset_locked();
    void finish_reset_locked();
    void kick_locked(uint16_t queue);
    void handle_notify_locked(uint16_t queue);
    void signal_queue_locked(uint16_t queue);
    void signal_config_locked();
    void set_needs_reset_locked();
    Virtqueue* selected_queue();
    bool pci_cfg_window(uint32_t& offset, uint32_t& length) const;

    std::unique_ptr<VirtioDevice> m_device;
    const GuestMemory& m_memory;
    uint16_t m_num_queues;
    std::vector<Virtqueue> m_queues;
    pci::Msix m_msix;
    uint16_t m_pci_cfg_cap = 0;
    std::function<void(uint16_t)> m_notify_hook;
    pci::GuestErrorCounter m_errors;

    // Registers.
    uint8_t m_status = 0;
    bool m_needs_reset = false;
    bool m_resetting = false;  // status 0 written; waiting for in-flight requests
    uint32_t m_device_feature_select = 0;
    uint32_t m_driver_feature_select = 0;
    uint64_t m_driver_features = 0;
    uint16_t m_config_vector = Virtqueue::kNoVector;
    uint16_t m_queue_select = 0;
    uint8_t m_isr = 0;
    uint8_t m_config_generation = 0;

    // Counters.
    uint64_t m_notifications = 0;
    uint64_t m_interrupts = 0;
    uint64_t m_resets = 0;
};

}  // namespace vireo::devices::virtio
