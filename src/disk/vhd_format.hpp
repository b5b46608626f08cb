// VHD on-disk structures (footer, dynamic disk header, parent locators), their checksums and
// validation, CHS geometry and the rules that decide an image's virtual size.
//
// References: "Virtual Hard Disk Image Format Specification" v1.0 (Microsoft, 2006), cited as
// "VHD spec §<section>"; QEMU block/vpc.c for how QEMU 7.2 reads sizes; libvhdi's format notes.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/endian.hpp"
#include "base/result.hpp"
#include "base/uuid.hpp"

namespace vireo::disk::vhd {

inline constexpr uint64_t kSectorSize = 512;
inline constexpr size_t kFooterSize = 512;
inline constexpr size_t kOldFooterSize = 511;  // very old images: footer one byte short
inline constexpr size_t kHeaderSize = 1024;
inline constexpr uint32_t kUnallocated = 0xFFFFFFFF;  // BAT entry of a block not in the file
inline constexpr uint32_t kDefaultBlockSize = 2 << 20;
inline constexpr uint32_t kMinBlockSize = 512;       // readers: any power of two from one sector
inline constexpr uint32_t kMaxBlockSize = 1u << 31;  // QEMU reads any power of two up to here
inline constexpr uint32_t kMinCreateBlockSize = 4096;
// QEMU's limit and Hyper-V's: 2040 GiB (0xFF000000 sectors).
inline constexpr uint64_t kMaxSize = 0xFF000000ULL * kSectorSize;
// VHD spec appendix "CHS Calculation": at most 65535 cylinders x 16 heads x 255 sectors.
inline constexpr uint64_t kMaxChsSectors = 65535ULL * 16 * 255;
// Footer and header timestamps count seconds from 2000-01-01 00:00:00 UTC.
inline constexpr int64_t kTimestampEpoch = 946684800;

inline constexpr std::array<char, 8> kFooterCookie = {'c', 'o', 'n', 'e', 'c', 't', 'i', 'x'};
inline constexpr std::array<char, 8> kHeaderCookie = {'c', 'x', 's', 'p', 'a', 'r', 's', 'e'};

// VHD spec §Hard Disk Footer Format, "Disk Type".
enum class DiskType : uint32_t { kFixed = 2, kDynamic = 3, kDifferencing = 4 };

// Parent locator platform codes (VHD spec §Dynamic Disk Header Format, "Parent Locator Entries").
enum class PlatformCode : uint32_t {
    kNone = 0,
    kWi2r = 0x57693272,  // "Wi2r": deprecated relative path (ANSI)
    kWi2k = 0x5769326B,  // "Wi2k": deprecated absolute path (ANSI)
    kW2ru = 0x57327275,  // "W2ru": relative Windows path, UTF-16LE
    kW2ku = 0x57326B75,  // "W2ku": absolute Windows path, UTF-16LE
    kMac = 0x4D616320,   // "Mac ": Mac OS alias blob (not resolvable here)
    kMacX = 0x4D616358,  // "MacX": file:// URL, UTF-8 (RFC 2396)
};

// VHD spec §Hard Disk Footer Format: 512 bytes, all fields big-endian.
struct [[gnu::packed]] Footer {
    std::array<char, 8> cookie;   // "conectix"
    Be<uint32_t> features;        // bit 1 ("reserved") always set
    Be<uint32_t> format_version;  // 0x00010000
    Be<uint64_t> data_offset;     // dynamic header offset; all ones for fixed disks
    Be<uint32_t> timestamp;       // seconds since 2000-01-01 UTC
    std::array<char, 4> creator_app;
    Be<uint32_t> creator_version;  // major << 16 | minor
    std::array<char, 4> creator_host;
    Be<uint64_t> original_size;  // size at creation
    Be<uint64_t> current_size;   // size now, in bytes
    Be<uint16_t> cylinders;
    uint8_t heads;
    uint8_t sectors_per_track;
    Be<uint32_t> disk_type;
    Be<uint32_t> checksum;  // one's complement of the byte sum with this field zero
    std::array<uint8_t, 16> uuid;
    uint8_t saved_state;
    std::array<uint8_t, 427> reserved;
};
static_assert(sizeof(Footer) == kFooterSize);

// VHD spec §Dynamic Disk Header Format, "Parent Locator Entries": 24 bytes.
struct [[gnu::packed]] ParentLocatorEntry {
    Be<uint32_t> platform_code;
    // The spec says sectors; Virtual PC and Hyper-V store bytes. Readers must accept both.
    Be<uint32_t> data_space;
    Be<uint32_t> data_length;  // bytes of locator data
    Be<uint32_t> reserved;
    Be<uint64_t> data_offset;  // absolute file offset of the locator data
};
static_assert(sizeof(ParentLocatorEntry) == 24);

// VHD spec §Dynamic Disk Header Format: 1024 bytes, all fields big-endian.
struct [[gnu::packed]] DynamicHeader {
    std::array<char, 8> cookie;   // "cxsparse"
    Be<uint64_t> data_offset;     // unused, all ones
    Be<uint64_t> table_offset;    // absolute offset of the BAT
    Be<uint32_t> header_version;  // 0x00010000
    Be<uint32_t> max_table_entries;
    Be<uint32_t> block_size;  // power of two, bytes of data per block (bitmap not included)
    Be<uint32_t> checksum;
    std::array<uint8_t, 16> parent_uuid;  // the parent's footer UUID
    Be<uint32_t> parent_timestamp;        // the parent's footer timestamp at link time
    Be<uint32_t> reserved1;
    std::array<uint8_t, 512> parent_name;  // UTF-16BE file name, NUL-padded
    ParentLocatorEntry locators[8];        // a C array: std::array of packed structs is not packed
    std::array<uint8_t, 256> reserved2;
};
static_assert(sizeof(DynamicHeader) == kHeaderSize);

struct Geometry {
    uint16_t cylinders = 0;
    uint8_t heads = 0;
    uint8_t sectors_per_track = 0;
    uint64_t sectors() const { return uint64_t{cylinders} * heads * sectors_per_track; }
    uint64_t bytes() const { return sectors() * kSectorSize; }
    bool is_max() const { return sectors() == kMaxChsSectors; }
};

// VHD spec appendix "CHS Calculation": the geometry for a disk of `size` bytes. It rounds down:
// geometry.bytes() <= size, and 1 GiB gives 1,073,479,680 bytes.
Geometry chs_for_size(uint64_t size);

// How a reader turns a footer into a virtual size.
enum class SizeRule : uint8_t {
    kAuto,         // as QEMU 7.2 (Debian 12) does: see decide_size()
    kChs,          // cylinders x heads x sectors x 512 (Virtual PC)
    kCurrentSize,  // the footer's current_size (Hyper-V, Azure)
};
std::string_view size_rule_name(SizeRule rule);

struct SizeDecision {
    uint64_t size = 0;  // bytes, a multiple of 512
    SizeRule rule = SizeRule::kCurrentSize;
    std::string reason;
};

// QEMU up to 9.2 uses current_size for the creator applications "win ", "qem2", "d2v ", "CTXS",
// "tap\0" and for the maximum geometry 65535/16/255, and CHS for everything else. Vireo reads the
// same way so that `vireo img` and qemu-img agree on every image. A zero geometry (no CHS at all)
// falls back to current_size rather than giving an empty disk.
SizeDecision decide_size(const Footer& footer, SizeRule requested = SizeRule::kAuto);

// Whether a creator application is one that QEMU 7.2 sizes by current_size.
bool creator_uses_current_size(const std::array<char, 4>& app);

uint32_t footer_checksum(const Footer& footer);
uint32_t header_checksum(const DynamicHeader& header);

// Decoding a footer from bytes: `bytes` holds 512 bytes, or 511 for the old short footer (the
// missing last byte is reserved and taken as zero). Checks cookie, checksum, version and disk
// type; names `what` ("footer at offset 0x...") in errors.
Result<Footer> parse_footer(std::span<const uint8_t> bytes, std::string_view what);
// Checks cookie, checksum, version and block size of a dynamic disk header.
Result<DynamicHeader> parse_header(std::span<const uint8_t> bytes, std::string_view what);

bool has_footer_cookie(std::span<const uint8_t> bytes);

// Footer and header builders for new images; they fill in the checksum.
struct NewFooter {
    DiskType type = DiskType::kDynamic;
    uint64_t size = 0;  // current_size and original_size
    Uuid uuid;
    uint32_t timestamp = 0;
};
Footer make_footer(const NewFooter& spec);
void seal_footer(Footer& footer);  // recomputes the checksum
void seal_header(DynamicHeader& header);

uint32_t now_timestamp();
std::string format_timestamp(uint32_t vhd_timestamp);  // "2024-05-01 12:00:00 UTC"

// Sector bitmap bytes for a block: one bit per sector, rounded up to whole sectors.
uint32_t bitmap_size_for(uint32_t block_size);
// Where a block placed at or after `at` starts so that its data area (after the bitmap) is aligned
// to 4 KiB: file systems serialize or split direct I/O that is not aligned to their blocks. The
// bytes skipped are unreferenced padding, which readers ignore.
inline constexpr uint64_t kDataAlignment = 4096;
inline uint64_t aligned_block_start(uint64_t at, uint32_t bitmap_size) {
    return (at + bitmap_size + kDataAlignment - 1) / kDataAlignment * kDataAlignment - bitmap_size;
}
// BAT bytes on disk for `entries` entries, padded to whole sectors.
uint64_t bat_size_for(uint64_t entries);

// Sector bitmaps are MSB-first: sector 0 of the block is bit 7 of byte 0 (VHD spec §Block
// Allocation Table and Data Blocks, "Bitmap").
inline bool bitmap_test(const uint8_t* bitmap, uint32_t sector) {
    return (bitmap[sector >> 3] & (0x80u >> (sector & 7))) != 0;
}
inline void bitmap_set(uint8_t* bitmap, uint32_t sector) {
    bitmap[sector >> 3] = static_cast<uint8_t>(bitmap[sector >> 3] | (0x80u >> (sector & 7)));
}
// Sets bits [first, first + count).
void bitmap_set_range(uint8_t* bitmap, uint32_t first, uint32_t count);
// Whether bits [first, first + count) are all set / all clear.
bool bitmap_all_set(const uint8_t* bitmap, uint32_t first, uint32_t count);
// Length of the run of equal bits starting at `first`, at most `limit` bits.
uint32_t bitmap_run(const uint8_t* bitmap, uint32_t first, uint32_t limit, bool* value);

// Text helpers: UTF-16 (either byte order) to UTF-8 and back. Invalid sequences become U+FFFD.
std::string utf16_to_utf8(std::span<const uint8_t> bytes, bool big_endian);
std::vector<uint8_t> utf8_to_utf16(std::string_view text, bool big_endian);

std::string four_cc(const std::array<char, 4>& code);  // printable, NULs and trailing spaces dropped
std::string platform_code_name(uint32_t code);

// One decoded parent locator.
struct ParentLocator {
    uint32_t platform_code = 0;
    uint64_t data_offset = 0;
    uint32_t data_length = 0;
    uint32_t data_space = 0;
    std::string text;  // decoded path or URL (UTF-8)
};

// The parent's name from the header (UTF-16BE, NUL-terminated or padded).
std::string parent_name(const DynamicHeader& header);

// Decodes one locator's data bytes into text according to its platform code; nullopt for
// platform codes that hold no path (none, "Mac " aliases).
std::optional<std::string> decode_locator(uint32_t platform_code, std::span<const uint8_t> data);

// Paths (on this host) to try for the parent, most trusted first: relative locators (they
// survive moving a whole chain), absolute ones, the MacX URL, then the header's parent name
// next to the child. `child_dir` is the directory holding the child.
std::vector<std::string> parent_candidates(const std::vector<ParentLocator>& locators,
                                           const std::string& header_parent_name,
                                           const std::string& child_dir);

}  // namespace vireo::disk::vhd
