// Wired-OR INTx line.
#include "devices/pci/shared_irq_line.hpp"

namespace vireo::devices::pci {

class SharedIrqLine::Input final : public IrqLine {
  public:
    explicit Input(std::shared_ptr<SharedIrqLine> parent) : m_parent(std::move(parent)) {}
    ~Input() override {
        if (m_high) m_parent->change(false);
    }
    void set_level(bool high) override {
        if (high == m_high) return;
        m_high = high;
        m_parent->change(high);
    }

  private:
    std::shared_ptr<SharedIrqLine> m_parent;
    bool m_high = false;  // each input belongs to one function and changes under its lock
};

std::unique_ptr<IrqLine> SharedIrqLine::connect() {
    return std::make_unique<Input>(shared_from_this());
}

uint32_t SharedIrqLine::asserted_inputs() const {
    std::lock_guard lock(m_lock);
    return m_asserted;
}

void SharedIrqLine::change(bool raise) {
    // The line call stays under the lock so two functions changing at once cannot reorder
    // "high" and "low" on the way to the interrupt controller.
    std::lock_guard lock(m_lock);
    if (raise) {
        if (m_asserted++ == 0) m_line->set_level(true);
    } else if (m_asserted > 0) {
        if (--m_asserted == 0) m_line->set_level(false);
    }
}

}  // namespace vireo::devices::pci
