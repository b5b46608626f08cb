// The vireo-vmm process.
#include "vmm/vmm_main.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "base/log.hpp"
#include "base/uuid.hpp"
#include "kvm/kvm.hpp"
#include "kvm/teardown.hpp"
#include "vmm/api/api_router.hpp"
#include "vmm/api/api_server.hpp"
#include "vmm/console.hpp"
#include "vmm/control/restore.hpp"
#include "vmm/control/vm_control.hpp"
#include "vmm/event_loop.hpp"
#include "vmm/vm.hpp"
#include "vmm/vm_options.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::vmm {
namespace {

void print_error(const std::string& message) {
    restore_terminal();
    std::fprintf(stderr, "vireo-vmm: %s\n", message.c_str());
}

// `teardown` receives a duplicate of the last VM's KVM file when the process is about to end, for
// kvm::hand_off_teardown.
int run_checked(const VmConfig& host_config, const std::string& restore_dir, UniqueFd& teardown) {
    auto& log = log::get("vmm");
    // Signals that end the VM arrive through the loop; vCPU threads inherit the mask.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    for (int sig : {SIGINT, SIGTERM, SIGHUP})
        sigaddset(&stop_signals, sig);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    auto system = kvm::System::open();
    if (!system.ok()) {
        print_error(system.error().message());
        return 1;
    }
    for (auto cap : {kvm::kCapIrqchip, kvm::kCapPit2, kvm::kCapUserMemory, kvm::kCapTssAddr,
                     kvm::kCapExtCpuid, kvm::kCapImmediateExit, kvm::kCapIrqRouting}) {
        if (auto s = system->require(cap); !s.ok()) {
            print_error(s.error().message());
            return 1;
        }
    }
    auto supported = system->supported_cpuid();
    if (!supported.ok()) {
        print_error(supported.error().message());
        return 1;
    }

    // A snapshot is read and checked (format, host CPU, state files) before anything starts.
    VmConfig config = host_config;
    std::optional<RestorePlan> restore;
    auto restore_start = std::chrono::steady_clock::now();
    if (!restore_dir.empty()) {
        auto plan = load_snapshot(restore_dir, *system, host_config);
        if (!plan.ok()) {
            print_error(plan.error().message());
            return 1;
        }
        restore.emplace(std::move(plan).value());
        config = restore->config;
    }

    auto loop_result = EventLoop::create();
    if (!loop_result.ok()) {
        print_error(loop_result.error().message());
        return 1;
    }
    EventLoop& loop = **loop_result;

    Vm* current = nullptr;
    VmStop user_stop;  // a stop that came from outside the VM
    auto stop_vm = [&](VmStop stop) {
        if (current != nullptr) {
            current->request_stop(std::move(stop));
        } else {
            user_stop = stop;
            loop.stop();
        }
    };
    auto console = Console::create(config.serial, loop, [&] { stop_vm({StopReason::kQuit, "Ctrl-A x", 0}); });
    if (!console.ok()) {
        print_error(console.error().message());
        return 1;
    }

    int sfd = ::signalfd(-1, &stop_signals, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        print_error(fmt::format("signalfd: {}", std::strerror(errno)));
        return 1;
    }
    UniqueFd signal_fd(sfd);
    auto signal_token = loop.add(sfd, EPOLLIN, [&](uint32_t) {
        signalfd_siginfo info{};
        if (::read(sfd, &info, sizeof info) == sizeof info) {
            int sig = static_cast<int>(info.ssi_signo);
            stop_vm(
                {StopReason::kSignal, fmt::format("stopped by signal {} ({})", sig, ::strsignal(sig)), sig});
        }
    });
    if (!signal_token.ok()) {
        print_error(signal_token.error().message());
        return 1;
    }

    // The control API, on a thread of its own (see api_server.hpp), up before the VM is built
    // so a manager can connect as soon as the process runs.
    VmControl control(Uuid::random().to_string(), config, *system, loop);
    api::ApiRouter router(control);
    std::unique_ptr<api::ApiServer> api_server;
    if (!config.api_socket.empty()) {
        auto server =
            api::ApiServer::start({.socket_path = config.api_socket},
                                  [&router](const api::HttpRequest& r) { return router.handle(r); });
        if (!server.ok()) {
            print_error(server.error().message());
            return 1;
        }
        api_server = std::move(server).value();
        log.info("control API on {}", config.api_socket);
    }
    struct StopControl {
        VmControl& control;
        ~StopControl() { control.set_stopped(); }
    } stop_control{control};

    for (unsigned boot = 1;; ++boot) {
        Vm::Environment env{.kvm = *system,
                            .loop = loop,
                            .console = **console,
                            .on_stop = [&](const VmStop&) { loop.stop(); },
                            .supported_cpuid = *supported};
        auto vm = restore && boot == 1 ? restore_vm(*restore, env) : Vm::create(config, env);
        if (!vm.ok()) {
            print_error(vm.error().message());
            return 1;
        }
        current = vm->get();
        if (auto s = (*vm)->start(); !s.ok()) {
            print_error(s.error().message());
            return 1;
        }
        control.attach(vm->get());
        if (restore && boot == 1) {
            // Snapshot read and checked, VM built around the mapped memory, state loaded, vCPUs
            // running: what "restore time" means in docs/BENCHMARKS.md.
            auto us = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                            restore_start);
            log.info("restored from {} in {:.1f} ms", restore_dir, static_cast<double>(us.count()) / 1000.0);
        }
        if (auto s = loop.run(); !s.ok()) {
            print_error(s.error().message());
            return 1;
        }
        VmStop stop = (*vm)->stop_state();
        control.detach();  // waits for an API operation in progress
        if (log.should_log(spdlog::level::debug)) {
            // Counting touched pages walks the whole guest RAM (mincore): only when it is logged.
            auto touched = (*vm)->ram().resident_bytes();
            log.debug("VM stopped ({}); guest RAM touched: {} KiB", to_string(stop.reason),
                      touched.ok() ? *touched >> 10 : 0);
        }
        (*vm)->shutdown();
        current = nullptr;
        if (stop.reason == StopReason::kNone) stop = user_stop;
        bool restart = stop.reason == StopReason::kReset &&
                       (config.on_reboot == RebootAction::kRestart || control.take_reboot_request());
        // The last VM of the process: keep its KVM file for the hand-off once everything else
        // is closed. A VM that restarts is torn down here, as the next one is built in its place.
        if (!restart) teardown.reset(::fcntl((*vm)->kvm_vm().fd(), F_DUPFD_CLOEXEC, 0));
        vm->reset();
        log.debug("VM torn down");

        switch (stop.reason) {
            case StopReason::kPowerOff:
                log.info("{}", stop.message);
                return 0;
            case StopReason::kReset:
                if (restart) {
                    log.info("{}: restarting (boot {})", stop.message, boot + 1);
                    continue;
                }
                log.info("{}: exiting (--on-reboot exit)", stop.message);
                return 0;
            case StopReason::kQuit:
                log.info("quit ({})", stop.message);
                return 0;
            case StopReason::kSignal:
                print_error(stop.message);
                return 128 + stop.signal;
            case StopReason::kFatal:
                print_error(stop.message);
                return 1;
            case StopReason::kNone:
                print_error("the VM stopped for no known reason");
                return 1;
        }
    }
}

}  // namespace

int run_vmm(const VmConfig& config, const std::string& restore_dir) {
    if (auto s = log::set_level(config.log_level); !s.ok()) {
        print_error(s.error().message());
        return 1;
    }
    UniqueFd teardown;
    int status = run_checked(config, restore_dir, teardown);
    restore_terminal();
    if (teardown) {
        // Everything else is closed by now; KVM's own cleanup of the VM runs beside our exit.
        if (auto s = kvm::hand_off_teardown(std::move(teardown)); !s.ok())
            log::get("vmm").debug("VM teardown stays in this process: {}", s.error().message());
    }
    return status;
}

int vmm_main(int argc, char** argv) {
    CLI::App app{"vireo-vmm: runs one virtual machine on KVM in the foreground", "vireo-vmm"};
    app.set_version_flag("--version", "vireo-vmm " VIREO_VERSION);
    VmOptions options;
    add_vm_options(app, options);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return app.exit(e);
    }
    if (options.list_cpu_features) {
        std::fputs(cpu_feature_list().c_str(), stdout);
        return 0;
    }
    auto config = finish_options(options);
    if (!config.ok()) {
        print_error(config.error().message());
        return 1;
    }
    if (!options.restore.empty() && !options.config.kernel.empty()) {
        print_error("--restore and --kernel exclude each other: a snapshot brings its own guest");
        return 1;
    }
    return run_vmm(*config, options.restore);
}

}  // namespace vireo::vmm
