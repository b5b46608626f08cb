// Fuzz target: the API client's response parser never crashes and stays inside its input.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "vmm/api/http_response_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view input(reinterpret_cast<const char*>(data), size);
    for (bool eof : {false, true}) {
        auto r = vireo::vmm::api::parse_response(input, eof);
        if (r.ok() && r->complete) {
            if (r->consumed > input.size() || r->response.body.size() > r->consumed) std::abort();
            if (r->response.status < 200 || r->response.status > 599) std::abort();
        }
    }
    return 0;
}
