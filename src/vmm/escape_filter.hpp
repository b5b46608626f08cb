// EscapeFilter: the console's Ctrl-A escapes, as QEMU's -nographic console has them: Ctrl-A x
// quits, Ctrl-A h prints help, Ctrl-A Ctrl-A sends one Ctrl-A to the guest; every other byte
// goes to the guest unchanged.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace vireo::vmm {

class EscapeFilter {
  public:
    static constexpr uint8_t kEscape = 0x01;  // Ctrl-A

    enum class Command { kNone, kQuit };

    struct Output {
        std::vector<uint8_t> to_guest;
        Command command = Command::kNone;  // kQuit: input after it is dropped
        bool help = false;                 // Ctrl-A h was typed
    };

    Output feed(std::span<const uint8_t> input);

    static const char* help_text();

  private:
    bool m_escaped = false;
};

}  // namespace vireo::vmm
