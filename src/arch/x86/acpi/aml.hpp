// A small AML builder: the terms, objects and resource descriptors Vireo's DSDT is written in
// (ACPI 6.5 §20 "ACPI Machine Language Specification", §6.4 "Resource Data Types").
// Every function returns encoded bytes; terms nest by passing bytes into their parents.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace vireo::arch::x86::acpi::aml {

using Bytes = std::vector<uint8_t>;
using TermList = std::vector<Bytes>;

// ---- Names and data (§20.2.2, §20.2.3) ---------------------------------------------------
// A NameString: optional root '\' or parent '^' prefixes, then dot-separated segments of up
// to four characters ([A-Z_][A-Z0-9_]*; short ones are padded with '_'). "" is the NullName.
// Names are Vireo's own constants, so an invalid one is a host bug and aborts.
Bytes name_string(std::string_view path);
// The smallest encoding: ZeroOp, OneOp, OnesOp, or Byte/Word/DWord/QWord constants.
Bytes integer(uint64_t value);
// A String constant (ASCII, no NUL inside).
Bytes string(std::string_view text);
// EISAID("PNP0A03"): a compressed EISA ID as a DWord constant.
Bytes eisa_id(std::string_view id);
// The 32-bit value eisa_id() encodes.
uint32_t eisa_id_value(std::string_view id);
// A Buffer holding the 16 bytes of ToUUID("xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx").
Bytes uuid(std::string_view text);
Bytes buffer(std::span<const uint8_t> bytes);
// Package with up to 255 elements (data objects or names).
Bytes package(const TermList& elements);

// ---- Named objects and namespace modifiers (§20.2.5) ---------------------------------------
Bytes name(std::string_view path, const Bytes& value);
Bytes scope(std::string_view path, const TermList& terms);
Bytes device(std::string_view path, const TermList& terms);
// `args` 0..7; serialized methods are not reentered concurrently (§19.6.85).
Bytes method(std::string_view path, uint8_t args, bool serialized, const TermList& body);

// ---- Statements and expressions (§20.2.5.3, §20.2.5.4) -------------------------------------
Bytes arg(uint8_t n);    // Arg0..Arg6
Bytes local(uint8_t n);  // Local0..Local7
Bytes ret(const Bytes& value);
Bytes if_(const Bytes& predicate, const TermList& body);
Bytes else_(const TermList& body);
Bytes lequal(const Bytes& a, const Bytes& b);
Bytes and_(const Bytes& a, const Bytes& b, const Bytes& target);
Bytes or_(const Bytes& a, const Bytes& b, const Bytes& target);
Bytes store(const Bytes& value, const Bytes& target);
// CreateDWordField(source, byte_index, name)
Bytes create_dword_field(const Bytes& source, const Bytes& byte_index, std::string_view name);

// ---- Resource templates (§6.4) --------------------------------------------------------------
enum class AddressUsage : uint8_t { kProducer, kConsumer };
enum class Cacheability : uint8_t {
    kNonCacheable = 0,
    kCacheable = 1,
    kWriteCombining = 2,
    kPrefetchable = 3
};
enum class Trigger : uint8_t { kLevel, kEdge };
enum class Polarity : uint8_t { kActiveHigh, kActiveLow };

// A ResourceTemplate(): descriptors in order, closed by an End Tag when turned into a Buffer.
class ResourceTemplate {
  public:
    // IO(Decode16, min, max, alignment, length) — §6.4.2.5
    ResourceTemplate& io(uint16_t min, uint16_t max, uint8_t alignment, uint8_t length);
    // IRQNoFlags(){irq} — §6.4.2.1 (edge, active high, exclusive); irq 0..15
    ResourceTemplate& irq_no_flags(uint8_t irq);
    // Memory32Fixed(ReadWrite or ReadOnly, base, length) — §6.4.3.4
    ResourceTemplate& memory32_fixed(bool writable, uint32_t base, uint32_t length);
    // WordBusNumber(usage, MinFixed, MaxFixed, PosDecode, 0, min, max, 0, max-min+1) — §6.4.3.5.3
    ResourceTemplate& word_bus_number(AddressUsage usage, uint16_t min, uint16_t max);
    // WordIO(usage, MinFixed, MaxFixed, PosDecode, EntireRange, 0, min, max, 0, length) — §6.4.3.5.3
    ResourceTemplate& word_io(AddressUsage usage, uint16_t min, uint16_t max);
    // DWordMemory(usage, PosDecode, MinFixed, MaxFixed, cache, ReadWrite, 0, min, max, 0, length)
    // — §6.4.3.5.2
    ResourceTemplate& dword_memory(AddressUsage usage, Cacheability cache, bool writable, uint32_t min,
                                   uint32_t max);
    // QWordMemory(...) — §6.4.3.5.1
    ResourceTemplate& qword_memory(AddressUsage usage, Cacheability cache, bool writable, uint64_t min,
                                   uint64_t max);
    // Interrupt(usage, trigger, polarity, Exclusive/Shared){gsi...} — §6.4.3.6
    ResourceTemplate& interrupt(AddressUsage usage, Trigger trigger, Polarity polarity, bool shared,
                                std::span<const uint32_t> gsis);

    // The descriptors plus the End Tag (checksum 0: "treated as if the checksum operation
    // yielded zero", §6.4.2.9).
    Bytes descriptors() const;
    // Buffer(){...} holding descriptors(), the value of a _CRS.
    Bytes to_buffer() const;

  private:
    Bytes m_bytes;
};

// PkgLength for a body of `body_length` bytes (§20.2.4); exposed for tests.
Bytes pkg_length(size_t body_length);

}  // namespace vireo::arch::x86::acpi::aml
