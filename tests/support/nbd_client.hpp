// A small blocking NBD client for tests: fixed newstyle handshake, simple replies, pipelined
// requests, and raw access to the socket for malformed input.
#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cstring>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "base/endian.hpp"
#include "base/result.hpp"
#include "base/unique_fd.hpp"
#include "disk/nbd/protocol.hpp"

namespace vireo::test {

namespace nbd = vireo::disk::nbd;

class NbdClient {
  public:
    struct ExportInfo {
        uint64_t size = 0;
        uint16_t flags = 0;
        uint32_t min_block = 0, preferred_block = 0, max_block = 0;
        std::string name;
        std::string description;
    };
    struct OptionReply {
        uint32_t option = 0;
        uint32_t type = 0;
        std::vector<uint8_t> data;
    };
    struct Reply {
        uint64_t handle = 0;
        uint32_t error = 0;
        std::vector<uint8_t> data;
    };

    static Result<NbdClient> connect_unix(const std::string& path) {
        UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return os_error("socket");
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
            return os_error("connect " + path);
        }
        return NbdClient(std::move(fd));
    }
    static Result<NbdClient> connect_tcp(const std::string& host, uint16_t port) {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        if (!fd) return os_error("socket");
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
        if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
            return os_error("connect " + host);
        }
        int one = 1;
        ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return NbdClient(std::move(fd));
    }

    int fd() const { return m_fd.get(); }

    // --- raw bytes ---
    Status send_raw(std::span<const uint8_t> data) {
        size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::send(m_fd.get(), data.data() + done, data.size() - done, MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return os_error("send");
            done += static_cast<size_t>(n);
        }
        return {};
    }
    Status recv_exact(void* out, size_t n) {
        auto* p = static_cast<uint8_t*>(out);
        size_t done = 0;
        while (done < n) {
            ssize_t r = ::recv(m_fd.get(), p + done, n - done, 0);
            if (r < 0 && errno == EINTR) continue;
            if (r < 0) return os_error("recv");
            if (r == 0) return Error("connection closed by the server", ECONNRESET);
            done += static_cast<size_t>(r);
        }
        return {};
    }
    // True if the server closed the connection (EOF) within timeout_ms; discards data read.
    bool closed_by_server(int timeout_ms = 5000) {
        for (;;) {
            pollfd p{m_fd.get(), POLLIN, 0};
            if (::poll(&p, 1, timeout_ms) <= 0) return false;
            uint8_t buf[4096];
            ssize_t r = ::recv(m_fd.get(), buf, sizeof buf, 0);
            if (r == 0) return true;
            if (r < 0) return errno == ECONNRESET;
        }
    }

    // --- handshake ---
    Result<uint16_t> read_greeting() {
        nbd::Greeting g;
        VIREO_TRY(recv_exact(&g, sizeof g));
        if (g.init_magic.get() != nbd::kInitMagic || g.option_magic.get() != nbd::kOptionMagic) {
            return make_error("bad greeting magic");
        }
        return g.handshake_flags.get();
    }
    Status send_client_flags(uint32_t flags) {
        uint8_t b[4];
        store_be<uint32_t>(b, flags);
        return send_raw(b);
    }
    // Greeting + client flags (fixed newstyle, no zeroes).
    Status start(uint32_t client_flags = nbd::kClientFlagFixedNewstyle | nbd::kClientFlagNoZeroes) {
        VIREO_TRY(read_greeting());
        return send_client_flags(client_flags);
    }
    Status send_option(uint32_t option, std::span<const uint8_t> data = {}) {
        std::vector<uint8_t> msg(sizeof(nbd::OptionHeader));
        nbd::OptionHeader h{nbd::kOptionMagic, option, static_cast<uint32_t>(data.size())};
        std::memcpy(msg.data(), &h, sizeof h);
        msg.insert(msg.end(), data.begin(), data.end());
        return send_raw(msg);
    }
    Result<OptionReply> read_option_reply() {
        nbd::OptionReplyHeader h;
        VIREO_TRY(recv_exact(&h, sizeof h));
        if (h.magic.get() != nbd::kOptionReplyMagic) return make_error("bad option reply magic");
        OptionReply r;
        r.option = h.option.get();
        r.type = h.type.get();
        if (h.length.get() > (1u << 20)) return make_error("option reply too long");
        r.data.resize(h.length.get());
        VIREO_TRY(recv_exact(r.data.data(), r.data.size()));
        return r;
    }
    static std::vector<uint8_t> info_request(const std::string& name, std::vector<uint16_t> infos) {
        std::vector<uint8_t> d(4 + name.size() + 2 + infos.size() * 2);
        store_be<uint32_t>(d.data(), static_cast<uint32_t>(name.size()));
        std::memcpy(d.data() + 4, name.data(), name.size());
        store_be<uint16_t>(d.data() + 4 + name.size(), static_cast<uint16_t>(infos.size()));
        for (size_t i = 0; i < infos.size(); ++i)
            store_be<uint16_t>(d.data() + 4 + name.size() + 2 + i * 2, infos[i]);
        return d;
    }
    // NBD_OPT_INFO or NBD_OPT_GO; an error reply becomes an Error with the reply type in os_error().
    Result<ExportInfo> info_or_go(nbd::Option option, const std::string& name,
                                  std::vector<uint16_t> infos = {nbd::kInfoBlockSize, nbd::kInfoName,
                                                                 nbd::kInfoDescription}) {
        VIREO_TRY(send_option(static_cast<uint32_t>(option), info_request(name, std::move(infos))));
        ExportInfo info;
        for (;;) {
            VIREO_ASSIGN_OR_RETURN(OptionReply r, read_option_reply());
            if (r.type == nbd::kRepAck) break;
            if (r.type & 0x80000000u) {
                return Error(std::string(r.data.begin(), r.data.end()), static_cast<int>(r.type & 0xff));
            }
            if (r.type != nbd::kRepInfo || r.data.size() < 2) return make_error("unexpected option reply");
            uint16_t type = load_be<uint16_t>(r.data.data());
            if (type == nbd::kInfoExport && r.data.size() == 12) {
                info.size = load_be<uint64_t>(r.data.data() + 2);
                info.flags = load_be<uint16_t>(r.data.data() + 10);
            } else if (type == nbd::kInfoBlockSize && r.data.size() == 14) {
                info.min_block = load_be<uint32_t>(r.data.data() + 2);
                info.preferred_block = load_be<uint32_t>(r.data.data() + 6);
                info.max_block = load_be<uint32_t>(r.data.data() + 10);
            } else if (type == nbd::kInfoName) {
                info.name.assign(r.data.begin() + 2, r.data.end());
            } else if (type == nbd::kInfoDescription) {
                info.description.assign(r.data.begin() + 2, r.data.end());
            }
        }
        return info;
    }
    Result<ExportInfo> go(const std::string& name = "") {
        VIREO_TRY(start());
        return info_or_go(nbd::Option::kGo, name);
    }
    Result<ExportInfo> export_name(const std::string& name, bool no_zeroes) {
        VIREO_TRY(start(nbd::kClientFlagFixedNewstyle | (no_zeroes ? nbd::kClientFlagNoZeroes : 0)));
        VIREO_TRY(send_option(static_cast<uint32_t>(nbd::Option::kExportName),
                              {reinterpret_cast<const uint8_t*>(name.data()), name.size()}));
        nbd::ExportNameReply r;
        VIREO_TRY(recv_exact(&r, sizeof r));
        if (!no_zeroes) {
            uint8_t zeroes[124];
            VIREO_TRY(recv_exact(zeroes, sizeof zeroes));
        }
        ExportInfo info;
        info.size = r.size.get();
        info.flags = r.transmission_flags.get();
        return info;
    }

    // --- transmission ---
    Result<uint64_t> send_request(nbd::Command type, uint16_t flags, uint64_t offset, uint32_t length,
                                  std::span<const uint8_t> payload = {}) {
        uint64_t handle = m_next_handle++;
        nbd::Request req{nbd::kRequestMagic, flags, static_cast<uint16_t>(type), handle, offset, length};
        std::vector<uint8_t> msg(sizeof req);
        std::memcpy(msg.data(), &req, sizeof req);
        msg.insert(msg.end(), payload.begin(), payload.end());
        VIREO_TRY(send_raw(msg));
        if (type == nbd::Command::kRead) m_read_lengths[handle] = length;
        return handle;
    }
    Result<Reply> read_reply() {
        nbd::SimpleReply h;
        VIREO_TRY(recv_exact(&h, sizeof h));
        if (h.magic.get() != nbd::kSimpleReplyMagic)
            return make_error("bad reply magic {:#x}", h.magic.get());
        Reply r;
        r.handle = h.handle.get();
        r.error = h.error.get();
        auto it = m_read_lengths.find(r.handle);
        if (it != m_read_lengths.end()) {
            if (r.error == 0) {
                r.data.resize(it->second);
                VIREO_TRY(recv_exact(r.data.data(), r.data.size()));
            }
            m_read_lengths.erase(it);
        }
        return r;
    }
    Result<Reply> call(nbd::Command type, uint16_t flags, uint64_t offset, uint32_t length,
                       std::span<const uint8_t> payload = {}) {
        VIREO_ASSIGN_OR_RETURN(uint64_t handle, send_request(type, flags, offset, length, payload));
        VIREO_ASSIGN_OR_RETURN(Reply r, read_reply());
        if (r.handle != handle)
            return make_error("reply for handle {} while waiting for {}", r.handle, handle);
        return r;
    }
    Result<uint32_t> write(uint64_t offset, std::span<const uint8_t> data, uint16_t flags = 0) {
        VIREO_ASSIGN_OR_RETURN(
            Reply r, call(nbd::Command::kWrite, flags, offset, static_cast<uint32_t>(data.size()), data));
        return r.error;
    }
    Result<Reply> read(uint64_t offset, uint32_t length) {
        return call(nbd::Command::kRead, 0, offset, length);
    }
    Result<uint32_t> flush() {
        VIREO_ASSIGN_OR_RETURN(Reply r, call(nbd::Command::kFlush, 0, 0, 0));
        return r.error;
    }
    Status disconnect() {
        VIREO_TRY(send_request(nbd::Command::kDisc, 0, 0, 0));
        return {};
    }

  private:
    explicit NbdClient(UniqueFd fd) : m_fd(std::move(fd)) {}
    UniqueFd m_fd;
    uint64_t m_next_handle = 1;
    std::map<uint64_t, uint32_t> m_read_lengths;
};

}  // namespace vireo::test
