// Console device: one port, output sink, bounded input.
#include "devices/virtio/console.hpp"

#include <algorithm>
#include <cstring>

#include "devices/pci/pci_regs.hpp"
#include "devices/pci/state_util.hpp"

namespace vireo::devices::virtio {

VirtioConsole::VirtioConsole(std::function<void(std::span<const uint8_t>)> output)
    : m_output(std::move(output)) {}

uint32_t VirtioConsole::pci_class() const {
    return pci::kClassCommunicationOther;
}

uint64_t VirtioConsole::device_features() const {
    return feature_bit(kFeatureEmergWrite) | feature_bit(kFeatureRingIndirectDesc) |
           feature_bit(kFeatureRingEventIdx);
}

void VirtioConsole::read_config(uint32_t offset, std::span<uint8_t> data) {
    Config c{};
    c.max_nr_ports = 1;
    const auto* bytes = reinterpret_cast<const uint8_t*>(&c);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = offset + i < sizeof c ? bytes[offset + i] : 0;
}

void VirtioConsole::write_config(uint32_t offset, std::span<const uint8_t> data) {
    // §5.3.4: a write to emerg_wr outputs its low byte on port 0, even before DRIVER_OK.
    if (offset == offsetof(Config, emerg_wr) && !data.empty()) {
        if ((m_transport->negotiated_features() & feature_bit(kFeatureEmergWrite)) == 0) {
            m_transport->guest_error("emergency write without VIRTIO_CONSOLE_F_EMERG_WRITE");
        }
        uint8_t c = data[0];
        m_output({&c, 1});
        ++m_tx_bytes;
        return;
    }
    m_transport->guest_error("write to read-only console configuration");
}

void VirtioConsole::queue_notify(uint16_t queue) {
    if (queue == kTxQueue) process_tx();
    if (queue == kRxQueue) process_rx();
}

void VirtioConsole::process_tx() {
    Virtqueue& q = m_transport->queue(kTxQueue);
    DescriptorChain chain;
    bool used = false;
    for (;;) {
        for (;;) {
            auto popped = q.pop(chain);
            if (!popped.ok()) {
                m_transport->queue_error(kTxQueue, popped.error());
                return;
            }
            if (!*popped) break;
            ++m_requests;
            for (const iovec& v : chain.readable()) {
                m_output({static_cast<const uint8_t*>(v.iov_base), v.iov_len});
                m_tx_bytes += v.iov_len;
            }
            if (chain.writable_bytes() != 0) {
                ++m_errors;
                m_transport->guest_error("console output chain with device-writable buffers");
            }
            q.add_used(chain.head(), 0);
            used = true;
        }
        if (!q.enable_notification()) break;
    }
    if (used) m_transport->notify_used(kTxQueue);
}

void VirtioConsole::process_rx() {
    Virtqueue& q = m_transport->queue(kRxQueue);
    if (!q.ready()) return;
    DescriptorChain chain;
    bool used = false;
    while (!m_input.empty()) {
        auto popped = q.pop(chain);
        if (!popped.ok()) {
            m_transport->queue_error(kRxQueue, popped.error());
            return;
        }
        if (!*popped) {
            // Wait for buffers: make sure the driver tells us when it adds one.
            if (q.enable_notification()) continue;
            break;
        }
        size_t n = std::min<uint64_t>(chain.writable_bytes(), m_input.size());
        m_scratch.assign(m_input.begin(), m_input.begin() + static_cast<std::ptrdiff_t>(n));
        chain.write(0, m_scratch);
        m_input.erase(m_input.begin(), m_input.begin() + static_cast<std::ptrdiff_t>(n));
        m_rx_bytes += n;
        q.add_used(chain.head(), static_cast<uint32_t>(n));
        used = true;
    }
    if (used) m_transport->notify_used(kRxQueue);
    if (m_input.empty() && m_input_was_full) {
        m_input_was_full = false;
        if (m_input_space) m_input_space();
    }
}

void VirtioConsole::set_input_space_callback(std::function<void()> callback) {
    std::lock_guard lock(m_transport->lock());
    m_input_space = std::move(callback);
}

size_t VirtioConsole::host_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_transport->lock());
    size_t n = std::min(bytes.size(), kInputLimit - m_input.size());
    if (n < bytes.size()) m_input_was_full = true;
    m_input.insert(m_input.end(), bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    if (m_transport->driver_ok()) process_rx();
    return n;
}

size_t VirtioConsole::pending_input() const {
    std::lock_guard lock(m_transport->lock());
    return m_input.size();
}

nlohmann::json VirtioConsole::save_state() const {
    std::vector<uint8_t> pending(m_input.begin(), m_input.end());
    return nlohmann::json{{"version", 1}, {"input", pci::bytes_to_hex(pending)}};
}

Status VirtioConsole::restore_state(const nlohmann::json& state) {
    pci::StateFields f(state, name(), 1);
    const nlohmann::json* input = state.is_object() && state.contains("input") ? &state["input"] : nullptr;
    VIREO_TRY(f.status());
    if (input == nullptr || !input->is_string())
        return make_error("{} snapshot: field \"input\" is missing", name());
    VIREO_ASSIGN_OR_RETURN(auto bytes, pci::hex_to_bytes(input->get<std::string>()));
    if (bytes.size() > kInputLimit)
        return make_error("{} snapshot: {} bytes of input exceed the limit", name(), bytes.size());
    m_input.assign(bytes.begin(), bytes.end());
    return {};
}

nlohmann::json VirtioConsole::counters() const {
    return nlohmann::json{
        {"tx_bytes", m_tx_bytes}, {"rx_bytes", m_rx_bytes}, {"bytes", m_tx_bytes + m_rx_bytes},
        {"requests", m_requests}, {"errors", m_errors},     {"input_pending", m_input.size()}};
}

}  // namespace vireo::devices::virtio
