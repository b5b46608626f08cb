// `vireo img bench`: qemu-img bench's options, output and workload, on Vireo's async disk path.
#include <charconv>
#include <cinttypes>
#include <climits>
#include <cstdio>
#include <memory>
#include <string>

#include "base/size.hpp"
#include "cli/command.hpp"
#include "cli/img_diskio.hpp"
#include "disk/disk_bench.hpp"
#include "disk/io_context.hpp"

namespace vireo::cli {

namespace {

struct BenchOptions {
    std::string count = "75000";
    std::string depth = "64";
    std::string format;
    std::string flush_interval;
    std::string aio;
    bool native = false;
    bool no_drain = false;
    std::string offset;
    std::string pattern;
    bool quiet = false;
    std::string size;
    std::string step;
    std::string cache = "writeback";
    bool write = false;
    bool force_share = false;
    std::string file;
};

// Numbers as qemu-img takes them: decimal or 0x-hex, optionally with a size suffix (4K, 1M).
Result<uint64_t> parse_number(const std::string& text, uint64_t max, const char* what) {
    auto invalid = [&] { return make_error("Invalid {} specified", what); };
    uint64_t value = 0;
    if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        auto [end, ec] = std::from_chars(text.data() + 2, text.data() + text.size(), value, 16);
        if (ec != std::errc() || end != text.data() + text.size()) return invalid();
    } else {
        auto v = parse_size(text);
        if (!v.ok()) return invalid();
        value = *v;
    }
    if (value > max) return invalid();
    return value;
}

int bench(const BenchOptions& o) {
    auto fail = [](const std::string& message) {
        std::fprintf(stderr, "vireo img bench: %s\n", message.c_str());
        return 1;
    };
    disk::BenchConfig config;
    config.write = o.write;
    // Limits as qemu-img's: counts and sizes are C ints there.
    auto count = parse_number(o.count, INT_MAX, "request count");
    if (!count.ok()) return fail(count.error().message());
    config.count = *count;
    auto depth = parse_number(o.depth, INT_MAX, "queue depth");
    if (!depth.ok() || *depth < 1) return fail("Invalid queue depth specified");
    config.depth = static_cast<uint32_t>(*depth);
    if (!o.offset.empty()) {
        auto offset = parse_number(o.offset, INT64_MAX, "offset");
        if (!offset.ok()) return fail(offset.error().message());
        config.offset = *offset;
    }
    if (!o.size.empty()) {
        auto size = parse_number(o.size, INT_MAX, "buffer size");
        if (!size.ok()) return fail(size.error().message());
        config.size = *size;
    }
    if (!o.step.empty()) {
        auto step = parse_number(o.step, INT_MAX, "step size");
        if (!step.ok()) return fail(step.error().message());
        config.step = *step;
    }
    if (!o.pattern.empty()) {
        auto pattern = parse_number(o.pattern, 0xff, "pattern byte");
        if (!pattern.ok()) return fail(pattern.error().message());
        config.pattern = static_cast<uint8_t>(*pattern);
    }
    if (!o.flush_interval.empty()) {
        auto interval = parse_number(o.flush_interval, INT_MAX, "flush interval");
        if (!interval.ok()) return fail(interval.error().message());
        config.flush_interval = *interval;
    }
    config.drain_on_flush = !o.no_drain;

    // Cache modes as QEMU names them: none/off and directsync bypass the page cache (O_DIRECT);
    // writethrough and directsync make every write durable before it completes; unsafe drops
    // flushes.
    bool direct = false;
    if (o.cache == "none" || o.cache == "off") {
        direct = true;
    } else if (o.cache == "directsync") {
        direct = true;
        config.flush_every_write = true;
    } else if (o.cache == "writethrough") {
        config.flush_every_write = true;
    } else if (o.cache == "unsafe") {
        config.ignore_flushes = true;
    } else if (o.cache != "writeback") {
        return fail("Invalid cache mode");
    }
    // io_uring is Vireo's engine: -n (native) and -i io_uring/native select it.
    if (!o.aio.empty() && o.aio != "io_uring" && o.aio != "native") {
        if (o.aio == "threads") {
            return fail(
                "aio mode 'threads' is not available: Vireo's I/O engine is io_uring (-i io_uring, -n)");
        }
        return fail(fmt::format("Invalid aio option: {}", o.aio));
    }
    if (!config.write && config.flush_interval != 0)
        return fail("--flush-interval is only available in write tests");
    if (config.flush_interval != 0 && config.flush_interval < config.depth) {
        return fail("Flush interval can't be smaller than depth");
    }

    auto disk = open_disk_image(o.file, o.format, !config.write, direct);
    if (!disk.ok()) return fail(fmt::format("Could not open '{}': {}", o.file, disk.error().message()));
    unsigned entries = static_cast<unsigned>(std::clamp<uint64_t>(uint64_t{config.depth} * 2, 64, 4096));
    auto ctx = disk::IoContext::create(entries);
    if (!ctx.ok()) return fail(ctx.error().message());
    if (!(*ctx)->uses_io_uring() && !o.quiet) {
        std::fprintf(stderr, "vireo img bench: io_uring is unavailable here; requests run synchronously\n");
    }

    std::printf("Sending %" PRIu64 " %s requests, %" PRIu64 " bytes each, %" PRIu32
                " in parallel (starting at offset %" PRIu64 ", step size %" PRIu64 ")\n",
                config.count, config.write ? "write" : "read", config.size, config.depth, config.offset,
                config.step != 0 ? config.step : config.size);
    if (config.flush_interval != 0)
        std::printf("Sending flush every %" PRIu64 " requests\n", config.flush_interval);
    std::fflush(stdout);

    auto result = disk::run_bench(**disk, **ctx, config);
    if (!result.ok()) return fail(fmt::format("Failed request: {}", result.error().message()));
    std::printf("Run completed in %3.3f seconds.\n", result->seconds);
    std::fflush(stdout);
    // Like qemu-img, closing the image flushes it (outside the timing).
    if (config.write && !config.ignore_flushes) {
        if (auto s = (*disk)->flush(); !s.ok()) return fail(s.error().message());
    }
    return 0;
}

}  // namespace

void register_img_bench(CLI::App& img, Context& ctx) {
    auto* cmd = img.add_subcommand(
        "bench", "Run a simple image benchmark: the options, workload and output of qemu-img bench");
    auto o = std::make_shared<BenchOptions>();
    cmd->add_option("-c", o->count, "Number of requests (default 75000)");
    cmd->add_option("-d", o->depth, "Requests in flight at once (default 64)");
    cmd->add_option("-f", o->format, "Image format: raw or vhd (vpc) (default: detect)");
    cmd->add_option("--flush-interval", o->flush_interval, "Flush after every N requests (write tests)");
    cmd->add_option("-i", o->aio, "AIO mode: io_uring or native (both are Vireo's io_uring engine)");
    cmd->add_flag("-n", o->native, "Native AIO (Vireo: io_uring, the default)");
    cmd->add_flag("--no-drain", o->no_drain, "Do not wait for requests in flight before each flush");
    cmd->add_option("-o", o->offset, "Offset of the first request (default 0)");
    cmd->add_option("--pattern", o->pattern, "Byte written by write requests (default 0)");
    cmd->add_flag("-q", o->quiet, "Quiet: no warnings");
    cmd->add_option("-s", o->size, "Bytes per request (default 4K)");
    cmd->add_option("-S", o->step, "Offset increment between requests (default: the request size)");
    cmd->add_option("-t", o->cache,
                    "Cache mode: none (O_DIRECT), writeback, writethrough, directsync, unsafe");
    cmd->add_flag("-w", o->write, "Write requests (default: read)");
    cmd->add_flag("-U,--force-share", o->force_share,
                  "Accepted for compatibility; Vireo takes no image lock here");
    cmd->add_option("FILE", o->file, "Image to benchmark")->required();
    cmd->callback([&ctx, o] { ctx.exit_code = bench(*o); });
}

}  // namespace vireo::cli
