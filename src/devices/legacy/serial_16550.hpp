// Serial16550: a 16550A UART (PC COM port) with 16-byte FIFOs, as Linux's 8250 driver and a
// simple polled guest both expect it. Transmitted bytes go to a sink; host input is pushed in
// with back-pressure, so input is never lost when the guest is slow to read.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "devices/bus.hpp"
#include "devices/irq.hpp"
#include "devices/legacy/guest_errors.hpp"
#include "devices/snapshot.hpp"

namespace vireo::devices {

// Register offsets from the I/O base (PC16550D datasheet, Table II).
enum class UartReg : uint8_t {
    kData = 0,     // RBR (read) / THR (write); DLL when LCR.DLAB
    kIer = 1,      // interrupt enable; DLM when LCR.DLAB
    kIirFcr = 2,   // IIR (read) / FCR (write)
    kLcr = 3,      // line control
    kMcr = 4,      // modem control
    kLsr = 5,      // line status
    kMsr = 6,      // modem status
    kScratch = 7,  // scratch
};

class Serial16550 final : public BusDevice, public StatefulDevice {
  public:
    static constexpr uint64_t kPortCount = 8;
    static constexpr size_t kFifoSize = 16;
    static constexpr size_t kDefaultHostBufferSize = 4096;

    // Receives every transmitted byte, in order, one call per guest THR write. Called with the
    // UART's lock held: it must not call back into the UART.
    using Sink = std::function<void(std::span<const uint8_t>)>;

    struct Counters {
        uint64_t tx_bytes = 0;       // bytes the guest transmitted (to the sink or looped back)
        uint64_t rx_bytes = 0;       // bytes the guest read from the receive buffer
        uint64_t overruns = 0;       // bytes lost because the receive FIFO was full (loopback)
        uint64_t input_refused = 0;  // host bytes enqueue_input() could not take
        uint64_t guest_errors = 0;
    };

    // `irq` is the ISA line (COM1: IRQ 4); `host_buffer_size` bounds host input waiting for FIFO room.
    Serial16550(std::shared_ptr<IrqLine> irq, Sink sink, size_t host_buffer_size = kDefaultHostBufferSize);

    // BusDevice: 8 byte-wide registers; wider accesses act as consecutive byte accesses.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Host input (stdin, a socket). Moves as much as fits into the receive FIFO and the bounded
    // host buffer behind it and returns how many bytes were taken; the caller keeps the rest and
    // stops reading its source until the input-space callback runs.
    size_t enqueue_input(std::span<const uint8_t> bytes);
    // How many bytes enqueue_input() would take now.
    size_t input_space() const;
    // Called (without the lock, on the thread of the guest's read) when room appears after
    // enqueue_input() refused bytes. Set once, before the device is in use.
    void set_input_space_callback(std::function<void()> callback);

    // Power-on state (the VM was reset). Host input waiting in the host buffer is kept.
    void reset();

    Counters counters() const;

    nlohmann::json save_state() const override;
    Status restore_state(const nlohmann::json& state) override;

  private:
    uint8_t read_register(uint8_t reg);
    void write_register(uint8_t reg, uint8_t value);
    // Puts a byte into the receive FIFO (or the holding register in 16450 mode); false on overrun.
    bool receive_byte(uint8_t byte);
    // Moves bytes from the host buffer into the FIFO while it has room and loopback is off.
    void refill_from_host();
    size_t rx_capacity() const;
    uint8_t interrupt_id() const;
    uint8_t modem_status_lines() const;
    void set_modem_status(uint8_t lines);
    void update_irq();
    void reset_locked();
    size_t input_space_locked() const;

    std::shared_ptr<IrqLine> m_irq;
    Sink m_sink;
    const size_t m_host_buffer_size;
    std::function<void()> m_input_space_callback;

    mutable std::mutex m_lock;
    uint8_t m_ier = 0;
    uint8_t m_lcr = 0;
    uint8_t m_mcr = 0;
    uint8_t m_lsr_errors = 0;  // OE/PE/FE/BI (sticky until LSR is read)
    uint8_t m_msr = 0;         // lines (bits 4-7) and deltas (bits 0-3)
    uint8_t m_scratch = 0;
    uint8_t m_dll = 0;
    uint8_t m_dlm = 0;
    bool m_fifo_enabled = false;
    uint8_t m_fcr_sticky = 0;      // FCR bits that stick: trigger level and DMA mode
    bool m_thr_interrupt = false;  // THRE interrupt pending (cleared by an IIR read that reports it)
    std::deque<uint8_t> m_rx;      // receive FIFO (capacity 1 in 16450 mode)
    std::deque<uint8_t> m_host;    // host input waiting for FIFO room
    bool m_input_refused = false;  // enqueue_input() refused bytes since the last callback
    bool m_irq_level = false;
    Counters m_counters;
    GuestErrors m_errors{"serial"};
};

}  // namespace vireo::devices
