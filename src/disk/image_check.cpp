// Image check and repair.
#include "disk/image_check.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/io.hpp"
#include "disk/vhd_layout.hpp"

namespace vireo::disk {

using namespace vhd;

namespace {

std::string hex(uint64_t v) {
    return fmt::format("0x{:x}", v);
}

struct Block {
    uint64_t begin = 0;
    uint32_t index = 0;
};

struct Gap {
    uint64_t begin = 0;
    uint64_t end = 0;
    bool at_end = false;
};

// Everything the check learns about one VHD. Tolerant: it records problems and goes as far as
// the structure allows, never trusting a size before checking it against the file.
struct Analysis {
    CheckReport report;
    uint64_t file_size = 0;
    Footer footer{};
    size_t footer_length = kFooterSize;
    bool end_ok = false;
    bool head_ok = false;
    bool head_fixable = false;  // the copy at offset 0 is damaged or differs: rewrite it from the end
    bool end_fixable = false;   // the end footer is gone but the copy at offset 0 is good
    int unfixable = 0;          // corruptions repair does not touch
    DiskType type = DiskType::kFixed;
    uint64_t footer_offset = 0;
    uint64_t bat_offset = 0;
    uint32_t entries = 0;
    uint32_t block_size = 0;
    uint32_t bitmap_size = 0;
    std::vector<uint32_t> bat;
    std::vector<FileRegion> metadata;
    std::vector<Block> blocks;  // valid blocks, sorted by offset
    std::vector<Gap> gaps;      // leaks
    uint64_t used_end = 0;
    bool analyzed_blocks = false;

    uint64_t block_total() const { return uint64_t{bitmap_size} + block_size; }
    void corrupt(std::string m) {
        report.corruptions.push_back(std::move(m));
        ++unfixable;
    }
};

Result<uint64_t> size_of(int fd) {
    off_t end = ::lseek(fd, 0, SEEK_END);
    if (end < 0) return os_error("size");
    return static_cast<uint64_t>(end);
}

void analyze(int fd, Analysis& A) {
    CheckReport& R = A.report;
    auto fs = size_of(fd);
    if (!fs.ok()) {
        A.corrupt(fs.error().message());
        return;
    }
    A.file_size = *fs;
    if (A.file_size < kOldFooterSize) {
        A.corrupt(fmt::format("file of {} bytes is too small to hold a VHD footer", A.file_size));
        return;
    }
    std::array<uint8_t, kFooterSize> tail{}, head{};
    std::array<uint8_t, kOldFooterSize> tail511{};
    bool have512 = A.file_size >= kFooterSize;
    auto rd = [&](std::span<uint8_t> b, uint64_t off) {
        auto s = pread_exact(fd, b, off);
        if (!s.ok()) A.corrupt(s.error().message());
        return s.ok();
    };
    if (have512 && (!rd(tail, A.file_size - kFooterSize) || !rd(head, 0))) return;
    if (!rd(tail511, A.file_size - kOldFooterSize)) return;

    std::string end_problem = "no footer at the end of the file (bad cookie)";
    std::optional<Footer> end, start;
    if (have512 && has_footer_cookie(tail)) {
        auto f = parse_footer(tail, fmt::format("footer at {}", hex(A.file_size - kFooterSize)));
        if (f.ok()) {
            end = *f;
        } else {
            end_problem = f.error().message();
        }
    } else if (has_footer_cookie(tail511)) {
        auto f =
            parse_footer(tail511, fmt::format("511-byte footer at {}", hex(A.file_size - kOldFooterSize)));
        if (f.ok()) {
            end = *f;
            A.footer_length = kOldFooterSize;
            R.warnings.push_back("old 511-byte footer");
        } else {
            end_problem = f.error().message();
        }
    }
    std::string head_problem = "bad cookie";
    if (have512 && has_footer_cookie(head)) {
        auto f = parse_footer(head, "footer copy at offset 0");
        if (f.ok()) {
            start = *f;
        } else {
            head_problem = f.error().message();
        }
    }
    auto dyn = [](const Footer& f) { return f.disk_type.get() != static_cast<uint32_t>(DiskType::kFixed); };
    if (end) {
        A.end_ok = true;
        A.footer = *end;
        A.footer_offset = A.file_size - A.footer_length;
    } else if (start && dyn(*start)) {
        A.footer = *start;
        A.end_fixable = true;
        R.corruptions.push_back(
            fmt::format("end footer missing or damaged ({}); the copy at offset 0 is intact", end_problem));
    } else {
        A.corrupt(end_problem);
        return;
    }
    A.type = static_cast<DiskType>(A.footer.disk_type.get());
    R.subformat = A.type == DiskType::kFixed     ? VhdSubformat::kFixed
                  : A.type == DiskType::kDynamic ? VhdSubformat::kDynamic
                                                 : VhdSubformat::kDifferencing;
    if (dyn(A.footer) && A.end_ok) {
        if (!start) {
            A.head_fixable = true;
            R.corruptions.push_back(fmt::format("footer copy at offset 0 is damaged ({})", head_problem));
        } else if (std::memcmp(&*start, &A.footer, sizeof(Footer)) != 0) {
            A.head_fixable = true;
            R.corruptions.push_back("footer copy at offset 0 differs from the footer at the end");
        }
    }
    A.head_ok = start.has_value();

    SizeDecision size = decide_size(A.footer);
    if (size.size > kMaxSize) {
        A.corrupt(fmt::format("virtual size {} bytes is larger than the VHD maximum of 2040 GiB", size.size));
        return;
    }
    if (A.type == DiskType::kFixed) {
        uint64_t data = A.file_size - A.footer_length;
        if (size.size > data) {
            A.corrupt(fmt::format(
                "virtual size {} bytes is larger than the {} bytes of data (the file is truncated)",
                size.size, data));
        }
        if (A.footer.data_offset.get() != ~uint64_t{0}) {
            R.warnings.push_back(fmt::format("fixed disk footer has data offset {} (expected all ones)",
                                             hex(A.footer.data_offset.get())));
        }
        R.image_end_offset = A.file_size;
        return;
    }

    uint64_t limit = A.end_ok ? A.footer_offset : A.file_size;
    uint64_t hoff = A.footer.data_offset;
    if (hoff < kFooterSize || hoff > limit || limit - hoff < kHeaderSize) {
        A.corrupt(fmt::format("dynamic header offset {} is outside the file", hex(hoff)));
        return;
    }
    std::array<uint8_t, kHeaderSize> hb{};
    if (!rd(hb, hoff)) return;
    auto header = parse_header(hb, fmt::format("dynamic header at {}", hex(hoff)));
    if (!header.ok()) {
        A.corrupt(header.error().message());
        return;
    }
    A.block_size = header->block_size;
    A.bitmap_size = bitmap_size_for(A.block_size);
    A.entries = header->max_table_entries;
    A.bat_offset = header->table_offset;
    R.total_blocks = A.entries;
    uint64_t needed = (size.size + A.block_size - 1) / A.block_size;
    if (A.entries < needed) {
        A.corrupt(fmt::format("BAT has {} entries, too few for {} bytes in {}-byte blocks ({} needed)",
                              A.entries, size.size, A.block_size, needed));
    } else if (A.entries > needed) {
        R.warnings.push_back(fmt::format("BAT has {} entries where {} would do", A.entries, needed));
    }
    uint64_t bat_bytes = uint64_t{A.entries} * 4;
    if (A.bat_offset > limit || bat_bytes > limit - A.bat_offset) {
        A.corrupt(fmt::format("BAT at {} with {} entries extends past the end of the file", hex(A.bat_offset),
                              A.entries));
        return;
    }
    A.metadata.push_back({0, kFooterSize, "footer copy"});
    A.metadata.push_back({hoff, hoff + kHeaderSize, "dynamic header"});
    A.metadata.push_back(
        {A.bat_offset, A.bat_offset + std::min(bat_size_for(A.entries), limit - A.bat_offset), "BAT"});
    if (A.type == DiskType::kDifferencing) {
        for (const auto& l : read_locators(fd, *header, limit, &R.warnings)) {
            A.metadata.push_back({l.data_offset,
                                  std::min(limit, l.data_offset + (l.data_length + kSectorSize - 1) /
                                                                      kSectorSize * kSectorSize),
                                  fmt::format("{} parent locator", platform_code_name(l.platform_code))});
        }
    }
    for (size_t i = 0; i < A.metadata.size(); ++i) {
        for (size_t j = i + 1; j < A.metadata.size(); ++j) {
            const auto &a = A.metadata[i], &b = A.metadata[j];
            if (a.begin < b.end && b.begin < a.end) {
                A.corrupt(fmt::format("{} at {} overlaps the {} at {}", b.what, hex(b.begin), a.what,
                                      hex(a.begin)));
            }
        }
    }

    std::vector<uint8_t> raw(bat_bytes);
    if (!rd(raw, A.bat_offset)) return;
    A.bat.resize(A.entries);
    uint64_t total = A.block_total();
    for (uint32_t i = 0; i < A.entries; ++i) {
        uint32_t e = load_be<uint32_t>(raw.data() + uint64_t{i} * 4);
        A.bat[i] = e;
        if (e == kUnallocated) continue;
        ++R.allocated_blocks;
        uint64_t begin = uint64_t{e} * kSectorSize;
        if (begin > limit || total > limit - begin) {
            A.corrupt(
                fmt::format("BAT entry {} points past the end of the file (block at {}, data ends at {})", i,
                            hex(begin), hex(limit)));
            continue;
        }
        bool bad = false;
        for (const auto& m : A.metadata) {
            if (begin < m.end && m.begin < begin + total) {
                A.corrupt(fmt::format("BAT entry {} (block at {}) overlaps the {} at {}", i, hex(begin),
                                      m.what, hex(m.begin)));
                bad = true;
                break;
            }
        }
        if (!bad) A.blocks.push_back({begin, i});
    }
    std::sort(A.blocks.begin(), A.blocks.end(),
              [](const Block& a, const Block& b) { return a.begin < b.begin; });
    for (size_t k = 1; k < A.blocks.size(); ++k) {
        if (A.blocks[k].begin < A.blocks[k - 1].begin + total) {
            A.corrupt(fmt::format("BAT entries {} and {} overlap (blocks at {} and {})",
                                  A.blocks[k - 1].index, A.blocks[k].index, hex(A.blocks[k - 1].begin),
                                  hex(A.blocks[k].begin)));
        }
    }
    A.analyzed_blocks = true;

    // Unreferenced space: gaps that can hold a block, and anything between the last block and the
    // end footer. Smaller gaps between regions (alignment, moved locators) are not leaks.
    std::vector<FileRegion> used = A.metadata;
    for (const auto& b : A.blocks)
        used.push_back({b.begin, b.begin + total, ""});
    std::sort(used.begin(), used.end(),
              [](const FileRegion& a, const FileRegion& b) { return a.begin < b.begin; });
    uint64_t cursor = 0;
    for (const auto& r : used) {
        if (r.begin > cursor && r.begin - cursor >= total) A.gaps.push_back({cursor, r.begin, false});
        cursor = std::max(cursor, r.end);
    }
    A.used_end = (cursor + kSectorSize - 1) / kSectorSize * kSectorSize;
    if (A.end_ok && A.footer_offset > cursor) A.gaps.push_back({cursor, A.footer_offset, true});
    for (const auto& g : A.gaps) {
        R.leaked_bytes += g.end - g.begin;
        R.leaks.push_back(fmt::format("{} bytes at {} are not referenced by the BAT{}", g.end - g.begin,
                                      hex(g.begin), g.at_end ? " (end of the file)" : ""));
    }
    R.image_end_offset = A.end_ok ? A.file_size : A.used_end + kFooterSize;
}

Status write_footer_at(int fd, const Footer& f, uint64_t offset) {
    return pwrite_exact(fd, {reinterpret_cast<const uint8_t*>(&f), sizeof f}, offset);
}

Status sync(int fd) {
    if (::fdatasync(fd) < 0) return os_error("fdatasync");
    return {};
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

// Reclaims leaks: moves the last block into the first gap before it that can hold it (copy, make
// it durable, then repoint its BAT entry) until no such gap is left, then trims the end of the
// file (footer first, then truncate). Returns how many leaks went away.
Result<uint32_t> compact(int fd, std::vector<std::string>& repairs) {
    Analysis cur;
    analyze(fd, cur);
    if (cur.unfixable > 0 || !cur.analyzed_blocks) return make_error("the image is corrupt");
    uint32_t leaks = static_cast<uint32_t>(cur.gaps.size());
    uint64_t total = cur.block_total();
    for (;;) {
        if (cur.blocks.empty()) break;
        const Block last = cur.blocks.back();
        // Where a block fits in a gap: data aligned like new allocations if there is room.
        auto place = [&](const Gap& g) -> uint64_t {
            uint64_t aligned = aligned_block_start(g.begin, cur.bitmap_size);
            if (aligned + total <= g.end) return aligned;
            return g.begin + total <= g.end ? g.begin : UINT64_MAX;
        };
        auto gap = std::find_if(cur.gaps.begin(), cur.gaps.end(), [&](const Gap& g) {
            uint64_t to = place(g);
            return to != UINT64_MAX && to + total <= last.begin;
        });
        if (gap == cur.gaps.end()) break;
        uint64_t to = place(*gap);
        VIREO_TRY(copy_range(fd, last.begin, to, total));
        VIREO_TRY(sync(fd));
        std::array<uint8_t, 4> entry{};
        store_be<uint32_t>(entry.data(), static_cast<uint32_t>(to / kSectorSize));
        VIREO_TRY(pwrite_exact(fd, entry, cur.bat_offset + uint64_t{last.index} * 4));
        VIREO_TRY(sync(fd));
        repairs.push_back(fmt::format("moved block {} from {} to {}", last.index, hex(last.begin), hex(to)));
        cur = Analysis{};
        analyze(fd, cur);
        if (cur.unfixable > 0 || !cur.analyzed_blocks) return make_error("the image changed during repair");
    }
    if (cur.end_ok && cur.footer_offset > cur.used_end) {
        uint64_t at = cur.used_end;
        VIREO_TRY(write_footer_at(fd, cur.footer, at));
        VIREO_TRY(sync(fd));
        if (::ftruncate(fd, static_cast<off_t>(at + kFooterSize)) < 0) return os_error("truncate");
        VIREO_TRY(sync(fd));
        repairs.push_back(fmt::format("trimmed the file to {} bytes", at + kFooterSize));
    }
    Analysis after;
    analyze(fd, after);
    uint32_t left = static_cast<uint32_t>(after.gaps.size());
    return leaks > left ? leaks - left : 0;
}

Status repair(int fd, Analysis& A, CheckReport& out) {
    if (A.unfixable > 0) {
        out.warnings.push_back("not repaired: the image has corruption that repair cannot fix safely");
        return {};
    }
    if (A.type == DiskType::kFixed) return {};
    if (A.end_fixable) {
        // The footer belongs right after the last referenced byte; whatever follows is debris.
        uint64_t at = A.used_end;
        VIREO_TRY(write_footer_at(fd, A.footer, at));
        VIREO_TRY(sync(fd));
        if (::ftruncate(fd, static_cast<off_t>(at + kFooterSize)) < 0) return os_error("truncate");
        VIREO_TRY(sync(fd));
        out.repairs.push_back(fmt::format("rewrote the end footer at {}", hex(at)));
        ++out.corruptions_fixed;
    }
    if (A.head_fixable || A.end_fixable) {
        VIREO_TRY(write_footer_at(fd, A.footer, 0));
        VIREO_TRY(sync(fd));
        if (A.head_fixable) {
            out.repairs.push_back("rewrote the footer copy at offset 0");
            ++out.corruptions_fixed;
        }
    }
    if (A.gaps.empty()) return {};

    VIREO_ASSIGN_OR_RETURN(out.leaks_fixed, compact(fd, out.repairs));
    return {};
}

}  // namespace

Result<uint32_t> compact_vhd(int fd, const std::string& path) {
    std::vector<std::string> moves;
    VIREO_TRY_CTX(compact(fd, moves), "disk.vhd " + path);
    return static_cast<uint32_t>(std::count_if(moves.begin(), moves.end(),
                                               [](const std::string& m) { return m.starts_with("moved"); }));
}

CheckReport check_vhd_fd(int fd, const std::string& path) {
    Analysis A;
    A.report.path = path;
    A.report.format = ImageFormat::kVhd;
    analyze(fd, A);
    return A.report;
}

Result<CheckReport> check_image(const std::string& path, const CheckOptions& options) {
    ImageFormat format = options.format;
    if (format == ImageFormat::kAuto) {
        VIREO_ASSIGN_OR_RETURN(format, detect_format(path));
    }
    if (format == ImageFormat::kRaw) {
        CheckReport r;
        r.path = path;
        r.format = ImageFormat::kRaw;
        VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
        VIREO_ASSIGN_OR_RETURN(r.image_end_offset, size_of(fd.get()));
        return r;
    }
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, options.repair ? O_RDWR : O_RDONLY));
    if (options.repair && ::flock(fd.get(), LOCK_EX | LOCK_NB) < 0) {
        return make_error("{} is in use by another process; close it before repairing", path);
    }
    Analysis A;
    A.report.path = path;
    A.report.format = ImageFormat::kVhd;
    analyze(fd.get(), A);
    if (A.type == DiskType::kDifferencing && A.unfixable == 0) {
        if (auto p = find_parent(path); !p.ok()) A.report.warnings.push_back(p.error().message());
    }
    if (!options.repair) return A.report;

    CheckReport done;
    VIREO_TRY_CTX(repair(fd.get(), A, done), "repair " + path);
    Analysis after;
    after.report.path = path;
    after.report.format = ImageFormat::kVhd;
    analyze(fd.get(), after);
    CheckReport r = std::move(after.report);
    r.repairs = std::move(done.repairs);
    r.corruptions_fixed = done.corruptions_fixed;
    r.leaks_fixed = done.leaks_fixed;
    r.warnings.insert(r.warnings.end(), done.warnings.begin(), done.warnings.end());
    return r;
}

}  // namespace vireo::disk
