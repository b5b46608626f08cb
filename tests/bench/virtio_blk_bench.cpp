// virtio_blk_bench: drives the virtio-blk device model in-process the way a guest driver does
// (split ring, indirect-capable, EVENT_IDX, MSI-X), keeping a fixed number of random requests in
// flight against a disk image through the io_uring IoContext, and prints the IOPS as JSON.
// bench/virtio-blk.sh runs it side by side with fio on the same file.
//
// virtio_blk_bench IMAGE [--format auto|raw|vhd] [--rw randread|randwrite|randrw] [--bs N]
//                        [--qd N] [--seconds S] [--buffered]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "devices/virtio/block.hpp"
#include "devices/virtio/pci_transport.hpp"
#include "disk/image.hpp"
#include "disk/io_context.hpp"
#include "fakes/virtio_driver.hpp"

using namespace vireo;
using namespace vireo::devices::virtio;

namespace {

class CountingVectors final : public devices::pci::MsixVectorSink {
  public:
    void deliver(uint16_t, uint64_t, uint32_t) override { ++count; }
    uint64_t count = 0;
};

[[noreturn]] void usage(const char* why) {
    std::fprintf(stderr,
                 "virtio_blk_bench: %s\nusage: virtio_blk_bench IMAGE [--format auto|raw|vhd] [--rw "
                 "randread|randwrite|randrw] [--bs N] [--qd N] [--seconds S] [--buffered]\n",
                 why);
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::string image;
    std::string format = "auto";
    std::string rw = "randread";
    uint32_t bs = 4096;
    uint32_t qd = 32;
    double seconds = 10;
    bool direct = true;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) usage(("missing value after " + a).c_str());
            return argv[++i];
        };
        if (a == "--format") {
            format = next();
        } else if (a == "--rw") {
            rw = next();
        } else if (a == "--bs") {
            bs = static_cast<uint32_t>(std::stoul(next()));
        } else if (a == "--qd") {
            qd = static_cast<uint32_t>(std::stoul(next()));
        } else if (a == "--seconds") {
            seconds = std::stod(next());
        } else if (a == "--buffered") {
            direct = false;
        } else if (!a.empty() && a[0] == '-') {
            usage(("unknown option " + a).c_str());
        } else {
            image = a;
        }
    }
    if (image.empty()) usage("no image given");
    if (rw != "randread" && rw != "randwrite" && rw != "randrw")
        usage("--rw must be randread, randwrite or randrw");
    if (bs == 0 || bs % 512 != 0 || qd == 0 || qd > 128) usage("--bs must be a multiple of 512, --qd 1..128");

    auto fmt = disk::parse_format(format);
    if (!fmt.ok()) usage(fmt.error().message().c_str());
    auto backend =
        disk::open_image(image, disk::ImageOptions{.read_only = false, .direct = direct, .format = *fmt});
    if (!backend.ok()) {
        std::fprintf(stderr, "virtio_blk_bench: %s\n", backend.error().message().c_str());
        return 1;
    }
    auto io = disk::IoContext::create(256, /*allow_fallback=*/false);
    if (!io.ok()) {
        std::fprintf(stderr, "virtio_blk_bench: %s\n", io.error().message().c_str());
        return 1;
    }
    std::shared_ptr<disk::BlockBackend> disk(std::move(*backend));
    uint64_t slots = disk->size() / bs;
    if (slots == 0) usage("image smaller than one block");

    testing::FakeGuestMemory mem(size_t{qd} * (bs + 4096) + (8 << 20));
    VirtioPciDevice dev(std::make_unique<VirtioBlock>(disk, **io, BlockOptions{.serial = "bench"}),
                        mem.memory());
    testing::VirtioTestDriver drv(mem, dev);
    auto sink = std::make_shared<CountingVectors>();
    uint64_t wanted = feature_bit(kFeatureRingIndirectDesc) | feature_bit(kFeatureRingEventIdx) |
                      feature_bit(VirtioBlock::kFeatureFlush) | feature_bit(VirtioBlock::kFeatureSegMax) |
                      feature_bit(VirtioBlock::kFeatureBlkSize);
    if (!drv.init(wanted)) {
        std::fprintf(stderr, "virtio_blk_bench: feature negotiation failed\n");
        return 1;
    }
    dev.set_msix_sink(sink);  // after init: the driver installed its recording sink

    // One request slot per queue-depth entry: header, data (page aligned), status.
    struct Slot {
        uint64_t hdr, data, status;
        std::vector<testing::VirtioTestDriver::Buffer> read_chain, write_chain;  // built once
    };
    std::vector<Slot> slot(qd);
    for (auto& s : slot) {
        s.data = mem.alloc(bs, 4096);
        s.hdr = mem.alloc(16, 16);
        s.status = mem.alloc(1, 1);
        mem.fill(s.data, 0xA5, bs);
        s.read_chain = {{s.hdr, 16, false}, {s.data, bs, true}, {s.status, 1, true}};
        s.write_chain = {{s.hdr, 16, false}, {s.data, bs, false}, {s.status, 1, true}};
    }
    std::vector<uint32_t> slot_of_head(65536, 0);
    uint64_t rng = 0x9E3779B97F4A7C15ull ^
                   static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    auto next_random = [&rng] {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
    };
    auto post = [&](uint32_t i) {
        uint64_t r = next_random();
        bool write = rw == "randwrite" || (rw == "randrw" && (r >> 63) != 0);
        uint64_t sector = (r % slots) * (bs / 512);
        mem.write<uint32_t>(slot[i].hdr, write ? VirtioBlock::kTypeOut : VirtioBlock::kTypeIn);
        mem.write<uint32_t>(slot[i].hdr + 4, 0);
        mem.write<uint64_t>(slot[i].hdr + 8, sector);
        mem.write<uint8_t>(slot[i].status, 0xFF);
        uint16_t head = drv.post(0, write ? slot[i].write_chain : slot[i].read_chain);
        slot_of_head[head] = i;
    };

    for (uint32_t i = 0; i < qd; ++i)
        post(i);
    drv.kick(0);
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + std::chrono::duration<double>(seconds);
    uint64_t done = 0;
    uint64_t errors = 0;
    bool stopping = false;
    uint32_t outstanding = qd;
    while (outstanding > 0) {
        auto waited = (*io)->wait(-1);
        if (!waited.ok()) {
            std::fprintf(stderr, "virtio_blk_bench: %s\n", waited.error().message().c_str());
            return 1;
        }
        if (!stopping && std::chrono::steady_clock::now() >= deadline) stopping = true;
        bool reposted = false;
        while (auto used = drv.pop_used(0)) {
            uint32_t i = slot_of_head[used->id];
            if (mem.read<uint8_t>(slot[i].status) != VirtioBlock::kStatusOk) ++errors;
            ++done;
            if (stopping) {
                --outstanding;
            } else {
                post(i);
                reposted = true;
            }
        }
        if (reposted) drv.kick(0);
    }
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf(
        "{\"image\": \"%s\", \"backend\": \"%s\", \"rw\": \"%s\", \"bs\": %u, \"qd\": %u, \"ios\": %llu, "
        "\"errors\": %llu, \"seconds\": %.3f, \"iops\": %.0f, \"interrupts\": %llu}\n",
        image.c_str(), disk->describe().c_str(), rw.c_str(), bs, qd, static_cast<unsigned long long>(done),
        static_cast<unsigned long long>(errors), elapsed, static_cast<double>(done) / elapsed,
        static_cast<unsigned long long>(sink->count));
    return errors == 0 ? 0 : 1;
}
