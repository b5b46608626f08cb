// Fuzz target: the control API's request parser and router. The input is parsed twice, in one
// piece and in chunks whose sizes come from the input, the way a connection receives it; both
// must see the same requests and errors. Complete requests go through the router to a
// controller that keeps state in memory only.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/api/api_router.hpp"
#include "vmm/api/http_request_parser.hpp"
#include "vmm/api/vm_lifecycle.hpp"

namespace {

using namespace vireo::vmm::api;

class MemoryController final : public VmController {
  public:
    VmInfo info() override {
        VmInfo i;
        i.id = "fuzz";
        i.state = m_state;
        return i;
    }
    ControlStatus pause() override { return go(may_pause(m_state), VmState::kPaused); }
    ControlStatus resume() override { return go(may_resume(m_state), VmState::kRunning); }
    ControlStatus shutdown() override { return go(may_shutdown(m_state), VmState::kShuttingDown); }
    ControlStatus power_off() override { return go(may_power_off(m_state), VmState::kStopped); }
    ControlStatus reboot() override { return go(may_reboot(m_state), VmState::kRunning); }
    VmCounters counters() override { return {}; }
    ControlResult<SnapshotResult> snapshot(const SnapshotOptions& o) override {
        if (o.destination.empty()) std::abort();  // the router must have refused it
        if (auto s = may_snapshot(m_state); !s.ok()) return s.error();
        return SnapshotResult{o.destination, 0, 0, 0};
    }

  private:
    ControlStatus go(ControlStatus allowed, VmState to) {
        if (allowed.ok()) m_state = to;
        return allowed;
    }
    VmState m_state = VmState::kRunning;
};

struct Event {
    int status;  // 0: a complete request, else the error status
    std::string method, target, body;
    bool operator==(const Event&) const = default;
};

// Parses `input` as a connection would receive it, `chunks` bytes at a time (cycling).
std::vector<Event> run(std::string_view input, const std::vector<size_t>& chunks, ApiRouter* router) {
    std::vector<Event> events;
    HttpRequestParser parser;
    std::string buffer;
    size_t fed = 0, chunk = 0;
    while (fed < input.size()) {
        size_t n = std::min(input.size() - fed, chunks[chunk++ % chunks.size()]);
        buffer.append(input.substr(fed, n));
        fed += n;
        for (;;) {
            auto state = parser.parse(buffer);
            if (state == HttpRequestParser::State::kIncomplete) break;
            if (state == HttpRequestParser::State::kError) {
                if (parser.error_status() < 400 || parser.error_message().empty()) std::abort();
                events.push_back({parser.error_status(), {}, {}, {}});
                return events;
            }
            if (parser.consumed() == 0 || parser.consumed() > buffer.size() ||
                parser.consumed() > kMaxRequestSize)
                std::abort();
            HttpRequest r = parser.take_request();
            if (router) {
                HttpResponse response = router->handle(r);
                if (response.status < 200 || response.status > 599) std::abort();
                (void)serialize(response, r.close);
            }
            events.push_back({0, r.method, r.target, r.body});
            buffer.erase(0, parser.consumed());
            parser.reset();
        }
    }
    return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    // First byte: chunking pattern for the incremental run.
    std::vector<size_t> chunks{size_t{1} + (data[0] & 0x0F), size_t{1} + (data[0] >> 4) * 37, 1};
    std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
    MemoryController controller;
    ApiRouter router(controller);
    auto whole = run(input, {input.size() ? input.size() : 1}, &router);
    auto pieces = run(input, chunks, nullptr);
    if (whole != pieces) std::abort();
    return 0;
}
