// A VM's PCI bus and virtio devices, wired to KVM and the event loop.
#include "vmm/pci_devices.hpp"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include <fmt/format.h>

#include "arch/x86/layout.hpp"
#include "base/log.hpp"
#include "devices/pci/config_access.hpp"
#include "devices/virtio/block.hpp"
#include "devices/virtio/console.hpp"
#include "devices/virtio/net.hpp"
#include "devices/virtio/rng.hpp"
#include "devices/virtio/tap.hpp"
#include "disk/image.hpp"

namespace vireo::vmm {

namespace layout = arch::x86::layout;
using devices::virtio::VirtioPciDevice;

struct PciDevices::Function {
    std::shared_ptr<VirtioPciDevice> dev;
    std::shared_ptr<IrqfdMsixVectors> msix;
    std::string type;
    uint8_t slot = 0;
    std::shared_ptr<disk::BlockBackend> disk;
    std::vector<UniqueFd> notify;  // one eventfd per queue: ioeventfd target and notify hook
    std::vector<EventLoop::Token> tokens;
    std::optional<uint64_t> ioeventfd_base;  // BAR address the ioeventfds sit at now
};

// Moves the ioeventfds of a virtio function's notify registers with its BAR.
class PciDevices::BarListener final : public devices::pci::PciBarListener {
  public:
    explicit BarListener(PciDevices& owner) : m_owner(owner) {}
    void bar_mapped(devices::pci::PciDevice& d, const devices::pci::DecodedBar& bar) override {
        m_owner.bar_moved(d, bar, true);
    }
    void bar_unmapped(devices::pci::PciDevice& d, const devices::pci::DecodedBar& bar) override {
        m_owner.bar_moved(d, bar, false);
    }

  private:
    PciDevices& m_owner;
};

namespace {

// The PCI configuration mechanism and ECAM hold a reference to the bus; they leave the address
// map with it.
constexpr uint64_t kEcamSize = devices::pci::PciEcam::size_for(1);  // bus 0, as MCFG says

void write_all(int fd, std::span<const uint8_t> bytes) {
    while (!bytes.empty()) {
        ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // output is best effort: a full disk must not stop the guest
        bytes = bytes.subspan(static_cast<size_t>(n));
    }
}

}  // namespace

PciDevices::PciDevices(const Environment& env) : m_env(env) {}

Result<std::unique_ptr<PciDevices>> PciDevices::create(const VmConfig& config, const Environment& env) {
    std::unique_ptr<PciDevices> p(new PciDevices(env));
    std::array<std::shared_ptr<devices::IrqLine>, 4> intx;
    for (size_t i = 0; i < 4; ++i)
        intx[i] = env.irq_line(layout::kIrqPciIntx[i]);
    p->m_bus = std::make_unique<devices::pci::PciBus>(env.mmio, env.pio, devices::pci::PciBusConfig{}, intx);
    p->m_listener = std::make_shared<BarListener>(*p);
    p->m_bus->add_listener(p->m_listener);
    VIREO_TRY_CTX(env.pio.insert(std::make_shared<devices::pci::PciConfigIo>(*p->m_bus, env.reset_register),
                                 devices::pci::PciConfigIo::kBase, devices::pci::PciConfigIo::kLength),
                  "PCI configuration ports");
    VIREO_TRY_CTX(
        env.mmio.insert(std::make_shared<devices::pci::PciEcam>(*p->m_bus), layout::kPciEcamStart, kEcamSize),
        "PCI ECAM");

    if (!config.disks.empty()) {
        VIREO_ASSIGN_OR_RETURN(p->m_io, disk::IoContext::create(256, /*allow_fallback=*/true));
        if (!p->m_io->uses_io_uring())
            log::get("vmm").warn("io_uring is not available: disk I/O runs synchronously on the I/O thread");
        disk::IoContext* io = p->m_io.get();
        VIREO_ASSIGN_OR_RETURN(p->m_io_token,
                               env.loop.add(io->event_fd(), EPOLLIN, [io](uint32_t) { io->poll(); }));
    }
    for (const DiskConfig& d : config.disks) {
        VIREO_ASSIGN_OR_RETURN(disk::ImageFormat format,
                               disk::parse_format(d.format == "auto" ? "" : d.format));
        auto opened =
            disk::open_image(d.path, disk::ImageOptions{.read_only = d.read_only, .format = format});
        if (!opened.ok()) return std::move(opened).error().context(fmt::format("--disk {}", d.path));
        std::shared_ptr<disk::BlockBackend> backend(std::move(*opened));
        if (backend->size() < devices::virtio::VirtioBlock::kSectorSize)
            return make_error("--disk {}: the image is smaller than one sector", d.path);
        log::get("vmm").debug("disk {}: {}", d.path, backend->describe());
        auto blk = std::make_unique<devices::virtio::VirtioBlock>(
            backend, *p->m_io, devices::virtio::BlockOptions{.serial = d.serial, .read_only = d.read_only});
        VIREO_TRY_CTX(p->add_function(std::move(blk), "block", backend), fmt::format("--disk {}", d.path));
    }
    for (const NetConfig& n : config.nets) {
        auto tap = devices::virtio::Tap::open(n.tap);
        if (!tap.ok()) return std::move(tap).error().context("--net");
        devices::virtio::NetOptions options;
        if (!n.mac.empty()) {
            VIREO_ASSIGN_OR_RETURN(options.mac, devices::virtio::parse_mac(n.mac));
        }
        auto net = std::make_unique<devices::virtio::VirtioNet>(std::move(*tap), options);
        log::get("vmm").debug("net {}: MAC {}", n.tap, devices::virtio::format_mac(net->mac()));
        VIREO_TRY_CTX(p->add_function(std::move(net), "net"), fmt::format("--net tap={}", n.tap));
    }
    if (config.console.mode != VirtioConsoleMode::kNone) {
        PciDevices* self = p.get();
        auto console = std::make_unique<devices::virtio::VirtioConsole>(
            [self](std::span<const uint8_t> bytes) { write_all(self->m_console_out, bytes); });
        devices::virtio::VirtioConsole& ref = *console;
        VIREO_TRY(p->setup_console(config.console, ref));
        VIREO_TRY_CTX(p->add_function(std::move(console), "console"), "--console");
        if (config.console.mode == VirtioConsoleMode::kStdio) {
            // Input from stdin, stopped while the guest has not taken what we hold.
            p->m_console = &ref;
            auto token =
                env.loop.add(STDIN_FILENO, EPOLLIN, [self](uint32_t) { self->read_console_input(); });
            if (token.ok()) {
                p->m_console_input_token = *token;
                p->m_host_tokens.push_back(*token);
                EventLoop* loop = &env.loop;
                std::weak_ptr<bool> alive = p->m_alive;
                ref.set_input_space_callback([self, loop, alive] {
                    loop->post([self, alive] {
                        if (alive.expired()) return;
                        if (self->m_console_input_paused && self->m_console_input_token != 0) {
                            self->m_console_input_paused = false;
                            (void)self->m_env.loop.modify(self->m_console_input_token, EPOLLIN);
                        }
                    });
                });
            } else {
                log::get("vmm").info("--console stdio: stdin cannot be watched ({}); no console input",
                                     token.error().message());
            }
        }
    }
    if (config.rng)
        VIREO_TRY_CTX(p->add_function(std::make_unique<devices::virtio::VirtioRng>(), "rng"), "--rng");
    return p;
}

Status PciDevices::setup_console(const VirtioConsoleConfig& config,
                                 devices::virtio::VirtioConsole& /*console*/) {
    if (config.mode == VirtioConsoleMode::kFile) {
        m_console_file =
            UniqueFd(::open(config.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!m_console_file) return os_error(fmt::format("--console file:{}", config.path));
        m_console_out = m_console_file.get();
    } else {
        m_console_out = STDOUT_FILENO;
    }
    return {};
}

void PciDevices::read_console_input() {
    if (m_console == nullptr) return;
    size_t room = devices::virtio::VirtioConsole::kInputLimit - m_console->pending_input();
    if (room == 0) {
        // Level-triggered: stop watching until the guest drains what we hold.
        m_console_input_paused = true;
        (void)m_env.loop.modify(m_console_input_token, 0);
        return;
    }
    uint8_t buf[4096];
    ssize_t n = ::read(STDIN_FILENO, buf, std::min(room, sizeof buf));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        m_env.loop.remove(m_console_input_token);
        std::erase(m_host_tokens, m_console_input_token);
        m_console_input_token = 0;
        return;
    }
    m_console->host_input({buf, static_cast<size_t>(n)});
}

Status PciDevices::add_function(std::unique_ptr<devices::virtio::VirtioDevice> device, std::string type,
                                std::shared_ptr<disk::BlockBackend> disk) {
    auto fn = std::make_unique<Function>();
    fn->type = std::move(type);
    fn->disk = std::move(disk);
    auto host_sources = device->host_event_sources();
    fn->dev = std::make_shared<VirtioPciDevice>(std::move(device), m_env.memory);
    fn->msix = std::make_shared<IrqfdMsixVectors>(m_env.kvm, m_env.routing, m_env.msi_fallback,
                                                  static_cast<uint16_t>(fn->dev->num_queues() + 1));
    fn->dev->set_msix_sink(fn->msix);

    // Queue notifications: the ioeventfd (registered when the BAR is mapped) and the notify hook
    // both signal the queue's eventfd; the loop runs the device.
    for (uint16_t q = 0; q < fn->dev->num_queues(); ++q) {
        UniqueFd efd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (!efd) return os_error("eventfd");
        int raw = efd.get();
        VirtioPciDevice* dev = fn->dev.get();
        VIREO_ASSIGN_OR_RETURN(EventLoop::Token token, m_env.loop.add(raw, EPOLLIN, [raw, dev, q](uint32_t) {
            uint64_t count;
            if (::read(raw, &count, sizeof count) == sizeof count) dev->notify_queue(q);
        }));
        fn->tokens.push_back(token);
        fn->notify.push_back(std::move(efd));
    }
    std::vector<int> fds;
    for (const auto& f : fn->notify)
        fds.push_back(f.get());
    fn->dev->set_notify_hook([fds](uint16_t q) {
        if (q >= fds.size()) return;
        uint64_t one = 1;
        [[maybe_unused]] ssize_t n = ::write(fds[q], &one, sizeof one);
    });
    for (auto& source : host_sources) {
        VIREO_ASSIGN_OR_RETURN(EventLoop::Token token,
                               m_env.loop.add(source.fd, source.events | EPOLLET, std::move(source.handler)));
        m_host_tokens.push_back(token);
    }
    Function* raw_fn = fn.get();
    m_functions.push_back(std::move(fn));  // before add_device: the BAR listener looks it up
    auto slot = m_bus->add_device(raw_fn->dev);
    if (!slot.ok()) {
        for (auto t : raw_fn->tokens)
            m_env.loop.remove(t);
        m_functions.pop_back();
        return std::move(slot).error();
    }
    raw_fn->slot = *slot;
    log::get("vmm").debug("pci 00:{:02x}.0: {} (BAR0 0x{:x})", *slot, raw_fn->dev->name(),
                          m_bus->bar_address(*slot, VirtioPciDevice::kBar).value_or(0));
    return {};
}

void PciDevices::bar_moved(devices::pci::PciDevice& device, const devices::pci::DecodedBar& bar,
                           bool mapped) {
    if (bar.index != VirtioPciDevice::kBar) return;
    for (auto& fn : m_functions) {
        if (fn->dev.get() != &device) continue;
        auto regions = fn->dev->notify_regions();
        if (!mapped) {
            if (!fn->ioeventfd_base) return;
            for (const auto& r : regions) {
                (void)m_env.kvm.ioeventfd_remove(fn->notify[r.queue].get(),
                                                 *fn->ioeventfd_base + r.bar_offset, r.length, false);
            }
            fn->ioeventfd_base.reset();
            return;
        }
        for (const auto& r : regions) {
            if (auto s =
                    m_env.kvm.ioeventfd(fn->notify[r.queue].get(), bar.base + r.bar_offset, r.length, false);
                !s.ok()) {
                // The notify write then exits to the vCPU thread, whose hook signals the same
                // eventfd: slower, still correct.
                log::get("vmm").warn("{}: ioeventfd for queue {}: {}", fn->dev->name(), r.queue,
                                     s.error().message());
            }
        }
        fn->ioeventfd_base = bar.base;
        return;
    }
}

PciDevices::~PciDevices() {
    m_alive.reset();
    for (auto t : m_host_tokens)
        m_env.loop.remove(t);
    for (auto& fn : m_functions) {
        for (auto t : fn->tokens)
            m_env.loop.remove(t);
        if (fn->ioeventfd_base) {
            for (const auto& r : fn->dev->notify_regions())
                (void)m_env.kvm.ioeventfd_remove(fn->notify[r.queue].get(),
                                                 *fn->ioeventfd_base + r.bar_offset, r.length, false);
        }
    }
    if (m_io_token != 0) m_env.loop.remove(m_io_token);
    if (m_io) {
        // Requests still in flight write into guest memory: let them land (bounded).
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (m_io->in_flight() > 0 && std::chrono::steady_clock::now() < deadline)
            (void)m_io->wait(100);
    }
    m_env.pio.remove(devices::pci::PciConfigIo::kBase);
    m_env.mmio.remove(layout::kPciEcamStart);
    m_bus.reset();  // unmaps the BARs
}

nlohmann::json PciDevices::counters() const {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& fn : m_functions) {
        nlohmann::json c = fn->dev->counters();
        c["name"] = fn->dev->name();
        c["type"] = fn->type;
        c["slot"] = fn->slot;
        c["msix_irqfd"] = fn->msix->irqfd_deliveries();
        c["msix_fallback"] = fn->msix->fallback_deliveries();
        out.push_back(std::move(c));
    }
    return out;
}

Status PciDevices::drain(int timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    auto busy = [this] { return in_flight(); };
    while (busy() > 0) {
        if (!m_io) break;
        if (std::chrono::steady_clock::now() >= deadline)
            return make_error("pci: {} disk requests still in flight after {} ms", busy(), timeout_ms);
        VIREO_TRY(m_io->wait(50));
    }
    // Interrupts deferred to the end of the last completion burst go out too.
    if (m_io) m_io->poll();
    return {};
}

Status PciDevices::flush_disks() {
    for (const auto& fn : m_functions) {
        if (!fn->disk || fn->disk->read_only()) continue;
        VIREO_TRY_CTX(fn->disk->flush(), fn->dev->name());
    }
    return {};
}

std::vector<std::string> PciDevices::disk_paths() const {
    std::vector<std::string> paths;
    for (const auto& fn : m_functions) {
        if (fn->disk) paths.push_back(fn->disk->describe());
    }
    return paths;
}

size_t PciDevices::in_flight() const {
    size_t n = 0;
    for (const auto& fn : m_functions)
        n += fn->dev->in_flight();
    return n;
}

nlohmann::json PciDevices::save_state() const {
    nlohmann::json functions = nlohmann::json::array();
    for (const auto& fn : m_functions) {
        if (fn->dev->in_flight() != 0)
            log::get("vmm").error("{}: saved with {} requests in flight (not drained): they are lost",
                                  fn->dev->name(), fn->dev->in_flight());
        functions.push_back(
            nlohmann::json{{"slot", fn->slot}, {"type", fn->type}, {"state", fn->dev->save_state()}});
    }
    return nlohmann::json{{"version", 1}, {"functions", functions}};
}

Status PciDevices::restore_state(const nlohmann::json& state) {
    if (!state.is_object() || state.value("version", 0) != 1 || !state.contains("functions") ||
        !state["functions"].is_array())
        return make_error("pci snapshot: not a version 1 device list");
    const auto& saved = state["functions"];
    if (saved.size() != m_functions.size())
        return make_error("pci snapshot: {} functions saved, {} configured", saved.size(),
                          m_functions.size());
    for (size_t i = 0; i < saved.size(); ++i) {
        const auto& s = saved[i];
        const Function& fn = *m_functions[i];
        if (!s.is_object() || s.value("slot", -1) != fn.slot || s.value("type", std::string()) != fn.type)
            return make_error("pci snapshot: function {} is not the {} in slot {}", i, fn.type, fn.slot);
        if (!s.contains("state")) return make_error("pci snapshot: function {} has no state", i);
    }
    for (size_t i = 0; i < saved.size(); ++i)
        VIREO_TRY(m_functions[i]->dev->restore_state(saved[i]["state"]));
    m_bus->refresh_mappings();
    return {};
}

}  // namespace vireo::vmm
