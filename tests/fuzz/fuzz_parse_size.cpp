// Fuzz target: size parsing never crashes, and what it accepts formats and reparses consistently.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/size.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = vireo::parse_size(text);
    if (parsed.ok()) {
        auto again = vireo::parse_size(std::to_string(*parsed));
        if (!again.ok() || *again != *parsed) std::abort();
    }
    return 0;
}
