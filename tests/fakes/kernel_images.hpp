// Builders of synthetic kernel images for loader tests and fuzz seeds: ELF32/ELF64 files with
// chosen segments and notes, and bzImages with a chosen setup header. Each builder makes a
// well-formed image; tests then break one field at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace vireo::testing {

struct ElfSegmentSpec {
    uint64_t paddr;
    std::vector<uint8_t> data;  // file contents
    uint64_t mem_size;          // >= data.size()
};

struct ElfSpec {
    bool is_64bit = true;
    uint16_t machine = 62;  // EM_X86_64 (3 for EM_386)
    uint64_t entry = 0x100000;
    std::vector<ElfSegmentSpec> segments;
    // PVH note (XEN_ELFNOTE_PHYS32_ENTRY) with this entry; 0 = none. desc_size 4 or 8.
    uint64_t pvh_entry = 0;
    uint32_t pvh_desc_size = 4;
};

inline void put16(std::vector<uint8_t>& b, size_t off, uint16_t v) {
    std::memcpy(b.data() + off, &v, 2);
}
inline void put32(std::vector<uint8_t>& b, size_t off, uint32_t v) {
    std::memcpy(b.data() + off, &v, 4);
}
inline void put64(std::vector<uint8_t>& b, size_t off, uint64_t v) {
    std::memcpy(b.data() + off, &v, 8);
}

// Layout: ELF header, program headers (PT_LOAD..., PT_NOTE), note, segment data.
inline std::vector<uint8_t> make_elf(const ElfSpec& spec) {
    const bool b64 = spec.is_64bit;
    const size_t ehsize = b64 ? 64 : 52;
    const size_t phentsize = b64 ? 56 : 32;
    const size_t phnum = spec.segments.size() + (spec.pvh_entry ? 1 : 0);
    size_t off = ehsize + phnum * phentsize;
    std::vector<uint8_t> note;
    if (spec.pvh_entry) {
        // The descriptor is padded to 4 bytes (ELF notes); it holds the entry's low
        // pvh_desc_size bytes, so malformed sizes (2, 3, 16) can be built too.
        note.resize(12 + 4 + ((spec.pvh_desc_size + 3) & ~size_t{3}));
        put32(note, 0, 4);
        put32(note, 4, spec.pvh_desc_size);
        put32(note, 8, 18);
        std::memcpy(note.data() + 12, "Xen", 4);
        const uint64_t entry = spec.pvh_entry;
        std::memcpy(note.data() + 16, &entry, std::min<size_t>(spec.pvh_desc_size, sizeof entry));
    }
    const size_t note_off = off;
    off += note.size();
    std::vector<size_t> data_off;
    for (const auto& s : spec.segments) {
        data_off.push_back(off);
        off += s.data.size();
    }
    std::vector<uint8_t> f(off);
    f[0] = 0x7f;
    f[1] = 'E';
    f[2] = 'L';
    f[3] = 'F';
    f[4] = b64 ? 2 : 1;
    f[5] = 1;
    f[6] = 1;
    put16(f, 16, 2);  // ET_EXEC
    put16(f, 18, spec.machine);
    put32(f, 20, 1);
    if (b64) {
        put64(f, 24, spec.entry);
        put64(f, 32, ehsize);
        put16(f, 52, static_cast<uint16_t>(ehsize));
        put16(f, 54, static_cast<uint16_t>(phentsize));
        put16(f, 56, static_cast<uint16_t>(phnum));
    } else {
        put32(f, 24, static_cast<uint32_t>(spec.entry));
        put32(f, 28, static_cast<uint32_t>(ehsize));
        put16(f, 40, static_cast<uint16_t>(ehsize));
        put16(f, 42, static_cast<uint16_t>(phentsize));
        put16(f, 44, static_cast<uint16_t>(phnum));
    }
    auto phdr = [&](size_t i, uint32_t type, uint64_t offset, uint64_t paddr, uint64_t filesz, uint64_t memsz,
                    uint64_t align) {
        size_t p = ehsize + i * phentsize;
        put32(f, p, type);
        if (b64) {
            put32(f, p + 4, 7);
            put64(f, p + 8, offset);
            put64(f, p + 16, paddr);
            put64(f, p + 24, paddr);
            put64(f, p + 32, filesz);
            put64(f, p + 40, memsz);
            put64(f, p + 48, align);
        } else {
            put32(f, p + 4, static_cast<uint32_t>(offset));
            put32(f, p + 8, static_cast<uint32_t>(paddr));
            put32(f, p + 12, static_cast<uint32_t>(paddr));
            put32(f, p + 16, static_cast<uint32_t>(filesz));
            put32(f, p + 20, static_cast<uint32_t>(memsz));
            put32(f, p + 24, 7);
            put32(f, p + 28, static_cast<uint32_t>(align));
        }
    };
    for (size_t i = 0; i < spec.segments.size(); ++i) {
        const auto& s = spec.segments[i];
        phdr(i, 1, data_off[i], s.paddr, s.data.size(), s.mem_size, 0x1000);
        if (!s.data.empty()) std::memcpy(f.data() + data_off[i], s.data.data(), s.data.size());
    }
    if (spec.pvh_entry) {
        phdr(spec.segments.size(), 4, note_off, 0, note.size(), 0, 4);
        std::memcpy(f.data() + note_off, note.data(), note.size());
    }
    return f;
}

// Offsets of program header i's fields, for tests that corrupt them.
inline size_t elf_phdr_offset(bool is_64bit, size_t i) {
    return (is_64bit ? 64 : 52) + i * (is_64bit ? 56 : 32);
}

struct BzImageSpec {
    uint16_t version = 0x020f;
    uint8_t setup_sects = 1;
    uint8_t loadflags = 0x01;
    uint16_t xloadflags = 0x0001;
    uint32_t init_size = 0;  // 0: payload size + 64 KiB
    uint32_t initrd_addr_max = 0x7fffffff;
    uint32_t cmdline_size = 2047;
    std::vector<uint8_t> payload = std::vector<uint8_t>(0x400, 0x90);
    std::string version_string = "test-kernel 1.0";
};

inline std::vector<uint8_t> make_bzimage(const BzImageSpec& spec) {
    size_t setup = (static_cast<size_t>(spec.setup_sects == 0 ? 4 : spec.setup_sects) + 1) * 512;
    std::vector<uint8_t> f(setup + spec.payload.size());
    f[0x1f1] = spec.setup_sects;
    put32(f, 0x1f4, static_cast<uint32_t>((spec.payload.size() + 15) / 16));
    put16(f, 0x1fe, 0xaa55);
    f[0x200] = 0xeb;
    f[0x201] = 0x6a;
    std::memcpy(f.data() + 0x202, "HdrS", 4);
    put16(f, 0x206, spec.version);
    const size_t vs = 0x280;
    std::memcpy(f.data() + vs, spec.version_string.c_str(), spec.version_string.size() + 1);
    put16(f, 0x20e, static_cast<uint16_t>(vs - 0x200));
    f[0x211] = spec.loadflags;
    put32(f, 0x214, 0x100000);
    put32(f, 0x22c, spec.initrd_addr_max);
    put32(f, 0x230, 0x200000);
    put16(f, 0x236, spec.xloadflags);
    put32(f, 0x238, spec.cmdline_size);
    put32(f, 0x260, spec.init_size ? spec.init_size : static_cast<uint32_t>(spec.payload.size() + 0x10000));
    std::memcpy(f.data() + setup, spec.payload.data(), spec.payload.size());
    return f;
}

}  // namespace vireo::testing
