// 16550A UART model. Register semantics follow the PC16550D datasheet (National Semiconductor,
// "PC16550D UART with FIFOs"); transmission is instantaneous, so THRE and TEMT are set again as
// soon as a byte is written.
#include "devices/legacy/serial_16550.hpp"

#include <algorithm>

#include "devices/legacy/device_state.hpp"

namespace vireo::devices {
namespace {

// IER bits
constexpr uint8_t kIerRda = 0x01;   // received data available (and character timeout)
constexpr uint8_t kIerThre = 0x02;  // transmitter holding register empty
constexpr uint8_t kIerRls = 0x04;   // receiver line status
constexpr uint8_t kIerMsi = 0x08;   // modem status
constexpr uint8_t kIerMask = 0x0F;  // bits 4-7 are always 0 on a 16550A

// IIR values (datasheet Table IV), in priority order
constexpr uint8_t kIirNone = 0x01;
constexpr uint8_t kIirRls = 0x06;
constexpr uint8_t kIirRda = 0x04;
constexpr uint8_t kIirTimeout = 0x0C;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirMsi = 0x00;
constexpr uint8_t kIirFifoEnabled = 0xC0;

// FCR bits
constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrClearTx = 0x04;
constexpr uint8_t kFcrSticky = 0xC8;  // trigger level (7:6) and DMA mode select (3)

// LCR / MCR bits
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;  // on PCs gates the UART's interrupt onto the ISA line
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1F;

// LSR bits
constexpr uint8_t kLsrDr = 0x01;
constexpr uint8_t kLsrOe = 0x02;
constexpr uint8_t kLsrErrorBits = 0x1E;  // OE, PE, FE, BI
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;
constexpr uint8_t kLsrFifoError = 0x80;  // a PE/FE/BI byte is in the FIFO

// MSR bits
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;
constexpr uint8_t kMsrDeltas = 0x0F;
constexpr uint8_t kMsrTeri = 0x04;

// Receive FIFO trigger levels by FCR bits 7:6 (datasheet, FCR description).
constexpr size_t kTriggerLevels[4] = {1, 4, 8, 14};

constexpr int kStateVersion = 1;

}  // namespace

Serial16550::Serial16550(std::shared_ptr<IrqLine> irq, Sink sink, size_t host_buffer_size)
    : m_irq(std::move(irq)), m_sink(std::move(sink)), m_host_buffer_size(host_buffer_size) {
    std::lock_guard lock(m_lock);
    reset_locked();
}

void Serial16550::reset() {
    std::lock_guard lock(m_lock);
    reset_locked();
    update_irq();
}

void Serial16550::reset_locked() {
    // Master reset values (datasheet Table IV "Reset Control").
    m_ier = 0;
    m_lcr = 0;
    m_mcr = 0;
    m_lsr_errors = 0;
    m_scratch = 0;
    m_dll = 0;
    m_dlm = 0;
    m_fifo_enabled = false;
    m_fcr_sticky = 0;
    m_thr_interrupt = false;
    m_rx.clear();
    // With nothing attached but the host, the modem inputs read as a connected, ready peer.
    m_msr = kMsrDcd | kMsrDsr | kMsrCts;
    refill_from_host();
}

void Serial16550::set_input_space_callback(std::function<void()> callback) {
    std::lock_guard lock(m_lock);
    m_input_space_callback = std::move(callback);
}

Serial16550::Counters Serial16550::counters() const {
    std::lock_guard lock(m_lock);
    Counters c = m_counters;
    c.guest_errors = m_errors.count();
    return c;
}

size_t Serial16550::rx_capacity() const {
    return m_fifo_enabled ? kFifoSize : 1;
}

size_t Serial16550::input_space_locked() const {
    size_t fifo_room = 0;
    if (!(m_mcr & kMcrLoop) && m_host.empty())
        fifo_room = rx_capacity() - std::min(rx_capacity(), m_rx.size());
    return fifo_room + (m_host_buffer_size - m_host.size());
}

size_t Serial16550::input_space() const {
    std::lock_guard lock(m_lock);
    return input_space_locked();
}

size_t Serial16550::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_lock);
    size_t taken = 0;
    // Straight into the FIFO while nothing older waits in the host buffer (keeps order).
    if (!(m_mcr & kMcrLoop) && m_host.empty()) {
        while (taken < bytes.size() && m_rx.size() < rx_capacity())
            m_rx.push_back(bytes[taken++]);
    }
    size_t room = m_host_buffer_size - m_host.size();
    size_t buffered = std::min(room, bytes.size() - taken);
    m_host.insert(m_host.end(), bytes.begin() + static_cast<ptrdiff_t>(taken),
                  bytes.begin() + static_cast<ptrdiff_t>(taken + buffered));
    taken += buffered;
    if (taken < bytes.size()) {
        m_input_refused = true;
        m_counters.input_refused += bytes.size() - taken;
    }
    update_irq();
    return taken;
}

void Serial16550::refill_from_host() {
    if (m_mcr & kMcrLoop) return;  // loopback disconnects the serial input (datasheet, MCR bit 4)
    while (!m_host.empty() && m_rx.size() < rx_capacity()) {
        m_rx.push_back(m_host.front());
        m_host.pop_front();
    }
}

bool Serial16550::receive_byte(uint8_t byte) {
    if (m_rx.size() >= rx_capacity()) {
        // Overrun: the FIFO keeps its contents and the new character is lost (datasheet, LSR bit 1).
        m_lsr_errors |= kLsrOe;
        ++m_counters.overruns;
        return false;
    }
    m_rx.push_back(byte);
    return true;
}

uint8_t Serial16550::modem_status_lines() const {
    if (m_mcr & kMcrLoop) {
        // Loopback: CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2 (datasheet, MCR bit 4).
        uint8_t lines = 0;
        if (m_mcr & kMcrRts) lines |= kMsrCts;
        if (m_mcr & kMcrDtr) lines |= kMsrDsr;
        if (m_mcr & kMcrOut1) lines |= kMsrRi;
        if (m_mcr & kMcrOut2) lines |= kMsrDcd;
        return lines;
    }
    return kMsrDcd | kMsrDsr | kMsrCts;
}

void Serial16550::set_modem_status(uint8_t lines) {
    uint8_t old_lines = m_msr & 0xF0;
    uint8_t changed = static_cast<uint8_t>((old_lines ^ lines) >> 4);
    // TERI is set only on a trailing edge of RI (1 -> 0).
    if ((changed & kMsrTeri) && (lines & kMsrRi)) changed &= static_cast<uint8_t>(~kMsrTeri);
    m_msr = static_cast<uint8_t>(lines | ((m_msr | changed) & kMsrDeltas));
}

uint8_t Serial16550::interrupt_id() const {
    if ((m_ier & kIerRls) && (m_lsr_errors & kLsrErrorBits)) return kIirRls;
    if ((m_ier & kIerRda) && !m_rx.empty()) {
        // At or above the trigger level: data available. Below it the 16550A raises a character
        // timeout once the line has been idle for four character times; the host delivers input
        // in bursts, so the line is idle as soon as a burst is in.
        if (!m_fifo_enabled || m_rx.size() >= kTriggerLevels[m_fcr_sticky >> 6]) return kIirRda;
        return kIirTimeout;
    }
    if ((m_ier & kIerThre) && m_thr_interrupt) return kIirThre;
    if ((m_ier & kIerMsi) && (m_msr & kMsrDeltas)) return kIirMsi;
    return kIirNone;
}

void Serial16550::update_irq() {
    // OUT2 connects the UART's INTR output to the ISA interrupt line on PC hardware.
    bool level = (m_mcr & kMcrOut2) && interrupt_id() != kIirNone;
    if (level != m_irq_level) {
        m_irq_level = level;
        m_irq->set_level(level);
    }
}

void Serial16550::read(uint64_t offset, std::span<uint8_t> data) {
    bool notify = false;
    std::function<void()> callback;
    {
        std::lock_guard lock(m_lock);
        for (size_t i = 0; i < data.size(); ++i) {
            uint64_t reg = offset + i;
            data[i] = reg < kPortCount ? read_register(static_cast<uint8_t>(reg)) : 0xFF;
        }
        update_irq();
        if (m_input_refused && input_space_locked() > 0) {
            m_input_refused = false;
            notify = true;
            callback = m_input_space_callback;
        }
    }
    if (notify && callback) callback();
}

void Serial16550::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t reg = offset + i;
        if (reg < kPortCount) {
            write_register(static_cast<uint8_t>(reg), data[i]);
        } else {
            m_errors.report("write past the UART's registers");
        }
    }
    update_irq();
}

uint8_t Serial16550::read_register(uint8_t reg) {
    switch (static_cast<UartReg>(reg)) {
        case UartReg::kData: {
            if (m_lcr & kLcrDlab) return m_dll;
            if (m_rx.empty()) return 0;  // reading an empty RBR returns stale data; 0 is as good
            uint8_t byte = m_rx.front();
            m_rx.pop_front();
            ++m_counters.rx_bytes;
            refill_from_host();
            return byte;
        }
        case UartReg::kIer:
            return (m_lcr & kLcrDlab) ? m_dlm : m_ier;
        case UartReg::kIirFcr: {
            uint8_t id = interrupt_id();
            // Reading IIR clears a THRE interrupt if that is what it reports (datasheet Table IV).
            if (id == kIirThre) m_thr_interrupt = false;
            return static_cast<uint8_t>(id | (m_fifo_enabled ? kIirFifoEnabled : 0));
        }
        case UartReg::kLcr:
            return m_lcr;
        case UartReg::kMcr:
            return m_mcr;
        case UartReg::kLsr: {
            uint8_t lsr = static_cast<uint8_t>(m_lsr_errors | kLsrThre | kLsrTemt);
            if (!m_rx.empty()) lsr |= kLsrDr;
            if (m_fifo_enabled && (m_lsr_errors & 0x1C)) lsr |= kLsrFifoError;
            m_lsr_errors = 0;  // OE/PE/FE/BI clear when LSR is read
            return lsr;
        }
        case UartReg::kMsr: {
            uint8_t msr = m_msr;
            m_msr &= static_cast<uint8_t>(~kMsrDeltas);
            return msr;
        }
        case UartReg::kScratch:
            return m_scratch;
    }
    return 0xFF;
}

void Serial16550::write_register(uint8_t reg, uint8_t value) {
    switch (static_cast<UartReg>(reg)) {
        case UartReg::kData:
            if (m_lcr & kLcrDlab) {
                m_dll = value;
                return;
            }
            // The write clears a pending THRE interrupt; the byte leaves at once and THR is empty
            // again, which raises it anew. Lowering the line in between gives edge-triggered
            // controllers a fresh edge per byte, as the hardware's shifting does.
            m_thr_interrupt = false;
            update_irq();
            ++m_counters.tx_bytes;
            if (m_mcr & kMcrLoop) {
                receive_byte(value);
            } else if (m_sink) {
                m_sink(std::span<const uint8_t>(&value, 1));
            }
            m_thr_interrupt = true;
            return;
        case UartReg::kIer: {
            if (m_lcr & kLcrDlab) {
                m_dlm = value;
                return;
            }
            if (value & ~kIerMask) m_errors.report("IER reserved bits set", fmt::format("0x{:02x}", value));
            uint8_t old = m_ier;
            m_ier = value & kIerMask;
            // Enabling the THRE interrupt while THR is empty raises it (Linux's 8250 driver tests
            // exactly this at startup); disabling it drops a pending one.
            if ((m_ier & kIerThre) && !(old & kIerThre)) m_thr_interrupt = true;
            if (!(m_ier & kIerThre)) m_thr_interrupt = false;
            return;
        }
        case UartReg::kIirFcr: {
            bool enable = value & kFcrEnable;
            // Changing FIFO enable clears both FIFOs (datasheet, FCR bit 0).
            bool clear_rx = (value & kFcrClearRx) || enable != m_fifo_enabled;
            m_fifo_enabled = enable;
            m_fcr_sticky = enable ? static_cast<uint8_t>(value & kFcrSticky) : 0;
            if (clear_rx) m_rx.clear();
            (void)kFcrClearTx;  // the transmit FIFO is always empty: bytes leave at once
            refill_from_host();
            return;
        }
        case UartReg::kLcr:
            m_lcr = value;
            return;
        case UartReg::kMcr:
            if (value & ~kMcrMask) m_errors.report("MCR reserved bits set", fmt::format("0x{:02x}", value));
            m_mcr = value & kMcrMask;
            set_modem_status(modem_status_lines());
            refill_from_host();
            return;
        case UartReg::kLsr:
            // LSR is read-only in normal operation (writes are a factory test feature).
            m_errors.report("write to the read-only LSR", fmt::format("0x{:02x}", value));
            return;
        case UartReg::kMsr:
            m_errors.report("write to the read-only MSR", fmt::format("0x{:02x}", value));
            return;
        case UartReg::kScratch:
            m_scratch = value;
            return;
    }
}

nlohmann::json Serial16550::save_state() const {
    std::lock_guard lock(m_lock);
    std::vector<uint8_t> rx(m_rx.begin(), m_rx.end());
    std::vector<uint8_t> host(m_host.begin(), m_host.end());
    return {
        {"version", kStateVersion},
        {"ier", m_ier},
        {"lcr", m_lcr},
        {"mcr", m_mcr},
        {"lsr_errors", m_lsr_errors},
        {"msr", m_msr},
        {"scratch", m_scratch},
        {"dll", m_dll},
        {"dlm", m_dlm},
        {"fifo_enabled", m_fifo_enabled},
        {"fcr", m_fcr_sticky},
        {"thr_interrupt", m_thr_interrupt},
        {"rx", bytes_to_hex(rx)},
        {"host_input", bytes_to_hex(host)},
        {"tx_bytes", m_counters.tx_bytes},
        {"rx_bytes", m_counters.rx_bytes},
        {"overruns", m_counters.overruns},
    };
}

Status Serial16550::restore_state(const nlohmann::json& state) {
    StateReader r(state, "serial", kStateVersion);
    auto ier = static_cast<uint8_t>(r.number("ier", kIerMask));
    auto lcr = static_cast<uint8_t>(r.number("lcr", 0xFF));
    auto mcr = static_cast<uint8_t>(r.number("mcr", kMcrMask));
    auto lsr_errors = static_cast<uint8_t>(r.number("lsr_errors", kLsrErrorBits));
    auto msr = static_cast<uint8_t>(r.number("msr", 0xFF));
    auto scratch = static_cast<uint8_t>(r.number("scratch", 0xFF));
    auto dll = static_cast<uint8_t>(r.number("dll", 0xFF));
    auto dlm = static_cast<uint8_t>(r.number("dlm", 0xFF));
    bool fifo_enabled = r.boolean("fifo_enabled");
    auto fcr = static_cast<uint8_t>(r.number("fcr", 0xFF));
    bool thr_interrupt = r.boolean("thr_interrupt");
    auto rx = r.bytes("rx", fifo_enabled ? kFifoSize : 1);
    auto host = r.bytes("host_input", m_host_buffer_size);
    uint64_t tx_bytes = r.number("tx_bytes", UINT64_MAX);
    uint64_t rx_bytes = r.number("rx_bytes", UINT64_MAX);
    uint64_t overruns = r.number("overruns", UINT64_MAX);
    if (r.ok() && (fcr & ~kFcrSticky))
        return make_error("serial: cannot restore state: bad fcr 0x{:02x}", fcr);
    VIREO_TRY(r.status());

    std::lock_guard lock(m_lock);
    m_ier = ier;
    m_lcr = lcr;
    m_mcr = mcr;
    m_lsr_errors = lsr_errors;
    m_msr = msr;
    m_scratch = scratch;
    m_dll = dll;
    m_dlm = dlm;
    m_fifo_enabled = fifo_enabled;
    m_fcr_sticky = fifo_enabled ? fcr : 0;
    m_thr_interrupt = thr_interrupt;
    m_rx.assign(rx.begin(), rx.end());
    m_host.assign(host.begin(), host.end());
    m_counters.tx_bytes = tx_bytes;
    m_counters.rx_bytes = rx_bytes;
    m_counters.overruns = overruns;
    // Drive the line to the restored level even if it looks unchanged: the interrupt
    // controller may be new.
    m_irq_level = (m_mcr & kMcrOut2) && interrupt_id() != kIirNone;
    m_irq->set_level(m_irq_level);
    return {};
}

}  // namespace vireo::devices
