// Console escape handling.
#include "vmm/escape_filter.hpp"

namespace vireo::vmm {

EscapeFilter::Output EscapeFilter::feed(std::span<const uint8_t> input) {
    Output out;
    out.to_guest.reserve(input.size());
    for (uint8_t byte : input) {
        if (!m_escaped) {
            if (byte == kEscape) {
                m_escaped = true;
            } else {
                out.to_guest.push_back(byte);
            }
            continue;
        }
        m_escaped = false;
        switch (byte) {
            case 'x':
            case 'X':
                out.command = Command::kQuit;
                return out;
            case 'h':
            case 'H':
            case '?':
                out.help = true;
                break;
            case kEscape:
                out.to_guest.push_back(kEscape);
                break;
            default:
                break;  // unknown escape: dropped, as QEMU does
        }
    }
    return out;
}

const char* EscapeFilter::help_text() {
    return "\r\nC-a h    print this help\r\n"
           "C-a x    exit the VM\r\n"
           "C-a C-a  send C-a to the guest\r\n";
}

}  // namespace vireo::vmm
