// Reading and validating a VHD file's structure.
#include "disk/vhd_layout.hpp"

#include <algorithm>
#include <cstring>

#include "base/io.hpp"

namespace vireo::disk {

using namespace vhd;

uint32_t VhdLayout::allocated_blocks() const {
    return static_cast<uint32_t>(
        std::count_if(bat.begin(), bat.end(), [](uint32_t e) { return e != kUnallocated; }));
}

uint64_t VhdLayout::used_end() const {
    uint64_t end = 0;
    for (const auto& r : metadata)
        end = std::max(end, r.end);
    for (uint32_t e : bat) {
        if (e != kUnallocated) end = std::max(end, uint64_t{e} * kSectorSize + block_total());
    }
    return (end + kSectorSize - 1) / kSectorSize * kSectorSize;
}

namespace {

constexpr uint32_t kMaxLocatorBytes = 64 << 10;  // a UTF-16 path of 32K characters

std::string hex(uint64_t v) {
    return fmt::format("0x{:x}", v);
}

}  // namespace

std::vector<ParentLocator> read_locators(int fd, const DynamicHeader& header, uint64_t limit,
                                         std::vector<std::string>* warnings) {
    std::vector<ParentLocator> out;
    for (size_t i = 0; i < std::size(header.locators); ++i) {
        const auto& e = header.locators[i];
        uint32_t code = e.platform_code;
        if (code == 0) continue;
        ParentLocator l;
        l.platform_code = code;
        l.data_offset = e.data_offset;
        l.data_length = e.data_length;
        l.data_space = e.data_space;
        auto warn = [&](const std::string& why) {
            if (warnings != nullptr) {
                warnings->push_back(
                    fmt::format("parent locator {} ({}): {}", i, platform_code_name(code), why));
            }
        };
        if (l.data_length == 0) {
            warn("empty");
            continue;
        }
        if (l.data_length > kMaxLocatorBytes) {
            warn(fmt::format("{} bytes of data is too long for a path", l.data_length));
            continue;
        }
        if (l.data_offset > limit || l.data_length > limit - l.data_offset) {
            warn(fmt::format("data at {} ({} bytes) is past the end of the file", hex(l.data_offset),
                             l.data_length));
            continue;
        }
        std::vector<uint8_t> data(l.data_length);
        if (auto s = pread_exact(fd, data, l.data_offset); !s.ok()) {
            warn(s.error().message());
            continue;
        }
        auto text = decode_locator(code, data);
        if (!text) continue;  // Mac aliases and unknown codes carry no usable path
        l.text = *text;
        out.push_back(std::move(l));
    }
    return out;
}

Result<VhdLayout> read_vhd_layout(int fd, const std::string& path, SizeRule rule) {
    VhdLayout L;
    L.path = path;
    auto err = [&path](const std::string& what) { return Error(fmt::format("disk.vhd {}: {}", path, what)); };
    VIREO_ASSIGN_OR_RETURN(L.file_size, file_size(fd));
    if (L.file_size < kOldFooterSize) {
        return err(fmt::format("file of {} bytes is too small to hold a VHD footer", L.file_size));
    }

    // The footer at the end (VHD spec §Hard Disk Footer Format), then the copy at offset 0 that
    // dynamic and differencing disks keep.
    std::array<uint8_t, kFooterSize> tail{};
    std::array<uint8_t, kFooterSize> head{};
    bool have_tail512 = L.file_size >= kFooterSize;
    if (have_tail512) VIREO_TRY_CTX(pread_exact(fd, tail, L.file_size - kFooterSize), "disk.vhd " + path);
    if (L.file_size >= kFooterSize) VIREO_TRY_CTX(pread_exact(fd, head, 0), "disk.vhd " + path);

    Result<Footer> end = Error("no footer");
    if (have_tail512 && has_footer_cookie(tail)) {
        end = parse_footer(tail, fmt::format("footer at offset {}", hex(L.file_size - kFooterSize)));
        L.footer_length = kFooterSize;
    } else {
        std::array<uint8_t, kOldFooterSize> tail511{};
        VIREO_TRY_CTX(pread_exact(fd, tail511, L.file_size - kOldFooterSize), "disk.vhd " + path);
        if (has_footer_cookie(tail511)) {
            end = parse_footer(
                tail511, fmt::format("511-byte footer at offset {}", hex(L.file_size - kOldFooterSize)));
            L.footer_length = kOldFooterSize;
        } else {
            end = Error(fmt::format("no footer at the end of the file (bad cookie at offset {})",
                                    hex(L.file_size - std::min<uint64_t>(L.file_size, kFooterSize))));
        }
    }
    Result<Footer> start = Error("no copy");
    if (L.file_size >= kFooterSize && has_footer_cookie(head))
        start = parse_footer(head, "footer copy at offset 0");
    bool head_dynamic = start.ok() && start->disk_type.get() != static_cast<uint32_t>(DiskType::kFixed);

    if (end.ok()) {
        L.footer = *end;
        L.footer_offset = L.file_size - L.footer_length;
        if (head_dynamic || (start.ok() && end->disk_type.get() != static_cast<uint32_t>(DiskType::kFixed))) {
            L.head_footer_valid = start.ok();
        }
    } else if (head_dynamic) {
        // The end footer is gone (an interrupted write or truncation); the spec keeps the copy at
        // offset 0 for exactly this. Readable; `check --repair` rewrites the end.
        L.footer = *start;
        L.end_footer_valid = false;
        L.end_footer_error = end.error().message();
        L.head_footer_valid = true;
        L.footer_length = kFooterSize;
        L.warnings.push_back(
            fmt::format("end footer damaged ({}); using the copy at offset 0", L.end_footer_error));
    } else if (start.ok() || (L.file_size >= kFooterSize && has_footer_cookie(head))) {
        return err(start.ok() ? end.error().message() : start.error().message());
    } else {
        return err(end.error().message());
    }
    L.type = static_cast<DiskType>(L.footer.disk_type.get());

    if (L.dynamic()) {
        if (L.end_footer_valid && start.ok() && std::memcmp(&*start, &L.footer, sizeof(Footer)) != 0) {
            L.head_matches_end = false;
            L.warnings.push_back("the footer copy at offset 0 differs from the footer at the end");
        } else if (L.end_footer_valid && !start.ok()) {
            L.head_matches_end = false;
            L.warnings.push_back(
                fmt::format("footer copy at offset 0 is damaged ({})",
                            has_footer_cookie(head) ? start.error().message() : "bad cookie"));
        }
    } else if (L.footer.data_offset.get() != ~uint64_t{0}) {
        L.warnings.push_back(fmt::format("fixed disk footer has data offset {} (expected all ones)",
                                         hex(L.footer.data_offset.get())));
    }

    L.size = decide_size(L.footer, rule);
    if (L.size.size > kMaxSize) {
        return err(fmt::format("virtual size {} bytes ({}) is larger than the VHD maximum of 2040 GiB",
                               L.size.size, L.size.reason));
    }

    if (!L.dynamic()) {
        uint64_t data_area = L.file_size - L.footer_length;
        if (L.size.size > data_area) {
            return err(
                fmt::format("virtual size {} bytes is larger than the {} bytes of data before the footer "
                            "(the file is truncated)",
                            L.size.size, data_area));
        }
        L.data_end = data_area;
        L.footer_offset = data_area;
        return L;
    }

    // Dynamic disk header (VHD spec §Dynamic Disk Header Format).
    uint64_t limit = L.end_footer_valid ? L.footer_offset : L.file_size;
    L.header_offset = L.footer.data_offset;
    if (L.header_offset < kFooterSize || L.header_offset > limit || limit - L.header_offset < kHeaderSize) {
        return err(fmt::format("dynamic header offset {} is outside the file (data ends at {})",
                               hex(L.header_offset), hex(limit)));
    }
    std::array<uint8_t, kHeaderSize> hbytes{};
    VIREO_TRY_CTX(pread_exact(fd, hbytes, L.header_offset), "disk.vhd " + path);
    VIREO_ASSIGN_OR_RETURN(L.header, parse_header(hbytes, fmt::format("disk.vhd {}: dynamic header at {}",
                                                                      path, hex(L.header_offset))));
    L.block_size = L.header.block_size;
    L.bitmap_size = bitmap_size_for(L.block_size);
    L.max_table_entries = L.header.max_table_entries;
    L.bat_offset = L.header.table_offset;

    uint64_t needed = (L.size.size + L.block_size - 1) / L.block_size;
    if (L.max_table_entries < needed) {
        return err(fmt::format("BAT has {} entries, too few for {} bytes in {}-byte blocks ({} needed)",
                               L.max_table_entries, L.size.size, L.block_size, needed));
    }
    uint64_t bat_bytes = uint64_t{L.max_table_entries} * 4;
    if (L.bat_offset > limit || bat_bytes > limit - L.bat_offset) {
        return err(fmt::format("BAT at {} with {} entries extends past the end of the file (data ends at {})",
                               hex(L.bat_offset), L.max_table_entries, hex(limit)));
    }

    L.metadata.push_back({0, kFooterSize, "footer copy"});
    L.metadata.push_back({L.header_offset, L.header_offset + kHeaderSize, "dynamic header"});
    L.metadata.push_back({L.bat_offset,
                          L.bat_offset + std::min(bat_size_for(L.max_table_entries), limit - L.bat_offset),
                          "BAT"});
    auto overlap = [](const FileRegion& a, const FileRegion& b) {
        return a.begin < b.end && b.begin < a.end;
    };
    for (size_t i = 0; i < L.metadata.size(); ++i) {
        for (size_t j = i + 1; j < L.metadata.size(); ++j) {
            if (overlap(L.metadata[i], L.metadata[j])) {
                return err(fmt::format("{} at {} overlaps the {} at {}", L.metadata[j].what,
                                       hex(L.metadata[j].begin), L.metadata[i].what,
                                       hex(L.metadata[i].begin)));
            }
        }
    }

    if (L.type == DiskType::kDifferencing) {
        L.locators = read_locators(fd, L.header, limit, &L.warnings);
        for (const auto& l : L.locators) {
            FileRegion r{l.data_offset,
                         l.data_offset + (l.data_length + kSectorSize - 1) / kSectorSize * kSectorSize,
                         fmt::format("{} parent locator", platform_code_name(l.platform_code))};
            r.end = std::min(r.end, limit);
            bool bad = false;
            for (const auto& m : L.metadata) {
                if (overlap(r, m) && m.what.find("locator") == std::string::npos) {
                    L.warnings.push_back(
                        fmt::format("{} data at {} overlaps the {}", r.what, hex(r.begin), m.what));
                    bad = true;
                }
            }
            if (!bad) L.metadata.push_back(r);
        }
    }

    // The BAT itself (VHD spec §Block Allocation Table and Data Blocks).
    std::vector<uint8_t> raw(bat_bytes);
    VIREO_TRY_CTX(pread_exact(fd, raw, L.bat_offset), "disk.vhd " + path + ": BAT");
    L.bat.resize(L.max_table_entries);
    for (size_t i = 0; i < L.bat.size(); ++i)
        L.bat[i] = load_be<uint32_t>(raw.data() + i * 4);
    L.data_end = limit;

    struct Block {
        uint64_t begin;
        uint32_t index;
    };
    std::vector<Block> blocks;
    uint64_t total = L.block_total();
    for (uint32_t i = 0; i < L.bat.size(); ++i) {
        uint32_t e = L.bat[i];
        if (e == kUnallocated) continue;
        uint64_t begin = uint64_t{e} * kSectorSize;
        if (begin > limit || total > limit - begin) {
            return err(fmt::format(
                "BAT entry {} points past the end of the file (block at {}, {} bytes; data ends at {})", i,
                hex(begin), total, hex(limit)));
        }
        for (const auto& m : L.metadata) {
            if (begin < m.end && m.begin < begin + total) {
                return err(fmt::format("BAT entry {} (block at {}) overlaps the {} at {}", i, hex(begin),
                                       m.what, hex(m.begin)));
            }
        }
        blocks.push_back({begin, i});
    }
    std::sort(blocks.begin(), blocks.end(), [](const Block& a, const Block& b) { return a.begin < b.begin; });
    for (size_t k = 1; k < blocks.size(); ++k) {
        if (blocks[k].begin < blocks[k - 1].begin + total) {
            return err(fmt::format("BAT entries {} and {} overlap (blocks at {} and {}, {} bytes each)",
                                   blocks[k - 1].index, blocks[k].index, hex(blocks[k - 1].begin),
                                   hex(blocks[k].begin), total));
        }
    }
    if (!L.end_footer_valid) L.footer_offset = L.used_end();
    if (L.max_table_entries > needed) {
        L.warnings.push_back(fmt::format("BAT has {} entries where {} would do (Azure rejects this)",
                                         L.max_table_entries, needed));
    }
    return L;
}

}  // namespace vireo::disk
