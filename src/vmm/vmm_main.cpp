// The vireo-vmm process.
#include "vmm/vmm_main.hpp"

#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/log.hpp"
#include "kvm/kvm.hpp"
#include "vmm/console.hpp"
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

int run_checked(const VmConfig& config) {
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

    for (unsigned boot = 1;; ++boot) {
        Vm::Environment env{.kvm = *system,
                            .loop = loop,
                            .console = **console,
                            .on_stop = [&](const VmStop&) { loop.stop(); },
                            .supported_cpuid = *supported};
        auto vm = Vm::create(config, env);
        if (!vm.ok()) {
            print_error(vm.error().message());
            return 1;
        }
        current = vm->get();
        if (auto s = (*vm)->start(); !s.ok()) {
            print_error(s.error().message());
            return 1;
        }
        if (auto s = loop.run(); !s.ok()) {
            print_error(s.error().message());
            return 1;
        }
        VmStop stop = (*vm)->stop_state();
        auto touched = (*vm)->ram().resident_bytes();
        log.debug("VM stopped ({}); guest RAM touched: {} KiB", to_string(stop.reason),
                  touched.ok() ? *touched >> 10 : 0);
        (*vm)->shutdown();
        current = nullptr;
        vm->reset();
        log.debug("VM torn down");
        if (stop.reason == StopReason::kNone) stop = user_stop;

        switch (stop.reason) {
            case StopReason::kPowerOff:
                log.info("{}", stop.message);
                return 0;
            case StopReason::kReset:
                if (config.on_reboot == RebootAction::kRestart) {
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

int run_vmm(const VmConfig& config) {
    if (auto s = log::set_level(config.log_level); !s.ok()) {
        print_error(s.error().message());
        return 1;
    }
    int status = run_checked(config);
    restore_terminal();
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
    return run_vmm(*config);
}

}  // namespace vireo::vmm
