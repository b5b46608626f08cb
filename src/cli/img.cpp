// `vireo img` subcommands for image files: create, info, check, convert, commit, resize,
// compare, map. Exit status 0 on success and 1 on errors, except where qemu-img defines more
// (check: 2 corruption, 3 leaks; compare: 1 different, 2 error).
#include "cli/img.hpp"

#include <unistd.h>

#include <cstdio>
#include <memory>

#include <fmt/format.h>

#include "base/size.hpp"
#include "cli/command.hpp"
#include "disk/image_ops.hpp"

namespace vireo::cli {

namespace {

std::string size_text(uint64_t bytes) {
    return fmt::format("{} ({} bytes)", format_size(bytes), bytes);
}

std::string version_text(uint32_t v) {
    return fmt::format("{}.{}", v >> 16, v & 0xFFFF);
}

int fail(const char* command, const std::string& message) {
    std::fprintf(stderr, "vireo img %s: %s\n", command, message.c_str());
    return 1;
}

// "    (12.34/100%)" as qemu-img prints it, redrawn in place on a terminal.
disk::Progress make_progress(bool enabled) {
    if (!enabled || ::isatty(STDOUT_FILENO) == 0) return {};
    auto last = std::make_shared<int>(-1);
    return [last](uint64_t done, uint64_t total) {
        int hundredths = total == 0 ? 10000 : static_cast<int>(done * 10000 / total);
        if (hundredths == *last) return;
        *last = hundredths;
        std::printf("\r    (%d.%02d/100%%)", hundredths / 100, hundredths % 100);
        std::fflush(stdout);
    };
}

void end_progress(bool enabled) {
    if (!enabled) return;
    if (::isatty(STDOUT_FILENO) != 0) {
        std::printf("\r    (100.00/100%%)\n");
    } else {
        std::printf("    (100.00/100%%)\n");
    }
    std::fflush(stdout);
}

Result<disk::ImageFormat> format_option(const std::string& text) {
    return disk::parse_format(text);
}

}  // namespace

nlohmann::json info_json(const disk::ImageInfo& i) {
    using nlohmann::json;
    bool vhd = i.format == disk::ImageFormat::kVhd;
    bool dynamic = vhd && i.subformat && *i.subformat != disk::VhdSubformat::kFixed;
    json j = {
        {"filename", i.path},
        {"format", std::string(disk::format_name(i.format))},
        {"subformat", i.subformat ? json(std::string(disk::subformat_name(*i.subformat))) : json(nullptr)},
        {"virtual_size", i.virtual_size},
        {"actual_size", i.actual_size},
        {"file_size", i.file_size},
        {"block_size", dynamic ? json(i.block_size) : json(nullptr)},
        {"backing_chain", i.backing_chain},
        {"creator_app", vhd ? json(i.creator_app) : json(nullptr)},
        {"size_rule", i.size_rule},
    };
    if (!i.warnings.empty()) j["warnings"] = i.warnings;
    if (!vhd) return j;
    j["size_rule_reason"] = i.size_rule_reason;
    j["current_size"] = i.current_size;
    j["original_size"] = i.original_size;
    j["geometry"] = {{"cylinders", i.geometry.cylinders},
                     {"heads", i.geometry.heads},
                     {"sectors_per_track", i.geometry.sectors_per_track},
                     {"size", i.geometry.bytes()}};
    j["creator_version"] = version_text(i.creator_version);
    j["creator_host"] = i.creator_host;
    j["timestamp"] = disk::vhd::format_timestamp(i.timestamp);
    j["uuid"] = i.uuid.to_string();
    j["saved_state"] = i.saved_state;
    if (dynamic) {
        j["max_table_entries"] = i.max_table_entries;
        j["allocated_blocks"] = i.allocated_blocks;
        j["bat_offset"] = i.bat_offset;
    }
    if (i.subformat == disk::VhdSubformat::kDifferencing) {
        j["parent_uuid"] = i.parent_uuid.to_string();
        j["parent_timestamp"] = disk::vhd::format_timestamp(i.parent_timestamp);
        j["parent_name"] = i.parent_name;
        json locs = json::array();
        for (const auto& l : i.parent_locators)
            locs.push_back({{"platform", disk::vhd::platform_code_name(l.platform_code)}, {"path", l.text}});
        j["parent_locators"] = locs;
        j["backing_file"] = i.backing_chain.empty() ? json(nullptr) : json(i.backing_chain.front());
        if (!i.chain_error.empty()) j["chain_error"] = i.chain_error;
    }
    return j;
}

std::string info_text(const disk::ImageInfo& i) {
    std::string out;
    auto line = [&out](std::string_view k, const std::string& v) { out += fmt::format("{}: {}\n", k, v); };
    line("image", i.path);
    line("file format", std::string(disk::format_name(i.format)));
    if (i.subformat) line("subformat", std::string(disk::subformat_name(*i.subformat)));
    line("virtual size", size_text(i.virtual_size));
    line("disk size", format_size(i.actual_size));
    if (i.format == disk::ImageFormat::kVhd) {
        line("size rule", fmt::format("{} ({})", i.size_rule, i.size_rule_reason));
        line("current size", size_text(i.current_size));
        line("geometry", fmt::format("{}/{}/{} (cylinders/heads/sectors, {} bytes)", i.geometry.cylinders,
                                     i.geometry.heads, i.geometry.sectors_per_track, i.geometry.bytes()));
        if (i.block_size != 0) {
            line("block size", size_text(i.block_size));
            line("allocated blocks", fmt::format("{} of {}", i.allocated_blocks, i.max_table_entries));
        }
        line("creator", fmt::format("\"{}\" version {} on \"{}\"", i.creator_app,
                                    version_text(i.creator_version), i.creator_host));
        line("created", disk::vhd::format_timestamp(i.timestamp));
        line("uuid", i.uuid.to_string());
        if (i.subformat == disk::VhdSubformat::kDifferencing) {
            line("parent uuid", i.parent_uuid.to_string());
            line("parent name", i.parent_name);
            for (const auto& l : i.parent_locators)
                line("parent locator",
                     fmt::format("{} {}", disk::vhd::platform_code_name(l.platform_code), l.text));
            if (!i.backing_chain.empty()) line("backing file", i.backing_chain.front());
            for (size_t k = 0; k < i.backing_chain.size(); ++k)
                line(fmt::format("backing chain [{}]", k + 1), i.backing_chain[k]);
            if (!i.chain_error.empty()) line("backing chain error", i.chain_error);
        }
    }
    for (const auto& w : i.warnings)
        line("warning", w);
    return out;
}

nlohmann::json check_json(const disk::CheckReport& r) {
    return {
        {"filename", r.path},
        {"format", std::string(disk::format_name(r.format))},
        {"subformat", r.subformat ? nlohmann::json(std::string(disk::subformat_name(*r.subformat)))
                                  : nlohmann::json(nullptr)},
        {"check_errors", 0},
        {"corruptions", r.corruptions.size()},
        {"leaks", r.leaks.size()},
        {"leaked_bytes", r.leaked_bytes},
        {"corruptions_fixed", r.corruptions_fixed},
        {"leaks_fixed", r.leaks_fixed},
        {"allocated_blocks", r.allocated_blocks},
        {"total_blocks", r.total_blocks},
        {"image_end_offset", r.image_end_offset},
        {"corruption_details", r.corruptions},
        {"leak_details", r.leaks},
        {"warnings", r.warnings},
        {"repairs", r.repairs},
        {"exit_code", r.exit_code()},
    };
}

std::string check_text(const disk::CheckReport& r) {
    std::string out;
    for (const auto& c : r.corruptions)
        out += fmt::format("ERROR {}\n", c);
    for (const auto& l : r.leaks)
        out += fmt::format("Leaked: {}\n", l);
    for (const auto& w : r.warnings)
        out += fmt::format("Warning: {}\n", w);
    if (!r.repairs.empty()) {
        out += "The following inconsistencies were found and repaired:\n\n";
        out +=
            fmt::format("    {} leaked clusters\n    {} corruptions\n\n", r.leaks_fixed, r.corruptions_fixed);
        for (const auto& x : r.repairs)
            out += fmt::format("    repaired: {}\n", x);
        out += "\n";
    }
    if (r.corruptions.empty() && r.leaks.empty()) {
        out += "No errors were found on the image.\n";
    } else {
        if (!r.corruptions.empty()) {
            out += fmt::format(
                "\n{} errors were found on the image.\n"
                "Data may be corrupted, or further writes to the image may corrupt it.\n",
                r.corruptions.size());
        }
        if (!r.leaks.empty()) {
            out += fmt::format(
                "\n{} leaked clusters were found on the image ({} bytes).\n"
                "This means waste of disk space, but no harm to data.\n",
                r.leaks.size(), r.leaked_bytes);
        }
    }
    if (r.total_blocks > 0) {
        out += fmt::format("{}/{} = {:.2f}% allocated\n", r.allocated_blocks, r.total_blocks,
                           100.0 * r.allocated_blocks / r.total_blocks);
    }
    out += fmt::format("Image end offset: {}\n", r.image_end_offset);
    return out;
}

nlohmann::json map_json(const std::vector<disk::Extent>& extents) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : extents) {
        if (!e.allocated) continue;
        nlohmann::json j = {{"start", e.offset}, {"length", e.length}, {"depth", e.depth},
                            {"data", true},      {"zero", e.zero},     {"present", true}};
        if (e.file_offset) j["offset"] = *e.file_offset;
        out.push_back(j);
    }
    return out;
}

std::string map_text(const std::vector<disk::Extent>& extents, const std::vector<std::string>& chain) {
    std::string out = fmt::format("{:<19}{:<19}{:<19}{}\n", "Offset", "Length", "Mapped to", "File");
    for (const auto& e : extents) {
        if (!e.allocated) continue;
        std::string file = e.depth >= 0 && static_cast<size_t>(e.depth) < chain.size() ? chain[e.depth] : "";
        out += fmt::format("{:<#19x}{:<#19x}{:<19}{}\n", e.offset, e.length,
                           e.file_offset ? fmt::format("{:#x}", *e.file_offset) : std::string("-"), file);
    }
    return out;
}

namespace {

struct CreateArgs {
    std::string format;
    std::string subformat = "dynamic";
    std::string block_size;
    std::string backing;
    bool align_1m = false;
    std::string file;
    std::string size;
};

int run_create(const CreateArgs& a) {
    disk::CreateOptions o;
    auto f = format_option(a.format);
    if (!f.ok()) return fail("create", f.error().message());
    o.format = *f;
    auto sub = disk::parse_subformat(a.subformat);
    if (!sub.ok()) return fail("create", sub.error().message());
    o.subformat = *sub;
    o.parent = a.backing;
    o.align_1m = a.align_1m;
    if (!a.block_size.empty()) {
        auto bs = parse_size(a.block_size);
        if (!bs.ok() || *bs > UINT32_MAX)
            return fail("create", fmt::format("invalid block size '{}'", a.block_size));
        o.block_size = static_cast<uint32_t>(*bs);
        o.block_size_given = true;
    }
    if (!a.size.empty()) {
        auto s = parse_size(a.size);
        if (!s.ok()) return fail("create", s.error().message());
        o.size = *s;
    } else if (a.backing.empty()) {
        return fail("create", "SIZE is required (unless -b PARENT gives it)");
    }
    if (o.format == disk::ImageFormat::kAuto)
        o.format = a.backing.empty() ? disk::ImageFormat::kRaw : disk::ImageFormat::kVhd;
    if (o.format == disk::ImageFormat::kRaw && (!a.block_size.empty() || a.subformat != "dynamic")) {
        return fail("create", "--subformat and --block-size apply to VHD images (-f vhd)");
    }
    if (auto s = disk::create_image(a.file, o); !s.ok()) return fail("create", s.error().message());
    auto info = disk::inspect_image(a.file);
    if (!info.ok()) return fail("create", info.error().message());
    std::string kind(disk::format_name(info->format));
    if (info->subformat) kind += " " + std::string(disk::subformat_name(*info->subformat));
    std::printf("Formatting '%s', fmt=%s size=%llu%s%s\n", a.file.c_str(), kind.c_str(),
                static_cast<unsigned long long>(info->virtual_size),
                a.backing.empty() ? "" : " backing_file=", a.backing.c_str());
    return 0;
}

struct InfoArgs {
    bool json = false;
    std::string format;
    std::string size_rule = "auto";
    std::string file;
};

int run_info(const InfoArgs& a) {
    disk::ImageOptions o;
    o.read_only = true;
    auto f = format_option(a.format);
    if (!f.ok()) return fail("info", f.error().message());
    o.format = *f;
    if (a.size_rule == "chs") {
        o.size_rule = disk::vhd::SizeRule::kChs;
    } else if (a.size_rule == "current_size") {
        o.size_rule = disk::vhd::SizeRule::kCurrentSize;
    } else if (a.size_rule != "auto") {
        return fail("info",
                    fmt::format("unknown size rule '{}' (use auto, chs or current_size)", a.size_rule));
    }
    auto info = disk::inspect_image(a.file, o);
    if (!info.ok()) return fail("info", info.error().message());
    if (a.json) {
        std::puts(info_json(*info).dump(2).c_str());
    } else {
        std::fputs(info_text(*info).c_str(), stdout);
    }
    return 0;
}

struct CheckArgs {
    bool repair = false;
    bool json = false;
    std::string format;
    std::string file;
};

int run_check(const CheckArgs& a) {
    disk::CheckOptions o;
    o.repair = a.repair;
    auto f = format_option(a.format);
    if (!f.ok()) return fail("check", f.error().message());
    o.format = *f;
    auto r = disk::check_image(a.file, o);
    if (!r.ok()) return fail("check", r.error().message());
    if (a.json) {
        std::puts(check_json(*r).dump(2).c_str());
    } else {
        std::fputs(check_text(*r).c_str(), stdout);
    }
    return r->exit_code();
}

struct ConvertArgs {
    std::string source_format;
    std::string format = "raw";
    std::string subformat = "dynamic";
    std::string block_size;
    bool align_1m = false;
    bool progress = false;
    std::string source;
    std::string destination;
};

int run_convert(const ConvertArgs& a) {
    disk::ConvertOptions o;
    auto sf = format_option(a.source_format);
    if (!sf.ok()) return fail("convert", sf.error().message());
    o.source_format = *sf;
    auto f = format_option(a.format);
    if (!f.ok()) return fail("convert", f.error().message());
    o.format = *f == disk::ImageFormat::kAuto ? disk::ImageFormat::kRaw : *f;
    auto sub = disk::parse_subformat(a.subformat);
    if (!sub.ok()) return fail("convert", sub.error().message());
    o.subformat = *sub;
    o.align_1m = a.align_1m;
    if (!a.block_size.empty()) {
        auto bs = parse_size(a.block_size);
        if (!bs.ok() || *bs > UINT32_MAX)
            return fail("convert", fmt::format("invalid block size '{}'", a.block_size));
        o.block_size = static_cast<uint32_t>(*bs);
    }
    o.progress = make_progress(a.progress);
    if (auto s = disk::convert_image(a.source, a.destination, o); !s.ok()) {
        if (a.progress && ::isatty(STDOUT_FILENO) != 0) std::printf("\n");
        return fail("convert", s.error().message());
    }
    end_progress(a.progress);
    return 0;
}

int run_commit(const std::string& child, bool progress) {
    auto parent = disk::commit_image(child, make_progress(progress));
    if (!parent.ok()) return fail("commit", parent.error().message());
    end_progress(progress);
    std::printf("Image committed into %s.\n", parent->c_str());
    return 0;
}

int run_resize(const std::string& file, const std::string& size_text_arg) {
    std::string text = size_text_arg;
    bool relative = !text.empty() && text[0] == '+';
    if (!text.empty() && text[0] == '-') return fail("resize", "shrinking is not supported");
    if (relative) text.erase(0, 1);
    auto size = parse_size(text);
    if (!size.ok()) return fail("resize", size.error().message());
    uint64_t target = *size;
    if (relative) {
        auto info = disk::inspect_image(file);
        if (!info.ok()) return fail("resize", info.error().message());
        target += info->virtual_size;
    }
    auto r = disk::resize_image(file, target);
    if (!r.ok()) return fail("resize", r.error().message());
    std::printf("Image resized from %s to %s", size_text(r->old_size).c_str(),
                size_text(r->new_size).c_str());
    if (r->blocks_moved > 0) std::printf(" (%u blocks moved to grow the BAT)", r->blocks_moved);
    std::printf(".\n");
    return 0;
}

struct CompareArgs {
    std::string format_a;
    std::string format_b;
    bool progress = false;
    std::string a;
    std::string b;
};

int run_compare(const CompareArgs& args) {
    auto error = [](const std::string& m) {
        std::fprintf(stderr, "vireo img compare: %s\n", m.c_str());
        return 2;
    };
    auto fa = format_option(args.format_a);
    if (!fa.ok()) return error(fa.error().message());
    auto fb = format_option(args.format_b);
    if (!fb.ok()) return error(fb.error().message());
    auto r = disk::compare_images(args.a, args.b, *fa, *fb, make_progress(args.progress));
    if (!r.ok()) return error(r.error().message());
    end_progress(args.progress);
    if (r->size_mismatch) {
        std::printf("Warning: Image size mismatch! (%llu and %llu bytes)\n",
                    static_cast<unsigned long long>(r->size_a), static_cast<unsigned long long>(r->size_b));
    }
    if (r->identical) {
        std::printf("Images are identical.\n");
        return 0;
    }
    std::printf("Content mismatch at offset %llu!\n", static_cast<unsigned long long>(r->first_difference));
    return 1;
}

struct MapArgs {
    bool json = false;
    std::string format;
    std::string file;
};

int run_map(const MapArgs& a) {
    auto f = format_option(a.format);
    if (!f.ok()) return fail("map", f.error().message());
    auto extents = disk::map_image(a.file, *f);
    if (!extents.ok()) return fail("map", extents.error().message());
    if (a.json) {
        std::puts(map_json(*extents).dump(2).c_str());
        return 0;
    }
    std::vector<std::string> chain{a.file};
    disk::ImageOptions o;
    o.format = *f;
    if (auto info = disk::inspect_image(a.file, o); info.ok()) {
        chain.insert(chain.end(), info->backing_chain.begin(), info->backing_chain.end());
    }
    std::fputs(map_text(*extents, chain).c_str(), stdout);
    return 0;
}

}  // namespace

void register_img(CLI::App& img, Context& ctx) {
    {
        auto* cmd =
            img.add_subcommand("create", "Create a disk image (raw, or VHD fixed, dynamic or differencing)");
        auto a = std::make_shared<CreateArgs>();
        cmd->add_option("-f,--format", a->format, "Image format: raw or vhd (default: raw; vhd with -b)");
        cmd->add_option("--subformat", a->subformat, "VHD type: dynamic (sparse) or fixed")
            ->capture_default_str();
        cmd->add_option("--block-size", a->block_size, "VHD block size, a power of two (default 2M)");
        cmd->add_option("-b,--backing", a->backing,
                        "Parent image: creates a differencing VHD of the parent's size");
        cmd->add_flag(
            "--align-1m", a->align_1m,
            "Round the size up to whole MiB (Azure accepts only such VHDs; use with --subformat fixed)");
        cmd->add_option("FILE", a->file, "Image to create")->required();
        cmd->add_option("SIZE", a->size, "Virtual size: bytes or with a suffix (512M, 10G)");
        cmd->callback([&ctx, a] { ctx.exit_code = run_create(*a); });
    }
    {
        auto* cmd =
            img.add_subcommand("info", "Describe an image: format, sizes, geometry, creator, parent chain");
        auto a = std::make_shared<InfoArgs>();
        cmd->add_flag("--json", a->json, "Print JSON");
        cmd->add_option("-f,--format", a->format, "Image format: raw or vhd (default: detect)");
        cmd->add_option("--size-rule", a->size_rule,
                        "How to size VHDs: auto (as QEMU 7.2), chs or current_size")
            ->capture_default_str();
        cmd->add_option("FILE", a->file, "Image")->required();
        cmd->callback([&ctx, a] { ctx.exit_code = run_info(*a); });
    }
    {
        auto* cmd = img.add_subcommand(
            "check", "Check an image's consistency (exit 0 clean, 2 corruption, 3 leaks only, 1 error)");
        auto a = std::make_shared<CheckArgs>();
        cmd->add_flag("-r,--repair", a->repair, "Reclaim leaked space and rewrite damaged footer copies");
        cmd->add_flag("--json", a->json, "Print JSON");
        cmd->add_option("-f,--format", a->format, "Image format: raw or vhd (default: detect)");
        cmd->add_option("FILE", a->file, "Image")->required();
        cmd->callback([&ctx, a] { ctx.exit_code = run_check(*a); });
    }
    {
        auto* cmd =
            img.add_subcommand("convert", "Copy an image into a new one of any format (sparse-aware)");
        auto a = std::make_shared<ConvertArgs>();
        cmd->add_option("-f,--source-format", a->source_format,
                        "Source format: raw or vhd (default: detect)");
        cmd->add_option("-O,--output-format", a->format, "Output format: raw or vhd")->capture_default_str();
        cmd->add_option("--subformat", a->subformat, "VHD output type: dynamic or fixed")
            ->capture_default_str();
        cmd->add_option("--block-size", a->block_size, "VHD output block size (default 2M)");
        cmd->add_flag("--align-1m", a->align_1m, "Round the output size up to whole MiB (Azure)");
        cmd->add_flag("-p,--progress", a->progress, "Show progress on a terminal");
        cmd->add_option("SOURCE", a->source, "Image to read")->required();
        cmd->add_option("DESTINATION", a->destination, "Image to write (replaced when complete)")->required();
        cmd->callback([&ctx, a] { ctx.exit_code = run_convert(*a); });
    }
    {
        auto* cmd = img.add_subcommand("commit", "Merge a differencing VHD's data into its parent");
        auto child = std::make_shared<std::string>();
        auto progress = std::make_shared<bool>(false);
        cmd->add_flag("-p,--progress", *progress, "Show progress on a terminal");
        cmd->add_option("CHILD", *child, "Differencing VHD")->required();
        cmd->callback([&ctx, child, progress] { ctx.exit_code = run_commit(*child, *progress); });
    }
    {
        auto* cmd = img.add_subcommand("resize", "Grow an image to SIZE (or by +SIZE)");
        auto file = std::make_shared<std::string>();
        auto size = std::make_shared<std::string>();
        cmd->add_option("FILE", *file, "Image")->required();
        cmd->add_option("SIZE", *size, "New size (10G) or growth (+1G)")->required();
        cmd->callback([&ctx, file, size] { ctx.exit_code = run_resize(*file, *size); });
    }
    {
        auto* cmd = img.add_subcommand(
            "compare", "Compare two images' contents (exit 0 identical, 1 different, 2 error)");
        auto a = std::make_shared<CompareArgs>();
        cmd->add_option("-f", a->format_a, "Format of the first image (default: detect)");
        cmd->add_option("-F", a->format_b, "Format of the second image (default: detect)");
        cmd->add_flag("-p,--progress", a->progress, "Show progress on a terminal");
        cmd->add_option("A", a->a, "First image")->required();
        cmd->add_option("B", a->b, "Second image")->required();
        cmd->callback([&ctx, a] { ctx.exit_code = run_compare(*a); });
    }
    {
        auto* cmd = img.add_subcommand("map", "List the allocated ranges of an image");
        auto a = std::make_shared<MapArgs>();
        cmd->add_flag("--json", a->json, "Print JSON");
        cmd->add_option("-f,--format", a->format, "Image format: raw or vhd (default: detect)");
        cmd->add_option("FILE", a->file, "Image")->required();
        cmd->callback([&ctx, a] { ctx.exit_code = run_map(*a); });
    }
}

}  // namespace vireo::cli
