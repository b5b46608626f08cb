// AML encoding (ACPI 6.5 §20) and resource descriptors (§6.4).
#include "arch/x86/acpi/aml.hpp"

#include <cstdio>
#include <cstdlib>

namespace vireo::arch::x86::acpi::aml {
namespace {

// Opcodes (§20.3 Table 20.440).
constexpr uint8_t kZeroOp = 0x00;
constexpr uint8_t kOneOp = 0x01;
constexpr uint8_t kNameOp = 0x08;
constexpr uint8_t kBytePrefix = 0x0A;
constexpr uint8_t kWordPrefix = 0x0B;
constexpr uint8_t kDWordPrefix = 0x0C;
constexpr uint8_t kStringPrefix = 0x0D;
constexpr uint8_t kQWordPrefix = 0x0E;
constexpr uint8_t kScopeOp = 0x10;
constexpr uint8_t kBufferOp = 0x11;
constexpr uint8_t kPackageOp = 0x12;
constexpr uint8_t kMethodOp = 0x14;
constexpr uint8_t kDualNamePrefix = 0x2E;
constexpr uint8_t kMultiNamePrefix = 0x2F;
constexpr uint8_t kExtOpPrefix = 0x5B;
constexpr uint8_t kDeviceOp = 0x82;  // after ExtOpPrefix
constexpr uint8_t kRootChar = '\\';
constexpr uint8_t kParentPrefixChar = '^';
constexpr uint8_t kLocal0Op = 0x60;
constexpr uint8_t kArg0Op = 0x68;
constexpr uint8_t kStoreOp = 0x70;
constexpr uint8_t kAndOp = 0x7B;
constexpr uint8_t kOrOp = 0x7D;
constexpr uint8_t kCreateDWordFieldOp = 0x8A;
constexpr uint8_t kLEqualOp = 0x93;
constexpr uint8_t kIfOp = 0xA0;
constexpr uint8_t kElseOp = 0xA1;
constexpr uint8_t kReturnOp = 0xA4;
constexpr uint8_t kOnesOp = 0xFF;

// Resource descriptor tags (§6.4.2, §6.4.3).
constexpr uint8_t kSmallIrqNoFlags = 0x22;  // type 0x04, length 2
constexpr uint8_t kSmallIo = 0x47;          // type 0x08, length 7
constexpr uint8_t kSmallEndTag = 0x79;      // type 0x0F, length 1
constexpr uint8_t kLargeMemory32Fixed = 0x86;
constexpr uint8_t kLargeDWordAddress = 0x87;
constexpr uint8_t kLargeWordAddress = 0x88;
constexpr uint8_t kLargeExtendedIrq = 0x89;
constexpr uint8_t kLargeQWordAddress = 0x8A;
// Address space resource types (Table 6.49) and general flags (bit 0 consumer, bit 2 _MIF,
// bit 3 _MAF; bit 1 _DEC clear = positive decode).
constexpr uint8_t kResourceMemory = 0;
constexpr uint8_t kResourceIo = 1;
constexpr uint8_t kResourceBus = 2;
constexpr uint8_t kMinMaxFixed = 0x0C;

[[noreturn]] void host_bug(const char* what, std::string_view detail) {
    std::fprintf(stderr, "acpi.aml: %s: \"%.*s\"\n", what, static_cast<int>(detail.size()), detail.data());
    std::abort();
}

void append(Bytes& out, const Bytes& more) {
    out.insert(out.end(), more.begin(), more.end());
}

void append_le(Bytes& out, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; ++i)
        out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

bool is_lead_char(char c) {
    return (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_name_char(char c) {
    return is_lead_char(c) || (c >= '0' && c <= '9');
}

// Op [PkgLength body]
Bytes with_pkg(std::initializer_list<uint8_t> op, const Bytes& body) {
    Bytes out(op);
    append(out, pkg_length(body.size()));
    append(out, body);
    return out;
}

Bytes join(const TermList& terms) {
    Bytes out;
    for (const auto& t : terms)
        append(out, t);
    return out;
}

// Writes the common fields of Word/DWord/QWord address space descriptors.
Bytes address_descriptor(uint8_t tag, int width, uint8_t resource_type, AddressUsage usage,
                         uint8_t type_flags, uint64_t min, uint64_t max) {
    if (max < min) host_bug("address range ends before it starts", "");
    Bytes out;
    out.push_back(tag);
    append_le(out, static_cast<uint64_t>(3 + 5 * width), 2);  // length after the 3-byte header
    out.push_back(resource_type);
    out.push_back(static_cast<uint8_t>(kMinMaxFixed | (usage == AddressUsage::kConsumer ? 1 : 0)));
    out.push_back(type_flags);
    append_le(out, 0, width);  // _GRA: 0 with fixed min and max (Table 6.50)
    append_le(out, min, width);
    append_le(out, max, width);
    append_le(out, 0, width);  // _TRA
    append_le(out, max - min + 1, width);
    return out;
}

uint8_t memory_flags(Cacheability cache, bool writable) {
    return static_cast<uint8_t>((static_cast<uint8_t>(cache) << 1) | (writable ? 1 : 0));
}

}  // namespace

Bytes pkg_length(size_t body_length) {
    // The encoded length counts the PkgLength bytes themselves (§20.2.4).
    if (body_length + 1 < 0x40) return {static_cast<uint8_t>(body_length + 1)};
    for (size_t extra = 1; extra <= 3; ++extra) {
        size_t total = body_length + 1 + extra;
        if (total < (size_t{1} << (4 + 8 * extra))) {
            Bytes out;
            out.push_back(static_cast<uint8_t>((extra << 6) | (total & 0x0F)));
            for (size_t i = 0; i < extra; ++i)
                out.push_back(static_cast<uint8_t>(total >> (4 + 8 * i)));
            return out;
        }
    }
    host_bug("AML object too large for a PkgLength", "");
}

Bytes name_string(std::string_view path) {
    Bytes out;
    std::string_view rest = path;
    if (!rest.empty() && rest.front() == '\\') {
        out.push_back(kRootChar);
        rest.remove_prefix(1);
    } else {
        while (!rest.empty() && rest.front() == '^') {
            out.push_back(kParentPrefixChar);
            rest.remove_prefix(1);
        }
    }
    std::vector<std::string_view> segments;
    while (!rest.empty()) {
        size_t dot = rest.find('.');
        std::string_view seg = rest.substr(0, dot);
        if (seg.empty() || seg.size() > 4 || !is_lead_char(seg[0])) host_bug("bad AML name", path);
        for (char c : seg) {
            if (!is_name_char(c)) host_bug("bad AML name", path);
        }
        segments.push_back(seg);
        if (dot == std::string_view::npos) break;
        rest.remove_prefix(dot + 1);
        if (rest.empty()) host_bug("bad AML name", path);
    }
    if (segments.size() == 2) {
        out.push_back(kDualNamePrefix);
    } else if (segments.size() > 2) {
        if (segments.size() > 255) host_bug("bad AML name", path);
        out.push_back(kMultiNamePrefix);
        out.push_back(static_cast<uint8_t>(segments.size()));
    } else if (segments.empty()) {
        out.push_back(kZeroOp);  // NullName
    }
    for (auto seg : segments) {
        for (size_t i = 0; i < 4; ++i)
            out.push_back(static_cast<uint8_t>(i < seg.size() ? seg[i] : '_'));
    }
    return out;
}

Bytes integer(uint64_t value) {
    if (value == 0) return {kZeroOp};
    if (value == 1) return {kOneOp};
    if (value == ~uint64_t{0}) return {kOnesOp};
    Bytes out;
    if (value <= 0xFF) {
        out.push_back(kBytePrefix);
        append_le(out, value, 1);
    } else if (value <= 0xFFFF) {
        out.push_back(kWordPrefix);
        append_le(out, value, 2);
    } else if (value <= 0xFFFF'FFFF) {
        out.push_back(kDWordPrefix);
        append_le(out, value, 4);
    } else {
        out.push_back(kQWordPrefix);
        append_le(out, value, 8);
    }
    return out;
}

Bytes string(std::string_view text) {
    Bytes out{kStringPrefix};
    for (char c : text) {
        if (static_cast<unsigned char>(c) == 0 || static_cast<unsigned char>(c) > 0x7F)
            host_bug("AML strings are 7-bit ASCII without NUL", text);
        out.push_back(static_cast<uint8_t>(c));
    }
    out.push_back(0);
    return out;
}

uint32_t eisa_id_value(std::string_view id) {
    // Three upper-case letters and four hex digits (§19.6.35 EISAID).
    if (id.size() != 7) host_bug("bad EISA ID", id);
    uint32_t letters = 0;
    for (int i = 0; i < 3; ++i) {
        char c = id[static_cast<size_t>(i)];
        if (c < 'A' || c > 'Z') host_bug("bad EISA ID", id);
        letters = (letters << 5) | static_cast<uint32_t>(c - 0x40);
    }
    uint32_t product = 0;
    for (int i = 3; i < 7; ++i) {
        char c = id[static_cast<size_t>(i)];
        uint32_t d;
        if (c >= '0' && c <= '9') {
            d = static_cast<uint32_t>(c - '0');
        } else if (c >= 'A' && c <= 'F') {
            d = static_cast<uint32_t>(c - 'A' + 10);
        } else {
            host_bug("bad EISA ID", id);
        }
        product = (product << 4) | d;
    }
    // Both 16-bit halves are stored big-endian in the DWord's bytes.
    uint8_t bytes[4] = {static_cast<uint8_t>(letters >> 8), static_cast<uint8_t>(letters),
                        static_cast<uint8_t>(product >> 8), static_cast<uint8_t>(product)};
    return uint32_t{bytes[0]} | uint32_t{bytes[1]} << 8 | uint32_t{bytes[2]} << 16 | uint32_t{bytes[3]} << 24;
}

Bytes eisa_id(std::string_view id) {
    Bytes out{kDWordPrefix};
    append_le(out, eisa_id_value(id), 4);
    return out;
}

Bytes uuid(std::string_view text) {
    // ToUUID byte order (§19.6.142): the first three groups little-endian, the rest as written.
    if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-')
        host_bug("bad UUID", text);
    auto hex = [&](size_t pos) -> uint8_t {
        auto digit = [&](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            host_bug("bad UUID", text);
        };
        return static_cast<uint8_t>(digit(text[pos]) << 4 | digit(text[pos + 1]));
    };
    static constexpr size_t kOrder[16] = {6, 4, 2, 0, 11, 9, 16, 14, 19, 21, 24, 26, 28, 30, 32, 34};
    uint8_t bytes[16];
    for (size_t i = 0; i < 16; ++i)
        bytes[i] = hex(kOrder[i]);
    return buffer(bytes);
}

Bytes buffer(std::span<const uint8_t> bytes) {
    Bytes body = integer(bytes.size());
    body.insert(body.end(), bytes.begin(), bytes.end());
    return with_pkg({kBufferOp}, body);
}

Bytes package(const TermList& elements) {
    if (elements.size() > 255) host_bug("Package with more than 255 elements", "");
    Bytes body{static_cast<uint8_t>(elements.size())};
    append(body, join(elements));
    return with_pkg({kPackageOp}, body);
}

Bytes name(std::string_view path, const Bytes& value) {
    Bytes out{kNameOp};
    append(out, name_string(path));
    append(out, value);
    return out;
}

Bytes scope(std::string_view path, const TermList& terms) {
    Bytes body = name_string(path);
    append(body, join(terms));
    return with_pkg({kScopeOp}, body);
}

Bytes device(std::string_view path, const TermList& terms) {
    Bytes body = name_string(path);
    append(body, join(terms));
    return with_pkg({kExtOpPrefix, kDeviceOp}, body);
}

Bytes method(std::string_view path, uint8_t args, bool serialized, const TermList& body_terms) {
    if (args > 7) host_bug("a method takes at most 7 arguments", path);
    Bytes body = name_string(path);
    body.push_back(static_cast<uint8_t>(args | (serialized ? 0x08 : 0)));
    append(body, join(body_terms));
    return with_pkg({kMethodOp}, body);
}

Bytes arg(uint8_t n) {
    if (n > 6) host_bug("ArgN beyond Arg6", "");
    return {static_cast<uint8_t>(kArg0Op + n)};
}

Bytes local(uint8_t n) {
    if (n > 7) host_bug("LocalN beyond Local7", "");
    return {static_cast<uint8_t>(kLocal0Op + n)};
}

Bytes ret(const Bytes& value) {
    Bytes out{kReturnOp};
    append(out, value);
    return out;
}

Bytes if_(const Bytes& predicate, const TermList& body) {
    Bytes inner = predicate;
    append(inner, join(body));
    return with_pkg({kIfOp}, inner);
}

Bytes else_(const TermList& body) {
    return with_pkg({kElseOp}, join(body));
}

Bytes lequal(const Bytes& a, const Bytes& b) {
    Bytes out{kLEqualOp};
    append(out, a);
    append(out, b);
    return out;
}

Bytes and_(const Bytes& a, const Bytes& b, const Bytes& target) {
    Bytes out{kAndOp};
    append(out, a);
    append(out, b);
    append(out, target);
    return out;
}

Bytes or_(const Bytes& a, const Bytes& b, const Bytes& target) {
    Bytes out{kOrOp};
    append(out, a);
    append(out, b);
    append(out, target);
    return out;
}

Bytes store(const Bytes& value, const Bytes& target) {
    Bytes out{kStoreOp};
    append(out, value);
    append(out, target);
    return out;
}

Bytes create_dword_field(const Bytes& source, const Bytes& byte_index, std::string_view field_name) {
    Bytes out{kCreateDWordFieldOp};
    append(out, source);
    append(out, byte_index);
    append(out, name_string(field_name));
    return out;
}

ResourceTemplate& ResourceTemplate::io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length) {
    m_bytes.push_back(kSmallIo);
    m_bytes.push_back(0x01);  // decodes 16-bit addresses
    append_le(m_bytes, min, 2);
    append_le(m_bytes, max, 2);
    m_bytes.push_back(alignment);
    m_bytes.push_back(length);
    return *this;
}

ResourceTemplate& ResourceTemplate::irq_no_flags(uint8_t irq) {
    if (irq > 15) host_bug("IRQ descriptor beyond IRQ 15", "");
    m_bytes.push_back(kSmallIrqNoFlags);
    append_le(m_bytes, uint64_t{1} << irq, 2);
    return *this;
}

ResourceTemplate& ResourceTemplate::memory32_fixed(bool writable, uint32_t base, uint32_t length) {
    m_bytes.push_back(kLargeMemory32Fixed);
    append_le(m_bytes, 9, 2);
    m_bytes.push_back(writable ? 1 : 0);
    append_le(m_bytes, base, 4);
    append_le(m_bytes, length, 4);
    return *this;
}

ResourceTemplate& ResourceTemplate::word_bus_number(AddressUsage usage, uint16_t min, uint16_t max) {
    append(m_bytes, address_descriptor(kLargeWordAddress, 2, kResourceBus, usage, 0, min, max));
    return *this;
}

ResourceTemplate& ResourceTemplate::word_io(AddressUsage usage, uint16_t min, uint16_t max) {
    // _RNG = 3: the window covers ISA and non-ISA ranges (Table 6.52).
    append(m_bytes, address_descriptor(kLargeWordAddress, 2, kResourceIo, usage, 0x03, min, max));
    return *this;
}

ResourceTemplate& ResourceTemplate::dword_memory(AddressUsage usage, Cacheability cache, bool writable,
                                                 uint32_t min, uint32_t max) {
    append(m_bytes, address_descriptor(kLargeDWordAddress, 4, kResourceMemory, usage,
                                       memory_flags(cache, writable), min, max));
    return *this;
}

ResourceTemplate& ResourceTemplate::qword_memory(AddressUsage usage, Cacheability cache, bool writable,
                                                 uint64_t min, uint64_t max) {
    append(m_bytes, address_descriptor(kLargeQWordAddress, 8, kResourceMemory, usage,
                                       memory_flags(cache, writable), min, max));
    return *this;
}

ResourceTemplate& ResourceTemplate::interrupt(AddressUsage usage, Trigger trigger, Polarity polarity,
                                              bool shared, std::span<const uint32_t> gsis) {
    if (gsis.empty() || gsis.size() > 255) host_bug("Interrupt descriptor needs 1..255 interrupts", "");
    m_bytes.push_back(kLargeExtendedIrq);
    append_le(m_bytes, 2 + 4 * gsis.size(), 2);
    uint8_t flags = 0;
    if (usage == AddressUsage::kConsumer) flags |= 0x01;
    if (trigger == Trigger::kEdge) flags |= 0x02;
    if (polarity == Polarity::kActiveLow) flags |= 0x04;
    if (shared) flags |= 0x08;
    m_bytes.push_back(flags);
    m_bytes.push_back(static_cast<uint8_t>(gsis.size()));
    for (uint32_t gsi : gsis)
        append_le(m_bytes, gsi, 4);
    return *this;
}

Bytes ResourceTemplate::descriptors() const {
    Bytes out = m_bytes;
    out.push_back(kSmallEndTag);
    out.push_back(0);
    return out;
}

Bytes ResourceTemplate::to_buffer() const {
    return buffer(descriptors());
}

}  // namespace vireo::arch::x86::acpi::aml
