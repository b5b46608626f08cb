// Image opener, format detection, creation and inspection.
#include "disk/image.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <utility>

#include "base/io.hpp"
#include "base/log.hpp"
#include "disk/raw_backend.hpp"
#include "disk/vhd_dynamic_backend.hpp"
#include "disk/vhd_fixed_backend.hpp"
#include "disk/vhd_layout.hpp"

namespace vireo::disk {

namespace fs = std::filesystem;
using namespace vhd;

std::string_view format_name(ImageFormat f) {
    switch (f) {
        case ImageFormat::kAuto:
            return "auto";
        case ImageFormat::kRaw:
            return "raw";
        case ImageFormat::kVhd:
            return "vhd";
    }
    return "?";
}

std::string_view subformat_name(VhdSubformat s) {
    switch (s) {
        case VhdSubformat::kFixed:
            return "fixed";
        case VhdSubformat::kDynamic:
            return "dynamic";
        case VhdSubformat::kDifferencing:
            return "differencing";
    }
    return "?";
}

Result<ImageFormat> parse_format(std::string_view name) {
    if (name.empty() || name == "auto") return ImageFormat::kAuto;
    if (name == "raw") return ImageFormat::kRaw;
    if (name == "vhd" || name == "vpc") return ImageFormat::kVhd;
    return make_error("unknown image format '{}' (use raw or vhd)", name);
}

Result<VhdSubformat> parse_subformat(std::string_view name) {
    if (name == "dynamic") return VhdSubformat::kDynamic;
    if (name == "fixed") return VhdSubformat::kFixed;
    return make_error("unknown VHD subformat '{}' (use dynamic or fixed)", name);
}

Status check_new_image_path(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode))
        return Error(fmt::format("{} is a directory; name the image file to create", path), EISDIR);
    return {};
}

namespace {

constexpr int kMaxChainDepth = 512;

struct Chain {
    std::vector<std::pair<dev_t, ino_t>> visited;
};

Result<uint64_t> fd_size(int fd, const std::string& path) {
    // Anything but a file or a block device (a directory reports an absurd size on some file
    // systems) is refused before a read names a confusing offset.
    struct stat st {};
    if (::fstat(fd, &st) < 0) return os_error(fmt::format("stat {}", path));
    if (S_ISDIR(st.st_mode)) return Error(fmt::format("{} is a directory, not a disk image", path), EISDIR);
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
        return make_error("{} is neither a regular file nor a block device", path);
    off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) return os_error(fmt::format("size of {}", path));
    return static_cast<uint64_t>(end);
}

Result<ImageFormat> detect_fd(int fd, const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(uint64_t size, fd_size(fd, path));
    std::array<uint8_t, kFooterSize> buf{};
    if (size >= kFooterSize) {
        VIREO_TRY(pread_exact(fd, buf, size - kFooterSize));
        if (has_footer_cookie(buf)) return ImageFormat::kVhd;
    }
    if (size >= kOldFooterSize) {
        VIREO_TRY(pread_exact(fd, std::span(buf).first(kOldFooterSize), size - kOldFooterSize));
        if (has_footer_cookie(buf)) return ImageFormat::kVhd;
    }
    if (size >= kFooterSize) {
        // A dynamic disk whose end footer was lost still has its copy at offset 0.
        VIREO_TRY(pread_exact(fd, buf, 0));
        uint32_t type = load_be<uint32_t>(buf.data() + 60);  // Footer::disk_type
        if (has_footer_cookie(buf) && (type == static_cast<uint32_t>(DiskType::kDynamic) ||
                                       type == static_cast<uint32_t>(DiskType::kDifferencing))) {
            return ImageFormat::kVhd;
        }
    }
    return ImageFormat::kRaw;
}

std::string dir_of(const std::string& path) {
    fs::path dir = fs::path(path).parent_path();
    return dir.empty() ? std::string(".") : dir.string();
}

// The footer of a VHD file without validating the rest (enough to compare identities).
Result<Footer> read_footer_only(int fd, const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(uint64_t size, fd_size(fd, path));
    if (size < kFooterSize) return make_error("{} is too small to be a VHD", path);
    std::array<uint8_t, kFooterSize> buf{};
    VIREO_TRY(pread_exact(fd, buf, size - kFooterSize));
    if (has_footer_cookie(buf)) return parse_footer(buf, fmt::format("{}: footer", path));
    VIREO_TRY(pread_exact(fd, buf, 0));
    if (has_footer_cookie(buf)) return parse_footer(buf, fmt::format("{}: footer copy at offset 0", path));
    return make_error("{} is not a VHD (no footer)", path);
}

struct ParentMatch {
    std::string path;
    Footer footer;
};

Result<ParentMatch> resolve_parent(const VhdLayout& child) {
    std::string name = parent_name(child.header);
    auto candidates = parent_candidates(child.locators, name, dir_of(child.path));
    Uuid want;
    want.bytes = child.header.parent_uuid;
    std::string label = fmt::format("disk.vhd {}: parent{}{} (UUID {})", child.path, name.empty() ? "" : " ",
                                    name.empty() ? "" : "\"" + name + "\"", want.to_string());
    if (candidates.empty())
        return make_error("{} cannot be located: the image has no parent locators or name", label);
    std::vector<std::string> tried;
    for (const auto& c : candidates) {
        int fd = ::open(c.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            tried.push_back(fmt::format("{} ({})", c, std::strerror(errno)));
            continue;
        }
        UniqueFd guard(fd);
        auto footer = read_footer_only(fd, c);
        if (!footer.ok()) {
            tried.push_back(fmt::format("{} ({})", c, footer.error().message()));
            continue;
        }
        Uuid got;
        got.bytes = footer->uuid;
        if (got != want) {
            tried.push_back(
                fmt::format("{} (its UUID is {}: a different or replaced disk)", c, got.to_string()));
            continue;
        }
        if (footer->timestamp.get() != child.header.parent_timestamp.get()) {
            log::get("disk").warn(
                "{}: parent {} has timestamp {} but the child recorded {}; the UUID matches", child.path, c,
                format_timestamp(footer->timestamp), format_timestamp(child.header.parent_timestamp));
        }
        return ParentMatch{c, *footer};
    }
    std::string list;
    for (const auto& t : tried)
        list += (list.empty() ? "" : "; ") + t;
    return make_error("{} not found (moved, renamed or replaced?); tried: {}", label, list);
}

Result<std::unique_ptr<BlockBackend>> open_internal(const std::string& path, const ImageOptions& options,
                                                    Chain& chain) {
    int flags = options.read_only ? O_RDONLY : O_RDWR;
    VIREO_ASSIGN_OR_RETURN(UniqueFd meta, open_file(path, flags));
    struct stat st {};
    if (::fstat(meta.get(), &st) < 0) return os_error(fmt::format("stat {}", path));
    ImageFormat format = options.format;
    if (format == ImageFormat::kAuto) {
        VIREO_ASSIGN_OR_RETURN(format, detect_fd(meta.get(), path));
    }
    if (format == ImageFormat::kRaw) {
        OpenOptions ro{options.read_only, options.direct};
        VIREO_ASSIGN_OR_RETURN(auto raw, RawBackend::open(path, ro));
        return std::unique_ptr<BlockBackend>(std::move(raw));
    }
    if (!S_ISREG(st.st_mode)) return make_error("disk.vhd {}: not a regular file", path);
    for (const auto& v : chain.visited) {
        if (v.first == st.st_dev && v.second == st.st_ino) {
            return make_error("disk.vhd {}: parent loop: this file is already in the chain", path);
        }
    }
    if (chain.visited.size() >= static_cast<size_t>(kMaxChainDepth)) {
        return make_error("disk.vhd {}: chain deeper than {} images", path, kMaxChainDepth);
    }
    chain.visited.emplace_back(st.st_dev, st.st_ino);
    // Shared: any number of users; `check --repair`, `resize` and `commit` take it exclusively.
    if (::flock(meta.get(), LOCK_SH | LOCK_NB) < 0) {
        return make_error("disk.vhd {}: in use by an exclusive operation (check --repair, resize or commit)",
                          path);
    }

    VIREO_ASSIGN_OR_RETURN(VhdLayout layout, read_vhd_layout(meta.get(), path, options.size_rule));
    for (const auto& w : layout.warnings)
        log::get("disk").info("disk.vhd {}: {}", path, w);
    if (layout.type == DiskType::kFixed) {
        OpenOptions ro{options.read_only, options.direct};
        VIREO_ASSIGN_OR_RETURN(auto raw, RawBackend::open(path, ro));
        return std::unique_ptr<BlockBackend>(
            new VhdFixedBackend(std::move(raw), path, layout.size.size, std::move(meta)));
    }
    UniqueFd data;
    if (options.direct) {
        VIREO_ASSIGN_OR_RETURN(data, open_file(path, flags | O_DIRECT));
    } else {
        int d = ::fcntl(meta.get(), F_DUPFD_CLOEXEC, 0);
        if (d < 0) return os_error(fmt::format("dup {}", path));
        data.reset(d);
    }
    std::unique_ptr<BlockBackend> parent;
    if (layout.type == DiskType::kDifferencing && options.open_parents) {
        VIREO_ASSIGN_OR_RETURN(ParentMatch match, resolve_parent(layout));
        ImageOptions po;
        po.read_only = true;
        po.direct = options.direct;
        po.format = ImageFormat::kVhd;
        VIREO_ASSIGN_OR_RETURN(parent, open_internal(match.path, po, chain));
    }
    VIREO_ASSIGN_OR_RETURN(auto dyn,
                           VhdDynamicBackend::create(std::move(layout), std::move(data), std::move(meta),
                                                     options.read_only, std::move(parent)));
    return std::unique_ptr<BlockBackend>(std::move(dyn));
}

// Writes a new image under a temporary name next to `path` and renames it into place, so a
// failure never leaves a half-written image behind.
class TempFile {
  public:
    static Result<TempFile> create(const std::string& path) {
        VIREO_TRY(check_new_image_path(path));
        std::string tmpl = path + ".vireo-tmp-XXXXXX";
        int fd = ::mkostemp(tmpl.data(), O_CLOEXEC);
        if (fd < 0)
            return os_error(fmt::format("create {} (a new file in directory {})", path, dir_of(path)));
        ::fchmod(fd, 0644);
        return TempFile(UniqueFd(fd), tmpl, path);
    }
    TempFile(TempFile&& o) noexcept
        : m_fd(std::move(o.m_fd)), m_tmp(std::move(o.m_tmp)), m_path(std::move(o.m_path)), m_done(o.m_done) {
        o.m_done = true;
    }
    ~TempFile() {
        if (!m_done) ::unlink(m_tmp.c_str());
    }
    int fd() const { return m_fd.get(); }
    Status commit() {
        if (::fsync(m_fd.get()) < 0) return os_error(fmt::format("fsync {}", m_tmp));
        if (::rename(m_tmp.c_str(), m_path.c_str()) < 0) return os_error(fmt::format("rename to {}", m_path));
        m_done = true;
        UniqueFd dir(::open(dir_of(m_path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dir) ::fsync(dir.get());
        return {};
    }

  private:
    TempFile(UniqueFd fd, std::string tmp, std::string path)
        : m_fd(std::move(fd)), m_tmp(std::move(tmp)), m_path(std::move(path)) {}
    UniqueFd m_fd;
    std::string m_tmp;
    std::string m_path;
    bool m_done = false;
};

Status write_footer(int fd, const Footer& f, uint64_t offset) {
    return pwrite_exact(fd, {reinterpret_cast<const uint8_t*>(&f), sizeof f}, offset);
}

struct ParentInfo {
    std::string path;  // as it will be recorded: absolute
    Footer footer;
    uint64_t size = 0;
    uint32_t block_size = 0;
};

Result<ParentInfo> load_parent(const std::string& child, const std::string& given) {
    std::string p = given;
    if (!fs::exists(p) && fs::path(given).is_relative() && fs::exists(fs::path(dir_of(child)) / given)) {
        p = (fs::path(dir_of(child)) / given).string();  // as qemu-img: relative to the new image
    }
    ImageOptions ro;
    ro.read_only = true;
    VIREO_ASSIGN_OR_RETURN(ImageFormat f, detect_format(p));
    if (f != ImageFormat::kVhd) {
        return make_error(
            "parent {} is a raw image: a differencing VHD needs a VHD parent (convert it first)", p);
    }
    // The whole chain must open: a child of an unusable parent is unusable too.
    VIREO_ASSIGN_OR_RETURN(auto disk, open_image(p, ro));
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(p, O_RDONLY));
    VIREO_ASSIGN_OR_RETURN(VhdLayout layout, read_vhd_layout(fd.get(), p));
    ParentInfo info;
    std::error_code ec;
    info.path = fs::absolute(p, ec).lexically_normal().string();
    info.footer = layout.footer;
    info.size = disk->size();
    info.block_size = layout.dynamic() ? layout.block_size : 0;
    return info;
}

}  // namespace

Result<ImageFormat> detect_format(const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
    return detect_fd(fd.get(), path);
}

Result<std::unique_ptr<BlockBackend>> open_image(const std::string& path, const ImageOptions& options) {
    Chain chain;
    return open_internal(path, options, chain);
}

Result<uint64_t> effective_create_size(const CreateOptions& o) {
    uint64_t size = o.size;
    if (o.align_1m) {
        constexpr uint64_t kMiB = 1 << 20;
        if (size > UINT64_MAX - kMiB) return make_error("size {} is too large", size);
        size = (size + kMiB - 1) / kMiB * kMiB;
    }
    if (o.format == ImageFormat::kVhd) {
        if (size % kSectorSize != 0) {
            return make_error(
                "size {} is not a multiple of 512 bytes: VHD disks hold whole sectors "
                "(round it, or use --align-1m)",
                size);
        }
        if (size > kMaxSize) return make_error("size {} is larger than the VHD maximum of 2040 GiB", size);
    }
    return size;
}

Status create_image(const std::string& path, const CreateOptions& options) {
    CreateOptions o = options;
    std::optional<ParentInfo> parent;
    if (!o.parent.empty()) {
        if (o.format == ImageFormat::kRaw)
            return make_error("a raw image cannot have a parent (-b needs -f vhd)");
        o.format = ImageFormat::kVhd;
        VIREO_ASSIGN_OR_RETURN(parent, load_parent(path, o.parent));
        if (o.size == 0) o.size = parent->size;
        if (!o.block_size_given && parent->block_size != 0) o.block_size = parent->block_size;
    }
    if (o.format == ImageFormat::kAuto) o.format = ImageFormat::kRaw;
    VIREO_ASSIGN_OR_RETURN(uint64_t size, effective_create_size(o));
    bool sparse = o.format == ImageFormat::kVhd && (parent || o.subformat != VhdSubformat::kFixed);
    if (sparse && (!std::has_single_bit(o.block_size) || o.block_size < kMinCreateBlockSize ||
                   o.block_size > (256u << 20))) {
        return make_error("block size {} is not a power of two between 4 KiB and 256 MiB", o.block_size);
    }

    VIREO_ASSIGN_OR_RETURN(TempFile tmp, TempFile::create(path));
    int fd = tmp.fd();
    auto ctx = [&path](const char* what) { return fmt::format("create {}: {}", path, what); };
    if (o.format == ImageFormat::kRaw) {
        if (::ftruncate(fd, static_cast<off_t>(size)) < 0) return os_error(ctx("set size"));
        return tmp.commit();
    }

    NewFooter nf;
    nf.size = size;
    nf.uuid = Uuid::random();
    nf.timestamp = now_timestamp();
    if (!sparse) {
        nf.type = DiskType::kFixed;
        Footer f = make_footer(nf);
        if (::ftruncate(fd, static_cast<off_t>(size + kFooterSize)) < 0) return os_error(ctx("set size"));
        VIREO_TRY_CTX(write_footer(fd, f, size), ctx("footer"));
        return tmp.commit();
    }

    nf.type = parent ? DiskType::kDifferencing : DiskType::kDynamic;
    Footer f = make_footer(nf);
    uint64_t entries = (size + o.block_size - 1) / o.block_size;
    uint64_t bat_offset = kFooterSize + kHeaderSize;
    uint64_t end = bat_offset + bat_size_for(entries);

    DynamicHeader h{};
    h.cookie = kHeaderCookie;
    // The spec says 0xFFFFFFFF here; Microsoft's tools expect all 64 bits set.
    h.data_offset = ~uint64_t{0};
    h.table_offset = bat_offset;
    h.header_version = 0x00010000;
    h.max_table_entries = static_cast<uint32_t>(entries);
    h.block_size = o.block_size;

    struct LocatorData {
        PlatformCode code;
        std::vector<uint8_t> bytes;
    };
    std::vector<LocatorData> locators;
    if (parent) {
        h.parent_uuid = parent->footer.uuid;
        h.parent_timestamp = parent->footer.timestamp;
        std::string base = fs::path(parent->path).filename().string();
        auto name = utf8_to_utf16(base, true);
        std::copy_n(name.begin(), std::min(name.size(), h.parent_name.size() - 2), h.parent_name.begin());
        std::error_code ec;
        fs::path child_dir = fs::absolute(dir_of(path), ec).lexically_normal();
        std::string rel = fs::path(parent->path).lexically_relative(child_dir).string();
        if (rel.empty()) rel = base;
        std::string w2ru = ".\\" + rel;
        for (char& c : w2ru) {
            if (c == '/') c = '\\';
        }
        // Relative first (it survives moving the chain together), absolute, then the URL blktap reads.
        locators.push_back({PlatformCode::kW2ru, utf8_to_utf16(w2ru, false)});
        locators.push_back({PlatformCode::kW2ku, utf8_to_utf16(parent->path, false)});
        std::string url = "file://" + parent->path;
        locators.push_back({PlatformCode::kMacX, std::vector<uint8_t>(url.begin(), url.end())});
        for (size_t i = 0; i < locators.size(); ++i) {
            auto& e = h.locators[i];
            uint64_t space = (locators[i].bytes.size() + kSectorSize - 1) / kSectorSize * kSectorSize;
            e.platform_code = static_cast<uint32_t>(locators[i].code);
            e.data_space = static_cast<uint32_t>(space);  // bytes, as Virtual PC and Hyper-V write it
            e.data_length = static_cast<uint32_t>(locators[i].bytes.size());
            e.data_offset = end;
            end += space;
        }
    }
    seal_header(h);

    VIREO_TRY_CTX(write_footer(fd, f, 0), ctx("footer copy"));
    VIREO_TRY_CTX(pwrite_exact(fd, {reinterpret_cast<const uint8_t*>(&h), sizeof h}, kFooterSize),
                  ctx("header"));
    std::vector<uint8_t> bat(std::min<uint64_t>(bat_size_for(entries), 1 << 20), 0xFF);
    for (uint64_t done = 0; done < bat_size_for(entries); done += bat.size()) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(bat.size(), bat_size_for(entries) - done));
        VIREO_TRY_CTX(pwrite_exact(fd, {bat.data(), n}, bat_offset + done), ctx("BAT"));
    }
    for (size_t i = 0; i < locators.size(); ++i) {
        std::vector<uint8_t> padded(h.locators[i].data_space.get(), 0);
        std::copy(locators[i].bytes.begin(), locators[i].bytes.end(), padded.begin());
        VIREO_TRY_CTX(pwrite_exact(fd, padded, h.locators[i].data_offset), ctx("parent locator"));
    }
    VIREO_TRY_CTX(write_footer(fd, f, end), ctx("footer"));
    return tmp.commit();
}

Result<std::string> find_parent(const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
    VIREO_ASSIGN_OR_RETURN(VhdLayout layout, read_vhd_layout(fd.get(), path));
    if (layout.type != DiskType::kDifferencing) return make_error("{} is not a differencing VHD", path);
    VIREO_ASSIGN_OR_RETURN(ParentMatch m, resolve_parent(layout));
    return m.path;
}

Result<ImageInfo> inspect_image(const std::string& path, const ImageOptions& options) {
    ImageInfo info;
    info.path = path;
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
    struct stat st {};
    if (::fstat(fd.get(), &st) < 0) return os_error(fmt::format("stat {}", path));
    VIREO_ASSIGN_OR_RETURN(info.file_size, fd_size(fd.get(), path));
    info.actual_size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_blocks) * 512 : info.file_size;
    info.format = options.format;
    if (info.format == ImageFormat::kAuto) {
        VIREO_ASSIGN_OR_RETURN(info.format, detect_fd(fd.get(), path));
    }
    if (info.format == ImageFormat::kRaw) {
        info.virtual_size = info.file_size;
        info.size_rule = "file_size";
        return info;
    }
    VIREO_ASSIGN_OR_RETURN(VhdLayout L, read_vhd_layout(fd.get(), path, options.size_rule));
    const Footer& f = L.footer;
    info.subformat = L.type == DiskType::kFixed     ? VhdSubformat::kFixed
                     : L.type == DiskType::kDynamic ? VhdSubformat::kDynamic
                                                    : VhdSubformat::kDifferencing;
    info.virtual_size = L.size.size;
    info.size_rule = std::string(size_rule_name(L.size.rule));
    info.size_rule_reason = L.size.reason;
    info.current_size = f.current_size;
    info.original_size = f.original_size;
    info.geometry = {f.cylinders, f.heads, f.sectors_per_track};
    info.creator_app = four_cc(f.creator_app);
    info.creator_version = f.creator_version;
    info.creator_host = four_cc(f.creator_host);
    info.timestamp = f.timestamp;
    info.uuid.bytes = f.uuid;
    info.saved_state = f.saved_state != 0;
    info.warnings = L.warnings;
    if (L.dynamic()) {
        info.block_size = L.block_size;
        info.max_table_entries = L.max_table_entries;
        info.bat_offset = L.bat_offset;
        info.allocated_blocks = L.allocated_blocks();
    }
    if (L.type != DiskType::kDifferencing) return info;
    info.parent_uuid.bytes = L.header.parent_uuid;
    info.parent_timestamp = L.header.parent_timestamp;
    info.parent_name = parent_name(L.header);
    info.parent_locators = L.locators;

    // Follow the chain through the parents' own headers.
    std::vector<std::pair<dev_t, ino_t>> seen{{st.st_dev, st.st_ino}};
    VhdLayout cur = std::move(L);
    while (cur.type == DiskType::kDifferencing) {
        auto match = resolve_parent(cur);
        if (!match.ok()) {
            info.chain_error = match.error().message();
            break;
        }
        if (match->footer.timestamp.get() != cur.header.parent_timestamp.get()) {
            info.warnings.push_back(fmt::format("parent {} has timestamp {} but {} recorded {}", match->path,
                                                format_timestamp(match->footer.timestamp), cur.path,
                                                format_timestamp(cur.header.parent_timestamp)));
        }
        auto pfd = open_file(match->path, O_RDONLY);
        if (!pfd.ok()) {
            info.chain_error = pfd.error().message();
            break;
        }
        struct stat pst {};
        ::fstat(pfd->get(), &pst);
        bool loop = false;
        for (const auto& s : seen)
            loop = loop || (s.first == pst.st_dev && s.second == pst.st_ino);
        if (loop || seen.size() >= static_cast<size_t>(kMaxChainDepth)) {
            info.chain_error = fmt::format("disk.vhd {}: parent loop at {}", path, match->path);
            break;
        }
        seen.emplace_back(pst.st_dev, pst.st_ino);
        std::error_code ec;
        info.backing_chain.push_back(fs::absolute(match->path, ec).lexically_normal().string());
        auto next = read_vhd_layout(pfd->get(), match->path);
        if (!next.ok()) {
            info.chain_error = next.error().message();
            break;
        }
        cur = std::move(*next);
    }
    return info;
}

}  // namespace vireo::disk
