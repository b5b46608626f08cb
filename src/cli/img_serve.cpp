// `vireo img serve --nbd`: exports a disk image over NBD until SIGINT/SIGTERM.
#include <signal.h>
#include <sys/signalfd.h>

#include <cstdio>
#include <memory>
#include <string>

#include "base/log.hpp"
#include "base/unique_fd.hpp"
#include "cli/command.hpp"
#include "cli/img_diskio.hpp"
#include "disk/nbd/server.hpp"

namespace vireo::cli {

namespace {

struct ServeOptions {
    bool nbd = false;
    std::string bind;
    std::string socket;
    bool read_only = false;
    std::string export_name;
    std::string format;
    std::string file;
};

int serve(const ServeOptions& o) {
    auto fail = [](const std::string& message) {
        std::fprintf(stderr, "vireo img serve: %s\n", message.c_str());
        return 1;
    };
    if (!o.nbd) return fail("choose a protocol: --nbd");

    // SIGINT/SIGTERM arrive through a signalfd in the server's loop, which then stops cleanly.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    if (::pthread_sigmask(SIG_BLOCK, &signals, nullptr) != 0) return fail("cannot block SIGINT/SIGTERM");
    UniqueFd signal_fd(::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC));
    if (!signal_fd) return fail(os_error("signalfd").message());

    auto disk = open_disk_image(o.file, o.format, o.read_only, false);
    if (!disk.ok()) return fail(disk.error().message());

    disk::nbd::Export exp;
    exp.name = o.export_name;
    exp.description = (*disk)->describe();
    exp.backend = disk->get();
    exp.read_only = o.read_only;
    disk::nbd::ServerOptions options;
    if (!o.socket.empty()) {
        options.socket_path = o.socket;
    } else if (!o.bind.empty()) {
        options.bind = o.bind;
    }
    options.stop_fd = signal_fd.get();

    auto server = disk::nbd::Server::create(exp, options);
    if (!server.ok()) return fail(server.error().message());
    std::printf("Listening on %s (%s)\n", (*server)->address().c_str(), (*server)->uri().c_str());
    std::fflush(stdout);

    Status run = (*server)->run();
    server->reset();  // closes the sockets (and removes the Unix socket file)
    if (!run.ok()) return fail(run.error().message());
    if (!(*disk)->read_only() && !o.read_only) {
        if (auto s = (*disk)->flush(); !s.ok()) return fail(s.error().message());
    }
    disk->reset();
    log::get("nbd").info("stopped; {} flushed and closed", o.file);
    return 0;
}

}  // namespace

void register_img_serve(CLI::App& img, Context& ctx) {
    auto* cmd =
        img.add_subcommand("serve", "Export a disk image over the network (NBD) until SIGINT/SIGTERM");
    auto o = std::make_shared<ServeOptions>();
    cmd->add_flag("--nbd", o->nbd, "Serve with the NBD protocol (fixed newstyle handshake)")->required();
    auto* bind = cmd->add_option(
        "--bind", o->bind, "TCP address to listen on: ADDR:PORT, [IPV6]:PORT (default 127.0.0.1:10809)");
    auto* socket = cmd->add_option("--socket", o->socket, "Listen on a Unix socket at PATH instead of TCP");
    bind->excludes(socket);
    cmd->add_flag("--read-only", o->read_only, "Refuse writes (clients see a read-only export)");
    cmd->add_option("--export-name", o->export_name,
                    "Name of the export (clients asking for the empty default name get it too)");
    cmd->add_option("-f,--format", o->format, "Image format: raw or vhd (default: detect)");
    cmd->add_option("FILE", o->file, "Disk image to export")->required();
    cmd->callback([&ctx, o] { ctx.exit_code = serve(*o); });
}

}  // namespace vireo::cli
