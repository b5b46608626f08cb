// Fuzz target: the split virtqueue's descriptor walker and used ring over guest memory the input
// fills. Whatever the rings hold, the walker must return chains whose buffers lie inside guest
// RAM, never loop, and never touch memory outside it (ASan watches the bytes around it).
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "devices/virtio/queue.hpp"
#include "devices/virtio/virtio_spec.hpp"

using namespace vireo;
using namespace vireo::devices::virtio;

namespace {

constexpr size_t kRam = 64 * 1024;

struct Reader {
    const uint8_t* p;
    size_t n;
    uint8_t u8() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    uint16_t u16() { return static_cast<uint16_t>(u8() | u8() << 8); }
};

void check_inside(const std::vector<uint8_t>& ram, std::span<const iovec> iov) {
    for (const iovec& v : iov) {
        auto* base = static_cast<const uint8_t*>(v.iov_base);
        if (v.iov_len == 0 || base < ram.data() || base + v.iov_len > ram.data() + ram.size()) std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    Reader in{data, size};
    uint16_t q_size = static_cast<uint16_t>(1u << (in.u8() % 9));  // 1..256
    uint8_t flags = in.u8();
    uint64_t features = feature_bit(kFeatureVersion1);
    if (flags & 1) features |= feature_bit(kFeatureRingIndirectDesc);
    if (flags & 2) features |= feature_bit(kFeatureRingEventIdx);
    // Ring addresses anywhere in (or just past) RAM; activation must refuse the bad ones.
    uint64_t desc = uint64_t{in.u16()} * 16 % (kRam + 4096);
    uint64_t avail = uint64_t{in.u16()} * 2 % (kRam + 4096);
    uint64_t used = uint64_t{in.u16()} * 4 % (kRam + 4096);
    uint8_t rounds = in.u8();

    // The rest of the input is guest RAM (zero-filled beyond it), inside a guarded buffer so a
    // read or write outside the region shows up under ASan.
    std::vector<uint8_t> ram(kRam, 0);
    if (in.n != 0) std::memcpy(ram.data(), in.p, std::min(in.n, kRam));
    GuestMemory memory({GuestRegion{0, kRam, ram.data()}});

    Virtqueue q(256);
    if (!q.set_size(q_size)) std::abort();
    q.set_desc_addr(desc);
    q.set_driver_addr(avail);
    q.set_device_addr(used);
    q.set_enabled(true);
    if (!q.activate(memory, features).ok()) return 0;

    DescriptorChain chain;
    std::vector<uint8_t> scratch(4096);
    // Bounded: at most a few queue-fulls of pops whatever the ring says.
    for (unsigned i = 0; i < 3u * q_size + (rounds % 8); ++i) {
        auto popped = q.pop(chain);
        if (!popped.ok()) {
            if (!q.broken()) std::abort();  // an error always breaks the queue
            break;
        }
        if (!*popped) {
            if (!q.enable_notification()) break;
            continue;
        }
        if (chain.descriptor_count() > q_size || chain.head() >= q_size) std::abort();
        check_inside(ram, chain.readable());
        check_inside(ram, chain.writable());
        // Touch every byte the device may use.
        for (uint64_t off = 0; off < chain.readable_bytes(); off += scratch.size())
            chain.read(off, scratch);
        for (uint64_t off = 0; off < chain.writable_bytes(); off += scratch.size())
            chain.write(off, scratch);
        if (i % 5 == 4) {
            q.undo_pop();
            continue;
        }
        q.add_used(chain.head(), static_cast<uint32_t>(chain.writable_bytes()));
        (void)q.needs_notification();
    }
    return 0;
}
