// Tests for nbd::Session driven with bytes (no sockets): handshake, options, commands, errors,
// limits. The backend is a real RawBackend on a temporary file.
#include "disk/nbd/session.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "base/endian.hpp"
#include "disk/io_context.hpp"
#include "disk/raw_backend.hpp"

namespace vireo::disk::nbd {
namespace {

constexpr uint64_t kDiskSize = 4 << 20;

std::vector<uint8_t> option(uint32_t opt, std::span<const uint8_t> data = {}) {
    std::vector<uint8_t> m(16 + data.size());
    OptionHeader h{kOptionMagic, opt, static_cast<uint32_t>(data.size())};
    std::memcpy(m.data(), &h, sizeof h);
    if (!data.empty()) std::memcpy(m.data() + 16, data.data(), data.size());
    return m;
}

std::vector<uint8_t> option(Option opt, std::span<const uint8_t> data = {}) {
    return option(static_cast<uint32_t>(opt), data);
}

std::vector<uint8_t> info_data(const std::string& name, std::vector<uint16_t> infos) {
    std::vector<uint8_t> d(4 + name.size() + 2 + infos.size() * 2);
    store_be<uint32_t>(d.data(), static_cast<uint32_t>(name.size()));
    std::memcpy(d.data() + 4, name.data(), name.size());
    store_be<uint16_t>(d.data() + 4 + name.size(), static_cast<uint16_t>(infos.size()));
    for (size_t i = 0; i < infos.size(); ++i)
        store_be<uint16_t>(d.data() + 4 + name.size() + 2 + i * 2, infos[i]);
    return d;
}

std::vector<uint8_t> request(Command type, uint16_t flags, uint64_t handle, uint64_t offset,
                             uint32_t length) {
    std::vector<uint8_t> m(sizeof(Request));
    Request r{kRequestMagic, flags, static_cast<uint16_t>(type), handle, offset, length};
    std::memcpy(m.data(), &r, sizeof r);
    return m;
}

std::vector<uint8_t> flags_word(uint32_t flags) {
    std::vector<uint8_t> b(4);
    store_be<uint32_t>(b.data(), flags);
    return b;
}

struct OptReply {
    uint32_t option = 0;
    uint32_t type = 0;
    std::vector<uint8_t> data;
};

class NbdSessionTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vireo-nbd-session-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        m_path = tmpl;
        ASSERT_TRUE(RawBackend::create(m_path, kDiskSize).ok());
        auto disk = RawBackend::open(m_path);
        ASSERT_TRUE(disk.ok());
        m_disk = std::move(*disk);
        auto ctx = IoContext::create();
        ASSERT_TRUE(ctx.ok());
        m_ctx = std::move(*ctx);
        m_export.name = "disk0";
        m_export.description = "test disk";
        m_export.backend = m_disk.get();
    }
    void TearDown() override {
        if (m_session) {
            m_session->hard_close("test over");
            ASSERT_TRUE(m_ctx->drain().ok());
        }
        m_session.reset();
        ::unlink(m_path.c_str());
    }

    void use_disk_of(uint64_t size) {
        ASSERT_TRUE(RawBackend::create(m_path, size).ok());
        auto disk = RawBackend::open(m_path);
        ASSERT_TRUE(disk.ok());
        m_disk = std::move(*disk);
        m_export.backend = m_disk.get();
    }
    void make_session() { m_session = std::make_unique<Session>(*m_ctx, m_export, m_limits, m_budget); }

    // Feeds bytes as far as the session takes them; returns how many it took.
    size_t feed(std::span<const uint8_t> data) {
        size_t off = 0;
        while (off < data.size()) {
            auto space = m_session->input_space();
            if (space.empty()) break;
            size_t n = std::min(space.size(), data.size() - off);
            std::memcpy(space.data(), data.data() + off, n);
            m_session->input_received(n);
            off += n;
        }
        return off;
    }
    void feed_all(std::span<const uint8_t> data) {
        size_t took = feed(data);
        ASSERT_EQ(took, data.size());
    }
    // Runs backend I/O to completion and, if `take_output`, collects everything sent.
    void pump(bool take_output = true) {
        for (;;) {
            ASSERT_TRUE(m_ctx->drain().ok());
            if (!take_output || !m_session->has_output()) return;
            while (m_session->has_output()) {
                iovec iov[64];
                size_t k = m_session->gather_output(iov);
                size_t total = 0;
                for (size_t i = 0; i < k; ++i) {
                    auto* p = static_cast<uint8_t*>(iov[i].iov_base);
                    m_out.insert(m_out.end(), p, p + iov[i].iov_len);
                    total += iov[i].iov_len;
                }
                m_session->output_sent(total);
            }
        }
    }
    std::vector<uint8_t> take(size_t n) {
        EXPECT_GE(m_out.size() - m_pos, n);
        if (m_out.size() - m_pos < n) return {};
        std::vector<uint8_t> v(m_out.begin() + static_cast<long>(m_pos),
                               m_out.begin() + static_cast<long>(m_pos + n));
        m_pos += n;
        return v;
    }
    size_t unread() const { return m_out.size() - m_pos; }
    void expect_greeting() {
        pump();
        auto g = take(18);
        ASSERT_EQ(g.size(), 18u);
        EXPECT_EQ(load_be<uint64_t>(g.data()), kInitMagic);
        EXPECT_EQ(load_be<uint64_t>(g.data() + 8), kOptionMagic);
        EXPECT_EQ(load_be<uint16_t>(g.data() + 16), kFlagFixedNewstyle | kFlagNoZeroes);
    }
    OptReply opt_reply() {
        OptReply r;
        auto h = take(20);
        if (h.size() != 20) return r;
        EXPECT_EQ(load_be<uint64_t>(h.data()), kOptionReplyMagic);
        r.option = load_be<uint32_t>(h.data() + 8);
        r.type = load_be<uint32_t>(h.data() + 12);
        r.data = take(load_be<uint32_t>(h.data() + 16));
        return r;
    }
    // Handshake through NBD_OPT_GO.
    void go() {
        make_session();
        expect_greeting();
        feed_all(flags_word(kClientFlagFixedNewstyle | kClientFlagNoZeroes));
        auto d = info_data("disk0", {kInfoBlockSize});
        feed_all(option(Option::kGo, d));
        pump();
        for (;;) {
            OptReply r = opt_reply();
            ASSERT_NE(r.type & 0x80000000u, 0x80000000u) << std::string(r.data.begin(), r.data.end());
            if (r.type == kRepAck) break;
        }
        ASSERT_TRUE(m_session->in_transmission());
    }
    struct SimpleReplyMsg {
        uint32_t error = ~0u;
        uint64_t handle = 0;
    };
    SimpleReplyMsg reply() {
        SimpleReplyMsg r;
        auto h = take(16);
        if (h.size() != 16) return r;
        EXPECT_EQ(load_be<uint32_t>(h.data()), kSimpleReplyMagic);
        r.error = load_be<uint32_t>(h.data() + 4);
        r.handle = load_be<uint64_t>(h.data() + 8);
        return r;
    }

    std::string m_path;
    std::unique_ptr<RawBackend> m_disk;
    std::unique_ptr<IoContext> m_ctx;
    Export m_export;
    Limits m_limits;
    MemoryBudget m_budget{256 << 20};
    std::unique_ptr<Session> m_session;
    std::vector<uint8_t> m_out;
    size_t m_pos = 0;
};

TEST_F(NbdSessionTest, UnknownClientFlagsHangUp) {
    make_session();
    expect_greeting();
    feed(flags_word(1u << 5));
    EXPECT_TRUE(m_session->finished());
    EXPECT_NE(m_session->close_reason().find("unknown handshake flags"), std::string::npos);
}

TEST_F(NbdSessionTest, ListInfoAndUnknownOptions) {
    make_session();
    expect_greeting();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    feed_all(option(Option::kList));
    pump();
    OptReply server = opt_reply();
    EXPECT_EQ(server.type, kRepServer);
    ASSERT_GE(server.data.size(), 4u);
    uint32_t len = load_be<uint32_t>(server.data.data());
    EXPECT_EQ(std::string(server.data.begin() + 4, server.data.begin() + 4 + len), "disk0");
    EXPECT_EQ(std::string(server.data.begin() + 4 + len, server.data.end()), "test disk");
    EXPECT_EQ(opt_reply().type, kRepAck);

    // LIST with data is invalid; an unknown option and structured replies are unsupported.
    uint8_t junk[3] = {1, 2, 3};
    feed_all(option(Option::kList, junk));
    feed_all(option(1234));
    feed_all(option(Option::kStructuredReply));
    feed_all(option(Option::kStartTls));
    feed_all(option(Option::kSetMetaContext, junk));
    pump();
    EXPECT_EQ(opt_reply().type, kRepErrInvalid);
    OptReply unknown = opt_reply();
    EXPECT_EQ(unknown.option, 1234u);
    EXPECT_EQ(unknown.type, kRepErrUnsup);
    EXPECT_EQ(opt_reply().type, kRepErrUnsup);
    EXPECT_EQ(opt_reply().type, kRepErrUnsup);
    EXPECT_EQ(opt_reply().type, kRepErrUnsup);

    // INFO reports the export and stays in the handshake.
    feed_all(option(Option::kInfo, info_data("disk0", {kInfoName, kInfoDescription, kInfoBlockSize, 77})));
    pump();
    bool saw_export = false, saw_name = false, saw_desc = false, saw_sizes = false;
    for (;;) {
        OptReply r = opt_reply();
        if (r.type == kRepAck) break;
        ASSERT_EQ(r.type, kRepInfo);
        uint16_t type = load_be<uint16_t>(r.data.data());
        if (type == kInfoExport) {
            saw_export = true;
            EXPECT_EQ(load_be<uint64_t>(r.data.data() + 2), kDiskSize);
            uint16_t flags = load_be<uint16_t>(r.data.data() + 10);
            EXPECT_EQ(flags & kFlagReadOnly, 0);
            EXPECT_NE(flags & kFlagSendFlush, 0);
            EXPECT_NE(flags & kFlagSendFua, 0);
            EXPECT_NE(flags & kFlagSendTrim, 0);
            EXPECT_NE(flags & kFlagSendWriteZeroes, 0);
            EXPECT_NE(flags & kFlagHasFlags, 0);
        } else if (type == kInfoName) {
            saw_name = std::string(r.data.begin() + 2, r.data.end()) == "disk0";
        } else if (type == kInfoDescription) {
            saw_desc = std::string(r.data.begin() + 2, r.data.end()) == "test disk";
        } else if (type == kInfoBlockSize) {
            saw_sizes = true;
            EXPECT_EQ(load_be<uint32_t>(r.data.data() + 2), 512u);
            EXPECT_EQ(load_be<uint32_t>(r.data.data() + 6), 4096u);
            EXPECT_EQ(load_be<uint32_t>(r.data.data() + 10), kMaxPayload);
        }
    }
    EXPECT_TRUE(saw_export && saw_name && saw_desc && saw_sizes);
    EXPECT_FALSE(m_session->in_transmission());

    // Unknown export, malformed INFO.
    feed_all(option(Option::kGo, info_data("nope", {})));
    auto bad = info_data("disk0", {1, 2});
    bad.pop_back();
    feed_all(option(Option::kInfo, bad));
    auto lying = info_data("disk0", {});
    store_be<uint32_t>(lying.data(), 1000);
    feed_all(option(Option::kInfo, lying));
    uint8_t tiny[2] = {};
    feed_all(option(Option::kGo, tiny));
    pump();
    OptReply missing = opt_reply();
    EXPECT_EQ(missing.type, kRepErrUnknown);
    EXPECT_NE(std::string(missing.data.begin(), missing.data.end()).find("nope"), std::string::npos);
    EXPECT_EQ(opt_reply().type, kRepErrInvalid);
    EXPECT_EQ(opt_reply().type, kRepErrInvalid);
    EXPECT_EQ(opt_reply().type, kRepErrInvalid);
    EXPECT_FALSE(m_session->in_transmission());

    // The empty name selects the default export.
    feed_all(option(Option::kGo, info_data("", {})));
    pump();
    while (opt_reply().type != kRepAck) {
    }
    EXPECT_TRUE(m_session->in_transmission());
}

TEST_F(NbdSessionTest, ExportNameWithAndWithoutZeroes) {
    for (bool no_zeroes : {false, true}) {
        m_out.clear();
        m_pos = 0;
        make_session();
        expect_greeting();
        feed_all(flags_word(kClientFlagFixedNewstyle | (no_zeroes ? kClientFlagNoZeroes : 0)));
        std::string name = "disk0";
        feed_all(option(Option::kExportName, {reinterpret_cast<const uint8_t*>(name.data()), name.size()}));
        pump();
        EXPECT_EQ(unread(), no_zeroes ? 10u : 134u);
        auto r = take(10);
        EXPECT_EQ(load_be<uint64_t>(r.data()), kDiskSize);
        EXPECT_TRUE(m_session->in_transmission());
    }
}

TEST_F(NbdSessionTest, ExportNameForUnknownExportHangsUp) {
    make_session();
    expect_greeting();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    std::string name = "other";
    feed(option(Option::kExportName, {reinterpret_cast<const uint8_t*>(name.data()), name.size()}));
    EXPECT_TRUE(m_session->finished());
    EXPECT_FALSE(m_session->has_output());
}

TEST_F(NbdSessionTest, AbortIsAcknowledgedThenClosed) {
    make_session();
    expect_greeting();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    feed_all(option(Option::kAbort));
    EXPECT_TRUE(m_session->input_space().empty());
    pump();
    EXPECT_EQ(opt_reply().type, kRepAck);
    EXPECT_TRUE(m_session->finished());
}

TEST_F(NbdSessionTest, BadOptionMagicAndTooManyOptionsHangUp) {
    make_session();
    expect_greeting();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    auto o = option(Option::kList);
    o[0] ^= 0xff;
    feed(o);
    EXPECT_TRUE(m_session->finished());

    m_limits.max_options = 3;
    make_session();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    for (int i = 0; i < 4; ++i)
        feed(option(Option::kList));
    EXPECT_TRUE(m_session->finished());
    EXPECT_NE(m_session->close_reason().find("more than 3 options"), std::string::npos);
}

TEST_F(NbdSessionTest, OversizedOptionIsSkippedAndRefused) {
    make_session();
    expect_greeting();
    feed_all(flags_word(kClientFlagFixedNewstyle));
    std::vector<uint8_t> big(m_limits.max_option_length + 100, 0x41);
    feed_all(option(Option::kGo, big));
    feed_all(option(Option::kList));
    pump();
    OptReply r = opt_reply();
    EXPECT_EQ(r.option, static_cast<uint32_t>(Option::kGo));
    EXPECT_EQ(r.type, kRepErrTooBig);
    EXPECT_EQ(opt_reply().type, kRepServer);
    EXPECT_EQ(opt_reply().type, kRepAck);
}

TEST_F(NbdSessionTest, ReadWriteFlushTrimZeroes) {
    go();
    std::vector<uint8_t> data(8192);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 7);
    auto w = request(Command::kWrite, kCmdFlagFua, 1, 4096, 8192);
    w.insert(w.end(), data.begin(), data.end());
    feed_all(w);
    feed_all(request(Command::kFlush, 0, 2, 0, 0));
    pump();
    auto r1 = reply();
    auto r2 = reply();
    EXPECT_EQ(r1.error, 0u);
    EXPECT_EQ(r2.error, 0u);
    EXPECT_EQ(r1.handle + r2.handle, 3u);

    feed_all(request(Command::kRead, 0, 3, 4096, 8192));
    pump();
    auto rr = reply();
    EXPECT_EQ(rr.error, 0u);
    EXPECT_EQ(rr.handle, 3u);
    EXPECT_EQ(take(8192), data);

    feed_all(request(Command::kWriteZeroes, kCmdFlagNoHole, 4, 4096, 4096));
    feed_all(request(Command::kWriteZeroes, 0, 5, 8192, 512));
    feed_all(request(Command::kTrim, kCmdFlagFua, 6, 0, 4096));
    pump();
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(reply().error, 0u);
    feed_all(request(Command::kRead, 0, 7, 4096, 8192));
    pump();
    EXPECT_EQ(reply().error, 0u);
    auto back = take(8192);
    std::vector<uint8_t> expected = data;
    std::fill(expected.begin(), expected.begin() + 4096 + 512, 0);
    EXPECT_EQ(back, expected);
    EXPECT_EQ(m_session->stats().bytes_written, 8192u);
}

TEST_F(NbdSessionTest, ErrorsFollowTheSpec) {
    go();
    // Read past the end: EINVAL; write past the end: ENOSPC, and its payload is skipped.
    feed_all(request(Command::kRead, 0, 1, kDiskSize - 512, 1024));
    auto w = request(Command::kWrite, 0, 2, kDiskSize, 512);
    w.resize(w.size() + 512, 0xee);
    feed_all(w);
    feed_all(request(Command::kTrim, 0, 3, kDiskSize, 512));
    feed_all(request(Command::kWriteZeroes, 0, 4, ~0ull - 100, 512));
    // Unaligned, unknown command, unknown flag, flag on the wrong command, oversized read.
    feed_all(request(Command::kRead, 0, 5, 100, 512));
    feed_all(request(static_cast<Command>(99), 0, 6, 0, 0));
    feed_all(request(Command::kRead, 1 << 9, 7, 0, 512));
    feed_all(request(Command::kRead, kCmdFlagNoHole, 8, 0, 512));
    feed_all(request(Command::kRead, 0, 9, 0, kMaxPayload + 512));
    feed_all(request(Command::kBlockStatus, 0, 10, 0, 512));
    feed_all(request(Command::kWriteZeroes, kCmdFlagFastZero, 11, 0, 512));
    pump();
    std::map<uint64_t, uint32_t> errors;
    for (int i = 0; i < 11; ++i) {
        auto r = reply();
        errors[r.handle] = r.error;
    }
    EXPECT_EQ(errors[1], kEInval);
    EXPECT_EQ(errors[2], kENoSpc);
    EXPECT_EQ(errors[3], kEInval);
    EXPECT_EQ(errors[4], kENoSpc);
    EXPECT_EQ(errors[5], kEInval);
    EXPECT_EQ(errors[6], kEInval);
    EXPECT_EQ(errors[7], kEInval);
    EXPECT_EQ(errors[8], kEInval);
    EXPECT_EQ(errors[9], kEInval);
    EXPECT_EQ(errors[10], kEInval);
    EXPECT_EQ(errors[11], kEInval);
    EXPECT_EQ(unread(), 0u);  // no data after error replies
    EXPECT_EQ(m_session->stats().errors_replied, 11u);

    // The connection is still in sync: a normal read works.
    feed_all(request(Command::kRead, 0, 12, 0, 512));
    pump();
    EXPECT_EQ(reply().error, 0u);
    EXPECT_EQ(take(512).size(), 512u);
}

TEST_F(NbdSessionTest, OversizedWritePayloadIsSkippedThenRefused) {
    go();
    auto w = request(Command::kWrite, 0, 1, 0, kMaxPayload + 4096);
    feed_all(w);
    std::vector<uint8_t> chunk(1 << 20, 0x33);
    uint64_t left = kMaxPayload + 4096;
    while (left > 0) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(left, chunk.size()));
        feed_all({chunk.data(), n});
        left -= n;
    }
    feed_all(request(Command::kFlush, 0, 2, 0, 0));
    pump();
    auto r = reply();
    EXPECT_EQ(r.handle, 1u);
    EXPECT_EQ(r.error, kEInval);
    EXPECT_EQ(reply().handle, 2u);
    // Nothing was written.
    std::vector<uint8_t> back(4096);
    iovec v{back.data(), back.size()};
    ASSERT_TRUE(m_disk->read(0, {&v, 1}).ok());
    EXPECT_EQ(back, std::vector<uint8_t>(4096, 0));
}

TEST_F(NbdSessionTest, ReadOnlyExportRefusesWrites) {
    m_export.read_only = true;
    go();
    auto w = request(Command::kWrite, 0, 1, 0, 512);
    w.resize(w.size() + 512, 1);
    feed_all(w);
    feed_all(request(Command::kTrim, 0, 2, 0, 512));
    feed_all(request(Command::kWriteZeroes, 0, 3, 0, 512));
    feed_all(request(Command::kFlush, 0, 4, 0, 0));
    feed_all(request(Command::kRead, 0, 5, 0, 512));
    pump();
    std::map<uint64_t, uint32_t> errors;
    for (int i = 0; i < 5; ++i) {
        auto r = reply();
        errors[r.handle] = r.error;
        if (r.handle == 5) take(512);
    }
    EXPECT_EQ(errors[1], kEPerm);
    EXPECT_EQ(errors[2], kEPerm);
    EXPECT_EQ(errors[3], kEPerm);
    EXPECT_EQ(errors[4], 0u);
    EXPECT_EQ(errors[5], 0u);
    EXPECT_NE(m_session->transmission_flags() & kFlagReadOnly, 0);
}

TEST_F(NbdSessionTest, ClientWindowBoundsMemory) {
    m_limits.client_window = kMaxPayload;  // 32 MiB per client
    use_disk_of(64 << 20);
    go();
    // Eight 8 MiB reads: only four fit in the window; the rest wait until replies are sent.
    std::vector<uint8_t> reqs;
    for (uint64_t i = 0; i < 8; ++i) {
        auto r = request(Command::kRead, 0, i + 1, 0, 8 << 20);
        reqs.insert(reqs.end(), r.begin(), r.end());
    }
    size_t took = feed(reqs);
    EXPECT_EQ(took, 8 * sizeof(Request));  // headers sit in the staging buffer
    pump(false);
    EXPECT_TRUE(m_session->blocked());
    EXPECT_EQ(m_budget.used(), 32u << 20);
    EXPECT_TRUE(m_session->input_space().empty());
    pump(true);
    EXPECT_FALSE(m_session->blocked());
    EXPECT_EQ(m_budget.used(), 0u);
    for (int i = 0; i < 8; ++i) {
        EXPECT_EQ(reply().error, 0u);
        take(8 << 20);
    }
}

TEST_F(NbdSessionTest, CommandCountIsBounded) {
    m_limits.max_commands = 4;
    go();
    std::vector<uint8_t> reqs;
    for (uint64_t i = 0; i < 10; ++i) {
        auto r = request(Command::kFlush, 0, i, 0, 0);
        reqs.insert(reqs.end(), r.begin(), r.end());
    }
    feed(reqs);
    pump(false);
    EXPECT_TRUE(m_session->blocked());
    pump(true);
    size_t n = 0;
    while (unread() >= 16) {
        EXPECT_EQ(reply().error, 0u);
        ++n;
    }
    EXPECT_EQ(n, 10u);
}

TEST_F(NbdSessionTest, DisconnectAnswersRequestsInFlightFirst) {
    go();
    feed_all(request(Command::kRead, 0, 1, 0, 4096));
    feed_all(request(Command::kDisc, 0, 2, 0, 0));
    EXPECT_FALSE(m_session->finished());
    EXPECT_TRUE(m_session->input_space().empty());
    pump();
    EXPECT_EQ(reply().handle, 1u);
    take(4096);
    EXPECT_TRUE(m_session->finished());
    EXPECT_EQ(m_session->close_reason(), "client disconnected");
}

TEST_F(NbdSessionTest, BadRequestMagicHangsUpAndDropsReplies) {
    go();
    feed_all(request(Command::kRead, 0, 1, 0, 4096));
    auto bad = request(Command::kRead, 0, 2, 0, 512);
    bad[0] = 0;
    feed(bad);
    EXPECT_TRUE(m_session->finished());
    pump();
    EXPECT_EQ(unread(), 0u);
    EXPECT_TRUE(m_session->idle());
}

TEST_F(NbdSessionTest, PeerClosingMidPayloadReleasesTheCommand) {
    go();
    auto w = request(Command::kWrite, 0, 1, 0, 65536);
    w.resize(w.size() + 1000, 7);
    feed_all(w);
    EXPECT_GT(m_budget.used(), 0u);
    m_session->peer_closed();
    EXPECT_EQ(m_budget.used(), 0u);
    EXPECT_TRUE(m_session->finished());
}

TEST_F(NbdSessionTest, ShutdownFinishesRequestsInFlight) {
    go();
    feed_all(request(Command::kRead, 0, 1, 0, 4096));
    m_session->begin_shutdown();
    EXPECT_TRUE(m_session->input_space().empty());
    pump();
    EXPECT_EQ(reply().handle, 1u);
    take(4096);
    EXPECT_TRUE(m_session->finished());
}

TEST_F(NbdSessionTest, ErrorMapping) {
    EXPECT_EQ(nbd_error_from(Error("x", EROFS)), kEPerm);
    EXPECT_EQ(nbd_error_from(Error("x", EDQUOT)), kENoSpc);
    EXPECT_EQ(nbd_error_from(Error("x", EFBIG)), kENoSpc);
    EXPECT_EQ(nbd_error_from(Error("x", EINVAL)), kEInval);
    EXPECT_EQ(nbd_error_from(Error("x", 0)), kEIo);
    EXPECT_EQ(nbd_error_from(Error("x", EBADF)), kEIo);
}

}  // namespace
}  // namespace vireo::disk::nbd
