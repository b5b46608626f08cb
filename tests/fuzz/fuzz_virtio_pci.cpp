// Fuzz target: the virtio PCI transport's register space (configuration space, common config,
// ISR, notify, device config, MSI-X table) with each device type behind it, driven by a stream
// of guest accesses and notifications over guest memory the input fills. Nothing a guest writes
// may crash the VMM, hang it, or touch memory outside guest RAM; a reset always completes once
// in-flight I/O drains.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "base/log.hpp"
#include "devices/virtio/block.hpp"
#include "devices/virtio/console.hpp"
#include "devices/virtio/net.hpp"
#include "devices/virtio/pci_transport.hpp"
#include "devices/virtio/rng.hpp"
#include "disk/io_context.hpp"

using namespace vireo;
using namespace vireo::devices;
using namespace vireo::devices::virtio;

namespace {

constexpr size_t kRam = 256 * 1024;
constexpr uint64_t kDiskSize = 1 << 20;

// A disk in memory: synchronous operations, asynchronous ones completed from the context.
class MemoryDisk final : public disk::BlockBackend {
  public:
    uint64_t size() const override { return kDiskSize; }
    bool read_only() const override { return false; }
    std::string describe() const override { return "memory"; }
    Status read(uint64_t off, std::span<const iovec> iov) override { return copy(off, iov, true); }
    Status write(uint64_t off, std::span<const iovec> iov) override { return copy(off, iov, false); }
    Status flush() override { return {}; }
    Status discard(uint64_t, uint64_t) override { return {}; }
    Status write_zeroes(uint64_t off, uint64_t len) override {
        if (off > kDiskSize || len > kDiskSize - off) return make_error("memory: range");
        std::memset(m_bytes.data() + off, 0, len);
        return {};
    }
    void submit(disk::IoContext& ctx, disk::IoRequest& req) override {
        Status s;
        switch (req.op) {
            case disk::IoOp::kRead:
                s = read(req.offset, req.iov);
                break;
            case disk::IoOp::kWrite:
                s = write(req.offset, req.iov);
                break;
            case disk::IoOp::kFlush:
                break;
            case disk::IoOp::kDiscard:
                break;
            case disk::IoOp::kWriteZeroes:
                s = write_zeroes(req.offset, req.length);
                break;
        }
        disk::IoRequest* r = &req;
        ctx.defer([r, s = std::move(s)]() mutable { r->complete(*r, std::move(s)); });
    }

  private:
    Status copy(uint64_t off, std::span<const iovec> iov, bool to_guest) {
        for (const iovec& v : iov) {
            if (off > kDiskSize || v.iov_len > kDiskSize - off) return make_error("memory: range");
            if (to_guest) {
                std::memcpy(v.iov_base, m_bytes.data() + off, v.iov_len);
            } else {
                std::memcpy(m_bytes.data() + off, v.iov_base, v.iov_len);
            }
            off += v.iov_len;
        }
        return {};
    }
    std::vector<uint8_t> m_bytes = std::vector<uint8_t>(kDiskSize);
};

class SocketBackend final : public NetBackend {
  public:
    explicit SocketBackend(int fd) : m_fd(fd) {}
    ~SocketBackend() override { ::close(m_fd); }
    int fd() const override { return m_fd; }
    Status set_offload(unsigned) override { return {}; }
    std::string describe() const override { return "socket"; }

  private:
    int m_fd;
};

class NullSink final : public pci::MsixVectorSink {
  public:
    void deliver(uint16_t, uint64_t, uint32_t) override {}
};

struct Reader {
    const uint8_t* p;
    size_t n;
    uint8_t u8() {
        if (n == 0) return 0;
        --n;
        return *p++;
    }
    uint32_t u32() { return static_cast<uint32_t>(u8() | u8() << 8 | u8() << 16 | uint32_t{u8()} << 24); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static std::unique_ptr<disk::IoContext> io = [] {
        (void)log::set_level("off");  // guest errors are logged once per device; devices are per input
        return std::move(*disk::IoContext::create_for_testing_without_io_uring());
    }();
    Reader in{data, size};
    uint8_t kind = in.u8() % 4;
    size_t ram_bytes = std::min<size_t>(in.u8() * 512u, in.n);
    std::vector<uint8_t> ram(kRam, 0);
    if (ram_bytes != 0) std::memcpy(ram.data(), in.p, ram_bytes);
    in.p += ram_bytes;
    in.n -= ram_bytes;
    GuestMemory memory({GuestRegion{0, kRam, ram.data()}});

    int wire = -1;
    std::unique_ptr<VirtioDevice> device;
    switch (kind) {
        case 0:
            device = std::make_unique<VirtioRng>();
            break;
        case 1:
            device = std::make_unique<VirtioConsole>([](std::span<const uint8_t>) {});
            break;
        case 2:
            device = std::make_unique<VirtioBlock>(std::make_shared<MemoryDisk>(), *io,
                                                   BlockOptions{.serial = "fuzz"});
            break;
        default: {
            int fds[2];
            if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) return 0;
            wire = fds[1];
            device = std::make_unique<VirtioNet>(std::make_unique<SocketBackend>(fds[0]), NetOptions{});
            break;
        }
    }
    VirtioConsole* console = kind == 1 ? static_cast<VirtioConsole*>(device.get()) : nullptr;
    VirtioNet* net = kind == 3 ? static_cast<VirtioNet*>(device.get()) : nullptr;
    VirtioPciDevice dev(std::move(device), memory);
    dev.set_msix_sink(std::make_shared<NullSink>());

    for (int steps = 0; in.n > 0 && steps < 4096; ++steps) {
        uint8_t op = in.u8();
        uint8_t width = static_cast<uint8_t>(1u << (op >> 6));  // 1, 2, 4, 8
        uint32_t offset = in.u32();
        uint64_t value = uint64_t{in.u32()} | uint64_t{in.u32()} << 32;
        uint8_t bytes[8];
        std::memcpy(bytes, &value, 8);
        switch (op & 0x7) {
            case 0:
                dev.config_read(offset % 0x1000, std::span<uint8_t>(bytes, width));
                break;
            case 1:
                dev.config_write(offset % 0x1000, std::span<const uint8_t>(bytes, width));
                break;
            case 2:
                dev.bar_read(0, offset % VirtioPciDevice::kBarSize, std::span<uint8_t>(bytes, width));
                break;
            case 3:
            case 4:
                // Common configuration and notifications are where the state machine lives.
                dev.bar_write(0,
                              (op & 1 ? VirtioPciDevice::kCommonOffset : VirtioPciDevice::kNotifyOffset) +
                                  offset % 0x40,
                              std::span<const uint8_t>(bytes, width));
                break;
            case 5:
                dev.bar_write(0, offset % VirtioPciDevice::kBarSize, std::span<const uint8_t>(bytes, width));
                break;
            case 6:
                dev.notify_queue(static_cast<uint16_t>(offset % 4));
                break;
            case 7:
                if (console) console->host_input(std::span<const uint8_t>(bytes, width));
                if (net && wire >= 0) {
                    std::vector<uint8_t> frame(12 + offset % 2000, static_cast<uint8_t>(value));
                    [[maybe_unused]] ssize_t n = ::send(wire, frame.data(), frame.size(), MSG_DONTWAIT);
                    net->handle_backend_events(1 /* EPOLLIN */);
                }
                (void)io->poll();
                break;
        }
    }
    if (std::getenv("VIREO_FUZZ_DEBUG")) std::fprintf(stderr, "%s\n", dev.counters().dump().c_str());
    // A reset completes once in-flight requests drain.
    uint8_t zero = 0;
    dev.bar_write(0, VirtioPciDevice::kCommonOffset + 0x14, std::span<const uint8_t>(&zero, 1));
    if (!io->drain().ok()) std::abort();
    uint8_t status = 0xFF;
    dev.bar_read(0, VirtioPciDevice::kCommonOffset + 0x14, std::span<uint8_t>(&status, 1));
    if (status != 0 || dev.in_flight() != 0) std::abort();
    if (wire >= 0) ::close(wire);
    return 0;
}
