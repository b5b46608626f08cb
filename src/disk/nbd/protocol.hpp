// NBD wire protocol: magic numbers, option/command/flag values and packed message layouts
// (NetworkBlockDevice doc/proto.md, fixed newstyle negotiation, simple replies).
#pragma once

#include <cstdint>

#include "base/endian.hpp"

namespace vireo::disk::nbd {

// proto.md §Newstyle negotiation
inline constexpr uint64_t kInitMagic = 0x4e42444d41474943;    // "NBDMAGIC"
inline constexpr uint64_t kOptionMagic = 0x49484156454F5054;  // "IHAVEOPT"
inline constexpr uint64_t kOptionReplyMagic = 0x3e889045565a9;
// proto.md §Transmission
inline constexpr uint32_t kRequestMagic = 0x25609513;
inline constexpr uint32_t kSimpleReplyMagic = 0x67446698;

inline constexpr uint16_t kDefaultPort = 10809;  // IANA-assigned

// Handshake flags (server, 16 bits) — proto.md §Handshake flags
inline constexpr uint16_t kFlagFixedNewstyle = 1 << 0;
inline constexpr uint16_t kFlagNoZeroes = 1 << 1;
// Client flags (32 bits) — proto.md §Client flags
inline constexpr uint32_t kClientFlagFixedNewstyle = 1 << 0;
inline constexpr uint32_t kClientFlagNoZeroes = 1 << 1;

// Transmission flags (16 bits) — proto.md §Transmission flags
inline constexpr uint16_t kFlagHasFlags = 1 << 0;
inline constexpr uint16_t kFlagReadOnly = 1 << 1;
inline constexpr uint16_t kFlagSendFlush = 1 << 2;
inline constexpr uint16_t kFlagSendFua = 1 << 3;
inline constexpr uint16_t kFlagRotational = 1 << 4;
inline constexpr uint16_t kFlagSendTrim = 1 << 5;
inline constexpr uint16_t kFlagSendWriteZeroes = 1 << 6;
inline constexpr uint16_t kFlagSendDf = 1 << 7;
inline constexpr uint16_t kFlagCanMultiConn = 1 << 8;
inline constexpr uint16_t kFlagSendResize = 1 << 9;
inline constexpr uint16_t kFlagSendCache = 1 << 10;
inline constexpr uint16_t kFlagSendFastZero = 1 << 11;

// Options — proto.md §Option types
enum class Option : uint32_t {
    kExportName = 1,
    kAbort = 2,
    kList = 3,
    kPeekExport = 4,  // withdrawn
    kStartTls = 5,
    kInfo = 6,
    kGo = 7,
    kStructuredReply = 8,
    kListMetaContext = 9,
    kSetMetaContext = 10,
    kExtendedHeaders = 11,
};

// Option reply types — proto.md §Option reply types; errors have bit 31 set.
inline constexpr uint32_t kRepAck = 1;
inline constexpr uint32_t kRepServer = 2;
inline constexpr uint32_t kRepInfo = 3;
inline constexpr uint32_t kRepErrUnsup = 0x80000001;
inline constexpr uint32_t kRepErrPolicy = 0x80000002;
inline constexpr uint32_t kRepErrInvalid = 0x80000003;
inline constexpr uint32_t kRepErrPlatform = 0x80000004;
inline constexpr uint32_t kRepErrTlsReqd = 0x80000005;
inline constexpr uint32_t kRepErrUnknown = 0x80000006;
inline constexpr uint32_t kRepErrShutdown = 0x80000007;
inline constexpr uint32_t kRepErrBlockSizeReqd = 0x80000008;
inline constexpr uint32_t kRepErrTooBig = 0x80000009;

// Information types in NBD_OPT_INFO/GO — proto.md §NBD_REP_INFO
inline constexpr uint16_t kInfoExport = 0;
inline constexpr uint16_t kInfoName = 1;
inline constexpr uint16_t kInfoDescription = 2;
inline constexpr uint16_t kInfoBlockSize = 3;

// Commands — proto.md §Request types
enum class Command : uint16_t {
    kRead = 0,
    kWrite = 1,
    kDisc = 2,
    kFlush = 3,
    kTrim = 4,
    kCache = 5,
    kWriteZeroes = 6,
    kBlockStatus = 7,
    kResize = 8,
};

// Command flags — proto.md §Command flags
inline constexpr uint16_t kCmdFlagFua = 1 << 0;
inline constexpr uint16_t kCmdFlagNoHole = 1 << 1;
inline constexpr uint16_t kCmdFlagDf = 1 << 2;
inline constexpr uint16_t kCmdFlagReqOne = 1 << 3;
inline constexpr uint16_t kCmdFlagFastZero = 1 << 4;

// Error values in replies — proto.md §Error values (fixed numbers, not the host's errno)
inline constexpr uint32_t kEPerm = 1;
inline constexpr uint32_t kEIo = 5;
inline constexpr uint32_t kENoMem = 12;
inline constexpr uint32_t kEInval = 22;
inline constexpr uint32_t kENoSpc = 28;
inline constexpr uint32_t kEOverflow = 75;
inline constexpr uint32_t kENotSup = 95;
inline constexpr uint32_t kEShutdown = 108;

// Strings (export names, messages) MUST be no longer than 4096 bytes — proto.md §Conventions
inline constexpr uint32_t kMaxStringLength = 4096;
// Any payload up to 2^25 bytes SHOULD NOT be considered a denial of service — §Size constraints
inline constexpr uint32_t kMaxPayload = 32u << 20;

// Server greeting, newstyle.
struct [[gnu::packed]] Greeting {
    Be<uint64_t> init_magic;
    Be<uint64_t> option_magic;
    Be<uint16_t> handshake_flags;
};
static_assert(sizeof(Greeting) == 18);

struct [[gnu::packed]] OptionHeader {
    Be<uint64_t> magic;  // kOptionMagic
    Be<uint32_t> option;
    Be<uint32_t> length;  // of the option data that follows
};
static_assert(sizeof(OptionHeader) == 16);

struct [[gnu::packed]] OptionReplyHeader {
    Be<uint64_t> magic;  // kOptionReplyMagic
    Be<uint32_t> option;
    Be<uint32_t> type;
    Be<uint32_t> length;
};
static_assert(sizeof(OptionReplyHeader) == 20);

// Reply to NBD_OPT_EXPORT_NAME (followed by 124 zero bytes unless NO_ZEROES was agreed).
struct [[gnu::packed]] ExportNameReply {
    Be<uint64_t> size;
    Be<uint16_t> transmission_flags;
};
static_assert(sizeof(ExportNameReply) == 10);

struct [[gnu::packed]] InfoExport {
    Be<uint16_t> type;  // kInfoExport
    Be<uint64_t> size;
    Be<uint16_t> transmission_flags;
};
static_assert(sizeof(InfoExport) == 12);

struct [[gnu::packed]] InfoBlockSize {
    Be<uint16_t> type;  // kInfoBlockSize
    Be<uint32_t> minimum;
    Be<uint32_t> preferred;
    Be<uint32_t> maximum;
};
static_assert(sizeof(InfoBlockSize) == 14);

struct [[gnu::packed]] Request {
    Be<uint32_t> magic;  // kRequestMagic
    Be<uint16_t> flags;
    Be<uint16_t> type;
    Be<uint64_t> handle;
    Be<uint64_t> offset;
    Be<uint32_t> length;
};
static_assert(sizeof(Request) == 28);

struct [[gnu::packed]] SimpleReply {
    Be<uint32_t> magic;  // kSimpleReplyMagic
    Be<uint32_t> error;
    Be<uint64_t> handle;
};
static_assert(sizeof(SimpleReply) == 16);

}  // namespace vireo::disk::nbd
