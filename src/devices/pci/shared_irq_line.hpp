// SharedIrqLine: several PCI functions' INTx pins wired to one level-triggered interrupt line;
// the line is high while any of them asserts (PCI INTx is wired-OR, shared and level-triggered).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>

#include "devices/irq.hpp"

namespace vireo::devices::pci {

class SharedIrqLine : public std::enable_shared_from_this<SharedIrqLine> {
  public:
    static std::shared_ptr<SharedIrqLine> create(std::shared_ptr<IrqLine> line) {
        return std::shared_ptr<SharedIrqLine>(new SharedIrqLine(std::move(line)));
    }

    // A new input to the line, for one function's pin.
    std::unique_ptr<IrqLine> connect();
    uint32_t asserted_inputs() const;

  private:
    class Input;
    explicit SharedIrqLine(std::shared_ptr<IrqLine> line) : m_line(std::move(line)) {}
    void change(bool raise);

    std::shared_ptr<IrqLine> m_line;
    mutable std::mutex m_lock;
    uint32_t m_asserted = 0;
};

}  // namespace vireo::devices::pci
