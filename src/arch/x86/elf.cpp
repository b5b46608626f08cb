// ELF image parsing (System V ABI, "ELF Header", "Program Header", "Note Section").
#include "arch/x86/elf.hpp"

#include <cstring>
#include <string_view>

#include "base/endian.hpp"

namespace vireo::arch::x86 {
namespace {

constexpr uint8_t kElfClass32 = 1;
constexpr uint8_t kElfClass64 = 2;
constexpr uint8_t kElfDataLsb = 1;
constexpr uint16_t kEtExec = 2;
constexpr uint16_t kEtDyn = 3;
constexpr uint16_t kEm386 = 3;
constexpr uint16_t kEmX8664 = 62;
constexpr uint32_t kPtLoad = 1;
constexpr uint32_t kPtNote = 4;

// Bounds-checked little-endian reads from the file.
class Reader {
  public:
    explicit Reader(std::span<const uint8_t> data) : m_data(data) {}
    bool has(uint64_t offset, uint64_t size) const {
        return offset <= m_data.size() && size <= m_data.size() - offset;
    }
    template <typename T>
    T get(uint64_t offset) const {
        return load_le<T>(m_data.data() + offset);
    }

  private:
    std::span<const uint8_t> m_data;
};

bool add_overflows(uint64_t a, uint64_t b) {
    return a + b < a;
}

uint64_t align_up(uint64_t v, uint64_t a) {
    return (v + a - 1) & ~(a - 1);
}

Status parse_notes(std::span<const uint8_t> file, uint64_t offset, uint64_t size, uint64_t align, size_t phdr,
                   std::vector<ElfNote>& notes) {
    Reader r(file);
    uint64_t pos = offset;
    uint64_t end = offset + size;
    while (pos < end) {
        if (end - pos < 12)
            return make_error("ELF note segment {}: truncated note header at 0x{:x}", phdr, pos);
        uint32_t namesz = r.get<uint32_t>(pos);
        uint32_t descsz = r.get<uint32_t>(pos + 4);
        uint32_t type = r.get<uint32_t>(pos + 8);
        uint64_t name_off = pos + 12;
        uint64_t desc_off = align_up(name_off + namesz, align);
        uint64_t next = align_up(desc_off + descsz, align);
        if (desc_off > end || descsz > end - desc_off) {
            return make_error(
                "ELF note segment {}: note at 0x{:x} (name {} bytes, descriptor {} bytes) extends past "
                "the segment end 0x{:x}",
                phdr, pos, namesz, descsz, end);
        }
        if (notes.size() >= kElfMaxNotes) return make_error("ELF: more than {} notes", kElfMaxNotes);
        ElfNote note;
        uint32_t name_len = namesz;
        if (name_len > 0 && file[name_off + name_len - 1] == 0) --name_len;
        note.name = file.subspan(name_off, name_len);
        note.type = type;
        note.desc = file.subspan(desc_off, descsz);
        notes.push_back(note);
        pos = std::min(next, end);
    }
    return {};
}

}  // namespace

bool looks_like_elf(std::span<const uint8_t> file) {
    return file.size() >= 4 && file[0] == 0x7f && file[1] == 'E' && file[2] == 'L' && file[3] == 'F';
}

Result<ElfImage> parse_elf(std::span<const uint8_t> file) {
    if (!looks_like_elf(file)) return make_error("not an ELF file (no \\x7fELF magic)");
    if (file.size() < 52) return make_error("ELF header truncated: the file has only {} bytes", file.size());
    Reader r(file);
    ElfImage image;
    uint8_t elf_class = file[4];
    if (elf_class != kElfClass32 && elf_class != kElfClass64)
        return make_error("ELF class {} is neither 32-bit (1) nor 64-bit (2)", elf_class);
    image.is_64bit = elf_class == kElfClass64;
    if (file[5] != kElfDataLsb) return make_error("ELF data encoding {} is not little-endian (1)", file[5]);
    if (file[6] != 1) return make_error("ELF version {} is not 1", file[6]);
    if (image.is_64bit && file.size() < 64)
        return make_error("ELF64 header truncated: the file has only {} bytes", file.size());

    uint16_t type = r.get<uint16_t>(16);
    image.machine = r.get<uint16_t>(18);
    if (type != kEtExec && type != kEtDyn) return make_error("ELF type {} is not an executable", type);
    if (image.machine != kEm386 && image.machine != kEmX8664)
        return make_error("ELF machine {} is not x86 (3) or x86-64 (62)", image.machine);

    uint64_t phoff;
    uint16_t phentsize;
    uint16_t phnum;
    if (image.is_64bit) {
        image.entry = r.get<uint64_t>(24);
        phoff = r.get<uint64_t>(32);
        phentsize = r.get<uint16_t>(54);
        phnum = r.get<uint16_t>(56);
    } else {
        image.entry = r.get<uint32_t>(24);
        phoff = r.get<uint32_t>(28);
        phentsize = r.get<uint16_t>(42);
        phnum = r.get<uint16_t>(44);
    }
    const uint16_t min_phentsize = image.is_64bit ? 56 : 32;
    if (phnum == 0) return make_error("ELF has no program headers");
    if (phnum > kElfMaxProgramHeaders)
        return make_error("ELF has {} program headers (at most {} accepted)", phnum, kElfMaxProgramHeaders);
    if (phentsize < min_phentsize)
        return make_error("ELF program header size {} is smaller than {}", phentsize, min_phentsize);
    if (!r.has(phoff, static_cast<uint64_t>(phnum) * phentsize)) {
        return make_error(
            "ELF program headers (offset 0x{:x}, {} x {} bytes) extend past the end of the file "
            "(size 0x{:x})",
            phoff, phnum, phentsize, file.size());
    }

    for (size_t i = 0; i < phnum; ++i) {
        uint64_t ph = phoff + i * phentsize;
        uint32_t p_type = r.get<uint32_t>(ph);
        uint64_t offset, paddr, filesz, memsz, align;
        if (image.is_64bit) {
            offset = r.get<uint64_t>(ph + 8);
            paddr = r.get<uint64_t>(ph + 24);
            filesz = r.get<uint64_t>(ph + 32);
            memsz = r.get<uint64_t>(ph + 40);
            align = r.get<uint64_t>(ph + 48);
        } else {
            offset = r.get<uint32_t>(ph + 4);
            paddr = r.get<uint32_t>(ph + 12);
            filesz = r.get<uint32_t>(ph + 16);
            memsz = r.get<uint32_t>(ph + 20);
            align = r.get<uint32_t>(ph + 28);
        }
        if (p_type != kPtLoad && p_type != kPtNote) continue;
        if (!r.has(offset, filesz)) {
            return make_error(
                "ELF program header {}: segment extends past the end of the file (offset 0x{:x}, "
                "size 0x{:x}, file size 0x{:x})",
                i, offset, filesz, file.size());
        }
        if (p_type == kPtNote) {
            VIREO_TRY(parse_notes(file, offset, filesz, align == 8 ? 8 : 4, i, image.notes));
            continue;
        }
        if (memsz == 0) continue;
        if (filesz > memsz) {
            return make_error("ELF program header {}: file size 0x{:x} is larger than memory size 0x{:x}", i,
                              filesz, memsz);
        }
        if (add_overflows(paddr, memsz))
            return make_error("ELF program header {}: address 0x{:x} + size 0x{:x} overflows", i, paddr,
                              memsz);
        image.segments.push_back({offset, filesz, paddr, memsz});
    }
    if (image.segments.empty()) return make_error("ELF has no loadable segments");
    return image;
}

Result<std::optional<uint32_t>> find_pvh_entry(const ElfImage& image) {
    for (const ElfNote& note : image.notes) {
        std::string_view name(reinterpret_cast<const char*>(note.name.data()), note.name.size());
        if (name != "Xen" || note.type != kXenElfnotePhys32Entry) continue;
        uint64_t entry;
        if (note.desc.size() == 4) {
            entry = load_le<uint32_t>(note.desc.data());
        } else if (note.desc.size() == 8) {
            entry = load_le<uint64_t>(note.desc.data());
        } else {
            return make_error(
                "PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY) has a {}-byte descriptor (need 4 or 8)",
                note.desc.size());
        }
        if (entry > UINT32_MAX)
            return make_error("PVH entry point 0x{:x} is above 4 GiB (it is a 32-bit physical address)",
                              entry);
        return std::optional<uint32_t>(static_cast<uint32_t>(entry));
    }
    return std::optional<uint32_t>();
}

}  // namespace vireo::arch::x86
