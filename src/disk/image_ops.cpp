// convert, commit, resize, compare, map.
#include "disk/image_ops.hpp"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "base/io.hpp"
#include "disk/image_check.hpp"
#include "disk/iov.hpp"
#include "disk/vhd_dynamic_backend.hpp"
#include "disk/vhd_layout.hpp"

namespace vireo::disk {

namespace fs = std::filesystem;
using namespace vhd;

namespace {

constexpr uint64_t kChunk = 1 << 20;
constexpr uint64_t kZeroGranule = 4096;

struct AlignedBuffer {
    explicit AlignedBuffer(size_t n)
        : data(static_cast<uint8_t*>(std::aligned_alloc(4096, (n + 4095) / 4096 * 4096))) {}
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    uint8_t* data;
};

Status read_into(BlockBackend& d, uint64_t offset, uint8_t* buf, uint64_t n) {
    iovec v{buf, static_cast<size_t>(n)};
    return d.read(offset, {&v, 1});
}

// Removes a file on scope exit unless released.
struct Unlinker {
    std::string path;
    bool armed = true;
    ~Unlinker() {
        if (armed && !path.empty()) ::unlink(path.c_str());
    }
};

}  // namespace

Status convert_image(const std::string& source, const std::string& destination,
                     const ConvertOptions& options) {
    ImageOptions so;
    so.read_only = true;
    so.format = options.source_format;
    VIREO_ASSIGN_OR_RETURN(auto src, open_image(source, so));
    uint64_t size = src->size();

    CreateOptions co;
    co.format = options.format == ImageFormat::kAuto ? ImageFormat::kRaw : options.format;
    co.subformat = options.subformat;
    co.block_size = options.block_size;
    co.block_size_given = true;
    co.align_1m = options.align_1m;
    co.size = co.format == ImageFormat::kVhd ? (size + kSectorSize - 1) / kSectorSize * kSectorSize : size;

    // Build under a temporary name in the destination's directory, rename when complete.
    VIREO_TRY_CTX(check_new_image_path(destination), "convert");
    std::string tmp = destination + ".vireo-tmp-XXXXXX";
    int tfd = ::mkostemp(tmp.data(), O_CLOEXEC);
    if (tfd < 0) return os_error(fmt::format("convert: create a temporary file next to {}", destination));
    ::close(tfd);
    Unlinker cleanup{tmp};
    VIREO_TRY_CTX(create_image(tmp, co), "convert " + destination);
    ImageOptions dopt;
    dopt.format = co.format;
    VIREO_ASSIGN_OR_RETURN(auto dst, open_image(tmp, dopt));

    AlignedBuffer buf(kChunk);
    uint64_t offset = 0;
    while (offset < size) {
        uint64_t want = std::min(kChunk - offset % kChunk, size - offset);
        VIREO_ASSIGN_OR_RETURN(Extent ext, src->block_status(offset, want));
        uint64_t n = std::max<uint64_t>(1, std::min(ext.length, want));
        if (!(ext.zero && !ext.allocated)) {
            VIREO_TRY_CTX(read_into(*src, offset, buf.data, n), "convert: read " + source);
            // Write only the parts that are not zeros, in whole granules.
            uint64_t pos = 0;
            while (pos < n) {
                uint64_t g = std::min(kZeroGranule - (offset + pos) % kZeroGranule, n - pos);
                if (is_zero({buf.data + pos, static_cast<size_t>(g)})) {
                    pos += g;
                    continue;
                }
                uint64_t run = g;
                while (pos + run < n) {
                    uint64_t g2 = std::min(kZeroGranule, n - pos - run);
                    if (is_zero({buf.data + pos + run, static_cast<size_t>(g2)})) break;
                    run += g2;
                }
                iovec v{buf.data + pos, static_cast<size_t>(run)};
                VIREO_TRY_CTX(dst->write(offset + pos, {&v, 1}), "convert: write " + destination);
                pos += run;
            }
        }
        offset += n;
        if (options.progress) options.progress(offset, size);
    }
    VIREO_TRY_CTX(dst->flush(), "convert: flush " + destination);
    dst.reset();
    if (::rename(tmp.c_str(), destination.c_str()) < 0) {
        return os_error(fmt::format("convert: rename to {}", destination));
    }
    cleanup.armed = false;
    if (options.progress) options.progress(size, size);
    return {};
}

Result<std::string> commit_image(const std::string& child_path, const Progress& progress) {
    ImageOptions co;
    co.read_only = true;
    co.format = ImageFormat::kVhd;
    co.open_parents = false;
    VIREO_ASSIGN_OR_RETURN(auto child, open_image(child_path, co));
    auto* dyn = dynamic_cast<VhdDynamicBackend*>(child.get());
    if (dyn == nullptr || !dyn->differencing()) {
        return make_error("commit: {} is not a differencing VHD: there is no parent to commit into",
                          child_path);
    }
    VIREO_ASSIGN_OR_RETURN(std::string parent_path, find_parent(child_path));
    {
        // Nobody else may use the parent while it changes under them (other children read it).
        VIREO_ASSIGN_OR_RETURN(UniqueFd probe, open_file(parent_path, O_RDONLY));
        if (::flock(probe.get(), LOCK_EX | LOCK_NB) < 0) {
            return make_error("commit: parent {} is in use by another process", parent_path);
        }
    }
    ImageOptions po;
    po.format = ImageFormat::kVhd;
    VIREO_ASSIGN_OR_RETURN(auto parent, open_image(parent_path, po));
    uint64_t size = child->size();
    AlignedBuffer buf(kChunk);
    uint64_t offset = 0;
    while (offset < size) {
        uint64_t want = std::min(kChunk - offset % kChunk, size - offset);
        VIREO_ASSIGN_OR_RETURN(Extent ext, child->block_status(offset, want));
        uint64_t n = std::max<uint64_t>(1, std::min(ext.length, want));
        if (ext.depth == 0) {
            if (offset + n > parent->size()) {
                return make_error(
                    "commit: {} holds data at {} past the end of its parent {} ({} bytes); "
                    "resize the parent first",
                    child_path, offset, parent_path, parent->size());
            }
            VIREO_TRY_CTX(read_into(*child, offset, buf.data, n), "commit: read " + child_path);
            iovec v{buf.data, static_cast<size_t>(n)};
            VIREO_TRY_CTX(parent->write(offset, {&v, 1}), "commit: write " + parent_path);
        }
        offset += n;
        if (progress) progress(offset, size);
    }
    VIREO_TRY_CTX(parent->flush(), "commit: flush " + parent_path);
    return parent_path;
}

namespace {

// The smallest geometry-representable size >= `size`, as QEMU creates images sized by CHS.
uint64_t chs_round_up(uint64_t size) {
    uint64_t sectors = size / kSectorSize;
    for (uint64_t extra = 0;; ++extra) {
        Geometry g = chs_for_size((sectors + extra) * kSectorSize);
        if (g.sectors() >= sectors || g.is_max()) return g.sectors() * kSectorSize;
    }
}

Status sync(int fd) {
    if (::fdatasync(fd) < 0) return os_error("fdatasync");
    return {};
}

Status write_footer_at(int fd, const Footer& f, uint64_t offset) {
    return pwrite_exact(fd, {reinterpret_cast<const uint8_t*>(&f), sizeof f}, offset);
}

Status copy_range(int fd, uint64_t from, uint64_t to, uint64_t length) {
    std::vector<uint8_t> buf(std::min<uint64_t>(length, 1 << 20));
    for (uint64_t done = 0; done < length;) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), length - done));
        VIREO_TRY(pread_exact(fd, {buf.data(), n}, from + done));
        VIREO_TRY(pwrite_exact(fd, {buf.data(), n}, to + done));
        done += n;
    }
    return {};
}

}  // namespace

Result<ResizeResult> resize_image(const std::string& path, uint64_t new_size) {
    VIREO_ASSIGN_OR_RETURN(ImageFormat format, detect_format(path));
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDWR));
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
        return make_error("resize: {} is in use by another process", path);
    }
    ResizeResult result;
    if (format == ImageFormat::kRaw) {
        VIREO_ASSIGN_OR_RETURN(result.old_size, file_size(fd.get()));
        if (new_size < result.old_size) {
            return make_error("resize: {} is {} bytes; shrinking to {} is not supported", path,
                              result.old_size, new_size);
        }
        if (::ftruncate(fd.get(), static_cast<off_t>(new_size)) < 0)
            return os_error("resize: truncate " + path);
        result.new_size = new_size;
        return result;
    }
    VIREO_ASSIGN_OR_RETURN(VhdLayout L, read_vhd_layout(fd.get(), path));
    if (!L.end_footer_valid)
        return make_error("resize: {}: {} (run `vireo img check --repair`)", path, L.end_footer_error);
    result.old_size = L.size.size;
    if (new_size % kSectorSize != 0) {
        return make_error("resize: size {} is not a multiple of 512 bytes: VHD disks hold whole sectors",
                          new_size);
    }
    if (new_size < L.size.size) {
        return make_error("resize: {} is {} bytes; shrinking to {} is not supported", path, L.size.size,
                          new_size);
    }
    // Keep the image's own size rule: a CHS-sized image grows to a size its geometry can express.
    uint64_t target = new_size;
    if (L.size.rule == SizeRule::kChs) target = chs_round_up(new_size);
    if (target > kMaxSize)
        return make_error("resize: {} bytes is larger than the VHD maximum of 2040 GiB", target);
    result.new_size = target;
    if (target == L.size.size) return result;

    Footer f = L.footer;
    f.current_size = target;
    // libvhdi reports original_size as the disk size; keep them equal so every reader agrees.
    f.original_size = target;
    Geometry g = chs_for_size(target);
    f.cylinders = g.cylinders;
    f.heads = g.heads;
    f.sectors_per_track = g.sectors_per_track;
    seal_footer(f);
    int d = fd.get();

    if (L.type == DiskType::kFixed) {
        uint64_t old_data_end = L.file_size - L.footer_length;
        uint64_t new_data_end = std::max<uint64_t>(target, old_data_end);
        // New footer first (the file keeps a valid footer at its end), then clear the old one,
        // which now lies inside the disk.
        VIREO_TRY_CTX(write_footer_at(d, f, new_data_end), "resize " + path);
        VIREO_TRY(sync(d));
        if (new_data_end > old_data_end) {
            std::vector<uint8_t> zeros(L.footer_length, 0);
            VIREO_TRY_CTX(pwrite_exact(d, zeros, old_data_end), "resize " + path);
            VIREO_TRY(sync(d));
        }
        return result;
    }

    uint64_t total = L.block_total();
    uint64_t new_entries = (target + L.block_size - 1) / L.block_size;
    DynamicHeader h = L.header;
    uint64_t end = L.footer_offset;  // the end footer: where appended things go
    if (new_entries > L.max_table_entries) {
        uint64_t old_bat_end = L.bat_offset + bat_size_for(L.max_table_entries);
        uint64_t grow_end = L.bat_offset + bat_size_for(new_entries);
        for (const auto& m : L.metadata) {
            if (m.what == "footer copy" || m.what == "dynamic header") {
                if (m.begin < grow_end && L.bat_offset < m.end) {
                    return make_error("resize: {}: the {} lies where the BAT must grow", path, m.what);
                }
            }
        }
        end = std::max(end, (grow_end + kSectorSize - 1) / kSectorSize * kSectorSize);
        // Blocks in the way move to the end: footer at the new end, copy, durable, then repoint.
        for (uint32_t i = 0; i < L.bat.size(); ++i) {
            uint32_t e = L.bat[i];
            if (e == kUnallocated) continue;
            uint64_t begin = uint64_t{e} * kSectorSize;
            if (!(begin < grow_end && old_bat_end < begin + total)) continue;
            if ((end + total) / kSectorSize >= kUnallocated)
                return make_error("resize: {} is too large", path);
            VIREO_TRY_CTX(write_footer_at(d, L.footer, end + total), "resize " + path);
            VIREO_TRY_CTX(copy_range(d, begin, end, total), "resize " + path);
            VIREO_TRY(sync(d));
            std::array<uint8_t, 4> be{};
            store_be<uint32_t>(be.data(), static_cast<uint32_t>(end / kSectorSize));
            VIREO_TRY_CTX(pwrite_exact(d, be, L.bat_offset + uint64_t{i} * 4), "resize " + path);
            VIREO_TRY(sync(d));
            end += total;
            ++result.blocks_moved;
        }
        // Parent locators in the way move too; the header pointing at their new place is
        // written (still with the old BAT size) before the BAT area is reused.
        bool moved_locator = false;
        for (auto& e : h.locators) {
            uint64_t off = e.data_offset, len = e.data_length;
            if (e.platform_code.get() == 0 || len == 0) continue;
            uint64_t lend = off + (len + kSectorSize - 1) / kSectorSize * kSectorSize;
            if (!(off < grow_end && old_bat_end < lend)) continue;
            uint64_t space = (len + kSectorSize - 1) / kSectorSize * kSectorSize;
            VIREO_TRY_CTX(write_footer_at(d, L.footer, end + space), "resize " + path);
            VIREO_TRY_CTX(copy_range(d, off, end, len), "resize " + path);
            e.data_offset = end;
            e.data_space = static_cast<uint32_t>(space);
            end += space;
            moved_locator = true;
        }
        if (end > L.footer_offset) VIREO_TRY_CTX(write_footer_at(d, L.footer, end), "resize " + path);
        VIREO_TRY(sync(d));
        if (moved_locator) {
            seal_header(h);
            VIREO_TRY_CTX(pwrite_exact(d, {reinterpret_cast<const uint8_t*>(&h), sizeof h}, L.header_offset),
                          "resize " + path);
            VIREO_TRY(sync(d));
        }
        // New BAT entries (unallocated) and padding, over space nothing references any more.
        uint64_t from = L.bat_offset + uint64_t{L.max_table_entries} * 4;
        std::vector<uint8_t> ff(grow_end - from, 0xFF);
        VIREO_TRY_CTX(pwrite_exact(d, ff, from), "resize " + path);
        VIREO_TRY(sync(d));
        h.max_table_entries = static_cast<uint32_t>(new_entries);
    }
    // The commit point: the header's BAT size, then the footers carrying the new size.
    seal_header(h);
    VIREO_TRY_CTX(pwrite_exact(d, {reinterpret_cast<const uint8_t*>(&h), sizeof h}, L.header_offset),
                  "resize " + path);
    VIREO_TRY(sync(d));
    VIREO_TRY_CTX(write_footer_at(d, f, end), "resize " + path);
    VIREO_TRY(sync(d));
    VIREO_TRY_CTX(write_footer_at(d, f, 0), "resize " + path);
    VIREO_TRY(sync(d));
    if (result.blocks_moved > 0) {
        // The blocks that moved out of the BAT's way left a hole: move the last blocks into it,
        // as check --repair does (each move durable before its BAT entry changes).
        VIREO_TRY_CTX(compact_vhd(d, path), "resize " + path);
    }
    return result;
}

Result<CompareResult> compare_images(const std::string& a_path, const std::string& b_path,
                                     ImageFormat format_a, ImageFormat format_b, const Progress& progress) {
    ImageOptions oa, ob;
    oa.read_only = ob.read_only = true;
    oa.format = format_a;
    ob.format = format_b;
    VIREO_ASSIGN_OR_RETURN(auto a, open_image(a_path, oa));
    VIREO_ASSIGN_OR_RETURN(auto b, open_image(b_path, ob));
    CompareResult r;
    r.size_a = a->size();
    r.size_b = b->size();
    r.size_mismatch = r.size_a != r.size_b;
    uint64_t common = std::min(r.size_a, r.size_b);
    uint64_t total = std::max(r.size_a, r.size_b);
    AlignedBuffer ba(kChunk), bb(kChunk);
    auto differ_at = [](const uint8_t* x, const uint8_t* y, uint64_t n) -> uint64_t {
        for (uint64_t i = 0; i < n; ++i) {
            if (x[i] != y[i]) return i;
        }
        return n;
    };
    uint64_t offset = 0;
    while (offset < common) {
        uint64_t want = std::min(kChunk - offset % kChunk, common - offset);
        VIREO_ASSIGN_OR_RETURN(Extent ea, a->block_status(offset, want));
        VIREO_ASSIGN_OR_RETURN(Extent eb, b->block_status(offset, want));
        uint64_t n = std::max<uint64_t>(1, std::min({ea.length, eb.length, want}));
        bool za = ea.zero && !ea.allocated, zb = eb.zero && !eb.allocated;
        if (!(za && zb)) {
            if (za) {
                std::memset(ba.data, 0, n);
            } else {
                VIREO_TRY(read_into(*a, offset, ba.data, n));
            }
            if (zb) {
                std::memset(bb.data, 0, n);
            } else {
                VIREO_TRY(read_into(*b, offset, bb.data, n));
            }
            if (std::memcmp(ba.data, bb.data, n) != 0) {
                r.identical = false;
                r.first_difference = offset + differ_at(ba.data, bb.data, n);
                return r;
            }
        }
        offset += n;
        if (progress) progress(offset, total);
    }
    BlockBackend& longer = r.size_a > r.size_b ? *a : *b;
    while (offset < total) {
        uint64_t want = std::min(kChunk - offset % kChunk, total - offset);
        VIREO_ASSIGN_OR_RETURN(Extent e, longer.block_status(offset, want));
        uint64_t n = std::max<uint64_t>(1, std::min(e.length, want));
        if (!(e.zero && !e.allocated)) {
            VIREO_TRY(read_into(longer, offset, ba.data, n));
            if (!is_zero({ba.data, static_cast<size_t>(n)})) {
                std::memset(bb.data, 0, n);
                r.identical = false;
                r.first_difference = offset + differ_at(ba.data, bb.data, n);
                return r;
            }
        }
        offset += n;
        if (progress) progress(offset, total);
    }
    return r;
}

Result<std::vector<Extent>> map_image(const std::string& path, ImageFormat format) {
    ImageOptions o;
    o.read_only = true;
    o.format = format;
    VIREO_ASSIGN_OR_RETURN(auto disk, open_image(path, o));
    std::vector<Extent> out;
    uint64_t size = disk->size();
    uint64_t offset = 0;
    while (offset < size) {
        VIREO_ASSIGN_OR_RETURN(Extent e, disk->block_status(offset, size - offset));
        if (e.length == 0) return make_error("map {}: no progress at offset {}", path, offset);
        if (!out.empty()) {
            Extent& last = out.back();
            bool same = last.allocated == e.allocated && last.zero == e.zero && last.depth == e.depth &&
                        last.file_offset.has_value() == e.file_offset.has_value() &&
                        (!e.file_offset || *last.file_offset + last.length == *e.file_offset);
            if (same) {
                last.length += e.length;
                offset += e.length;
                continue;
            }
        }
        out.push_back(e);
        offset += e.length;
    }
    return out;
}

}  // namespace vireo::disk
