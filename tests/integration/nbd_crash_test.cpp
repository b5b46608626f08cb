// Crash test: a writer drives `vireo img serve --nbd` with pipelined writes, write-zeroes and
// flushes, and the server is SIGKILLed at a random moment, many times over. After every kill the
// image must open in qemu-img (info, and convert where qemu can read the format), pass
// `vireo img check` (leaks allowed: exit 0 or 3), and hold every write that was acknowledged
// before an acknowledged flush — checked sector by sector, through Vireo and through qemu.
//
// The writer's log is the model below: per 4 KiB unit, the version known durable and the
// versions written since (any of which may have landed). Writes in flight never overlap, so the
// order of versions of a unit is the order they were sent.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "support/nbd_client.hpp"
#include "support/process.hpp"

namespace vireo::test {
namespace {

constexpr uint64_t kDiskSize = 256ull << 20;  // sparse: 128 VHD blocks of 2 MiB to allocate
constexpr int kKillsPerImage = 4;             // then a fresh image, so that blocks keep being allocated
constexpr uint64_t kUnit = 4096;
constexpr uint64_t kSector = 512;
constexpr uint32_t kBaseVersion = 0;
constexpr uint64_t kParentRegion = 64ull << 20;  // differencing: the parent holds 0xaa here
constexpr size_t kMaxInFlight = 16;

enum class Kind { kRaw, kDynamic, kDifferencing };

// Deterministic sector contents for (unit, version, sector).
void fill_sector(uint8_t* out, uint64_t unit, uint32_t version, uint32_t sector) {
    store_le<uint64_t>(out, unit);
    store_le<uint32_t>(out + 8, version);
    store_le<uint32_t>(out + 12, sector);
    uint64_t x = (unit * 0x9E3779B97F4A7C15ull) ^ (uint64_t{version} << 32) ^ sector ^ 0xD1B54A32D192ED03ull;
    for (size_t i = 16; i < kSector; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        store_le<uint64_t>(out + i, x);
    }
}

class CrashModel {
  public:
    explicit CrashModel(Kind kind) : m_kind(kind) {}

    uint32_t new_version(bool zeroes) {
        uint32_t v = ++m_last_version;
        if (zeroes) m_zero_versions.insert(v);
        return v;
    }
    // Per unit of 4 KiB (eight sectors, each tracked on its own so that a torn unit is judged
    // sector by sector).
    void sent(uint64_t unit, uint32_t version) {
        for (uint64_t s = 0; s < kSectorsPerUnit; ++s)
            m_sectors[unit * kSectorsPerUnit + s].candidates.push_back(version);
    }
    void durable(uint64_t unit, uint32_t version) {
        for (uint64_t s = 0; s < kSectorsPerUnit; ++s) {
            Sector& sec = m_sectors[unit * kSectorsPerUnit + s];
            if (version <= sec.durable) continue;
            sec.durable = version;
            std::erase_if(sec.candidates, [version](uint32_t v) { return v <= version; });
        }
    }

    void expected(uint8_t* out, uint64_t sector, uint32_t version) const {
        if (version == kBaseVersion || m_zero_versions.count(version) != 0) {
            const bool parent =
                m_kind == Kind::kDifferencing && version == kBaseVersion && sector * kSector < kParentRegion;
            std::memset(out, parent ? 0xaa : 0, kSector);
            return;
        }
        fill_sector(out, sector / kSectorsPerUnit, version, static_cast<uint32_t>(sector % kSectorsPerUnit));
    }

    // Checks one unit's 4 KiB against the acceptable versions of each sector; returns an empty
    // string or what is wrong. With `settle`, what was found becomes the durable state (the
    // image holds it now).
    std::string check_unit(uint64_t unit, const uint8_t* data, bool settle) {
        uint8_t want[kSector];
        for (uint64_t i = 0; i < kSectorsPerUnit; ++i) {
            const uint64_t sector = unit * kSectorsPerUnit + i;
            std::vector<uint32_t> allowed = {kBaseVersion};
            auto it = m_sectors.find(sector);
            if (it != m_sectors.end()) {
                allowed = {it->second.durable};
                allowed.insert(allowed.end(), it->second.candidates.begin(), it->second.candidates.end());
            }
            const uint8_t* got = data + i * kSector;
            bool ok = false;
            for (uint32_t v : allowed) {
                expected(want, sector, v);
                if (std::memcmp(want, got, kSector) == 0) {
                    ok = true;
                    if (settle && it != m_sectors.end()) {
                        it->second.durable = v;
                        it->second.candidates.clear();
                    }
                    break;
                }
            }
            if (!ok) {
                std::string versions;
                for (uint32_t v : allowed)
                    versions += " " + std::to_string(v);
                return fmt::format(
                    "sector {} (offset {:#x}): content (version field {}, first byte {:#x}) is none "
                    "of the acceptable versions [{} ] (the durable one first)",
                    sector, sector * kSector, load_le<uint32_t>(got + 8), got[0], versions);
            }
        }
        return {};
    }

    std::vector<uint64_t> touched_units() const {
        std::vector<uint64_t> out;
        for (const auto& [sector, state] : m_sectors) {
            uint64_t unit = sector / kSectorsPerUnit;
            if (out.empty() || out.back() != unit) out.push_back(unit);
        }
        return out;
    }

  private:
    static constexpr uint64_t kSectorsPerUnit = kUnit / kSector;
    struct Sector {
        uint32_t durable = kBaseVersion;
        std::vector<uint32_t> candidates;  // sent after `durable`, in send order
    };
    Kind m_kind;
    std::map<uint64_t, Sector> m_sectors;
    std::unordered_set<uint32_t> m_zero_versions;
    uint32_t m_last_version = kBaseVersion;
};

class NbdCrashTest : public ::testing::TestWithParam<Kind> {
  protected:
    void SetUp() override {
        for (const char* tool : {"qemu-img", "qemu-io"}) {
            if (!have_program(tool))
                GTEST_SKIP() << tool << " not installed (scripts/setup installs qemu-utils)";
        }
        if (GetParam() != Kind::kRaw && !vhd_tools_available()) {
            GTEST_SKIP() << "vireo img create/convert/check (VHD support) not in this build";
        }
        char dir[] = "/tmp/vireo-nbd-crash-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_socket = m_dir + "/nbd.sock";
        const char* seed_env = std::getenv("VIREO_CRASH_SEED");
        m_seed = seed_env != nullptr ? std::strtoull(seed_env, nullptr, 0) : std::random_device{}();
        m_rng.seed(m_seed);
        std::printf("crash test seed %llu (set VIREO_CRASH_SEED to repeat)\n",
                    static_cast<unsigned long long>(m_seed));
    }
    void TearDown() override {
        m_server = ServerProcess();
        if (!m_dir.empty() && !HasFailure()) std::filesystem::remove_all(m_dir);
        if (HasFailure()) std::printf("images kept in %s\n", m_dir.c_str());
    }

    static bool vhd_tools_available() {
        std::string help = run_process({vireo_binary(), "img", "--help"}).output;
        for (const char* sub : {"create", "check", "convert"}) {
            if (!std::regex_search(help, std::regex(std::string("\\n  ") + sub + " "))) return false;
        }
        return true;
    }
    static void expect_ok(const ProcessResult& r, const std::string& what) {
        ASSERT_EQ(r.exit_code, 0) << what << ":\n" << r.output;
    }

    void create_image() {
        m_image = m_dir + "/disk";
        switch (GetParam()) {
            case Kind::kRaw:
                expect_ok(
                    run_process({"qemu-img", "create", "-f", "raw", m_image, std::to_string(kDiskSize)}),
                    "create");
                break;
            case Kind::kDynamic:
                expect_ok(run_process({vireo_binary(), "img", "create", "-f", "vhd", "--subformat", "dynamic",
                                       m_image, std::to_string(kDiskSize)}),
                          "create");
                break;
            case Kind::kDifferencing: {
                std::string parent = m_dir + "/parent.vhd";
                expect_ok(run_process({vireo_binary(), "img", "create", "-f", "vhd", "--subformat", "dynamic",
                                       parent, std::to_string(kDiskSize)}),
                          "create parent");
                expect_ok(run_process({"qemu-io", "-f", "vpc", "-c",
                                       fmt::format("write -P 0xaa 0 {}", kParentRegion), parent}),
                          "fill parent");
                expect_ok(run_process({vireo_binary(), "img", "create", "-f", "vhd", "-b", parent, m_image}),
                          "create child");
                break;
            }
        }
    }

    void start_server() {
        ASSERT_TRUE(m_server.start({vireo_binary(), "img", "serve", "--nbd", "--socket", m_socket, m_image}))
            << "server did not start on " << m_image << " after a crash";
    }

    NbdClient connect() {
        auto c = NbdClient::connect_unix(m_socket);
        EXPECT_TRUE(c.ok());
        auto info = c->go();
        EXPECT_TRUE(info.ok()) << info.error().message();
        if (info.ok()) {
            EXPECT_GE(info->size, kDiskSize);
        }
        return std::move(*c);
    }

    // Reads every unit the model knows through the live server and checks it; then the model
    // takes what was found as the durable state.
    void verify_through_server() {
        NbdClient c = connect();
        const std::vector<uint64_t> units = m_model->touched_units();
        std::unordered_map<uint64_t, uint64_t> unit_of;  // handle -> unit
        size_t next = 0, done = 0;
        while (done < units.size()) {
            // Keep 32 reads in flight.
            while (next < units.size() && next - done < 32) {
                auto h = c.send_request(nbd::Command::kRead, 0, units[next] * kUnit, kUnit);
                ASSERT_TRUE(h.ok()) << h.error().message();
                unit_of[*h] = units[next++];
            }
            auto r = c.read_reply();
            ASSERT_TRUE(r.ok()) << r.error().message();
            ASSERT_EQ(r->error, 0u);
            std::string problem = m_model->check_unit(unit_of.at(r->handle), r->data.data(), true);
            ASSERT_TRUE(problem.empty()) << "through vireo: " << problem;
            ++done;
        }
        ASSERT_TRUE(c.disconnect().ok());
    }

    // Checks the model against a raw file made by qemu-img convert or vireo img convert.
    void verify_raw_copy(const std::string& raw, const std::string& who) {
        std::ifstream in(raw, std::ios::binary);
        ASSERT_TRUE(in.good()) << raw;
        std::vector<uint8_t> buf(kUnit);
        for (uint64_t unit : m_model->touched_units()) {
            in.seekg(static_cast<std::streamoff>(unit * kUnit));
            in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(kUnit));
            ASSERT_TRUE(in.good()) << who << ": short read at unit " << unit;
            std::string problem = m_model->check_unit(unit, buf.data(), false);
            ASSERT_TRUE(problem.empty()) << who << ": " << problem;
        }
    }

    // Pipelined writer: up to `max_writes` writes, with flushes, until `deadline`; then SIGKILL
    // the server and take every reply that made it out before it died. With
    // `kill_after_last_write`, the kill comes as soon as the last write is sent, with requests
    // surely in flight; otherwise at the deadline, after flushes have had time to complete.
    void write_then_kill(std::chrono::steady_clock::time_point deadline, uint64_t max_writes,
                         bool kill_after_last_write) {
        uint64_t sent_writes = 0;
        NbdClient c = connect();
        struct Pending {
            bool flush = false;
            uint64_t first_unit = 0;
            uint64_t units = 0;
            uint32_t version = 0;
        };
        std::unordered_map<uint64_t, Pending> pending;
        std::set<uint64_t> busy_units;
        std::vector<Pending> acked_since_flush_sent;  // writes acked, not yet covered by a flush
        std::vector<Pending> covered_by_flush;        // acked before the flush in flight was sent
        bool flush_in_flight = false;
        bool killed = false;
        std::uniform_int_distribution<uint64_t> unit_dist(0, kDiskSize / kUnit - 16);
        std::uniform_int_distribution<int> op_dist(0, 99);
        std::uniform_int_distribution<uint64_t> len_dist(1, 4);

        auto handle_reply = [&](const NbdClient::Reply& r) {
            auto it = pending.find(r.handle);
            ASSERT_NE(it, pending.end());
            Pending p = it->second;
            pending.erase(it);
            if (p.flush) {
                flush_in_flight = false;
                if (r.error == 0) {
                    for (const Pending& w : covered_by_flush)
                        for (uint64_t u = 0; u < w.units; ++u)
                            m_model->durable(w.first_unit + u, w.version);
                }
                covered_by_flush.clear();
                return;
            }
            for (uint64_t u = 0; u < p.units; ++u)
                busy_units.erase(p.first_unit + u);
            ASSERT_EQ(r.error, 0u) << "write failed before the kill";
            acked_since_flush_sent.push_back(p);
            ++m_acked_writes;
        };

        while (true) {
            const bool writes_done = sent_writes >= max_writes;
            const bool time_up =
                std::chrono::steady_clock::now() >= deadline || (writes_done && kill_after_last_write);
            if (time_up && !killed) {
                m_server.kill(SIGKILL);
                killed = true;
            }
            if (!killed && pending.size() < kMaxInFlight) {
                int op = op_dist(m_rng);
                if ((op < 8 || writes_done) && !flush_in_flight) {
                    auto h = c.send_request(nbd::Command::kFlush, 0, 0, 0);
                    ASSERT_TRUE(h.ok());
                    pending[*h] = Pending{true, 0, 0, 0};
                    flush_in_flight = true;
                    covered_by_flush = std::move(acked_since_flush_sent);
                    acked_since_flush_sent.clear();
                    ++m_flushes;
                    continue;
                }
                uint64_t first = unit_dist(m_rng);
                uint64_t units = len_dist(m_rng);
                bool overlaps = writes_done;
                for (uint64_t u = first; u < first + units && !overlaps; ++u)
                    overlaps = busy_units.count(u) != 0;
                if (!overlaps) {
                    const bool zeroes = op < 13;
                    uint32_t version = m_model->new_version(zeroes);
                    Result<uint64_t> h = uint64_t{0};
                    if (zeroes) {
                        h = c.send_request(nbd::Command::kWriteZeroes, op < 10 ? nbd::kCmdFlagNoHole : 0,
                                           first * kUnit, static_cast<uint32_t>(units * kUnit));
                    } else {
                        std::vector<uint8_t> data(units * kUnit);
                        for (uint64_t u = 0; u < units; ++u)
                            for (uint32_t s = 0; s < kUnit / kSector; ++s)
                                fill_sector(data.data() + u * kUnit + s * kSector, first + u, version, s);
                        h = c.send_request(nbd::Command::kWrite, 0, first * kUnit,
                                           static_cast<uint32_t>(data.size()), data);
                    }
                    for (uint64_t u = first; u < first + units; ++u) {
                        busy_units.insert(u);
                        m_model->sent(u, version);
                    }
                    if (!h.ok()) break;  // the server died under us: treat as the kill
                    pending[*h] = Pending{false, first, units, version};
                    ++sent_writes;
                    continue;
                }
            }
            if (pending.empty()) {
                if (killed) break;
                continue;
            }
            pollfd p{c.fd(), POLLIN, 0};
            int ready = ::poll(&p, 1, killed ? 2000 : 0);
            if (ready <= 0) {
                if (killed) break;
                if (pending.size() < kMaxInFlight) continue;
                ready = ::poll(&p, 1, 100);
                if (ready <= 0) continue;
            }
            auto r = c.read_reply();
            if (!r.ok()) break;  // EOF after the kill
            handle_reply(*r);
            if (HasFatalFailure()) return;
        }
        if (!killed) m_server.kill(SIGKILL);
    }

    // The final state of an image, read through the server once more.
    void final_check() {
        start_server();
        if (HasFatalFailure()) return;
        verify_through_server();
        EXPECT_EQ(m_server.kill(SIGTERM), 0);
        m_units_tracked += m_model->touched_units().size();
    }

    void run_crash_loop(int iterations) {
        std::uniform_int_distribution<int> delay_ms(20, 350);
        std::uniform_int_distribution<uint64_t> writes(16, 250);
        using Clock = std::chrono::steady_clock;
        std::map<std::string, double> phase_seconds;  // where the test's time goes
        auto t = Clock::now();
        auto lap = [&](const char* phase) {
            auto now = Clock::now();
            phase_seconds[phase] += std::chrono::duration<double>(now - t).count();
            t = now;
        };
        for (int i = 0; i < iterations; ++i) {
            SCOPED_TRACE(fmt::format("iteration {} (seed {})", i, m_seed));
            t = Clock::now();
            if (i % kKillsPerImage == 0) {
                if (i > 0) final_check();
                if (HasFatalFailure()) return;
                std::filesystem::remove_all(m_dir + "/disk");
                std::filesystem::remove_all(m_dir + "/parent.vhd");
                m_model = std::make_unique<CrashModel>(GetParam());
                create_image();
                if (HasFatalFailure()) return;
                lap("create");
            }
            start_server();
            if (HasFatalFailure()) return;
            lap("start");
            verify_through_server();
            if (HasFatalFailure()) return;
            lap("verify via nbd");
            write_then_kill(std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms(m_rng)),
                            writes(m_rng), i % 2 == 0);
            if (HasFatalFailure()) return;
            lap("write+kill");

            // The killed image opens in qemu-img and passes vireo's check (leaks allowed).
            expect_ok(run_process({"qemu-img", "info", m_image}), "qemu-img info after SIGKILL");
            if (GetParam() != Kind::kRaw) {
                auto check = run_process({vireo_binary(), "img", "check", m_image});
                ASSERT_TRUE(check.exit_code == 0 || check.exit_code == 3)
                    << "vireo img check after SIGKILL exited " << check.exit_code << ":\n"
                    << check.output;
            }
            lap("info+check");
            // qemu reads raw and dynamic images (its vpc driver ignores differencing parents);
            // vireo reads all three.
            const std::string copy = m_dir + "/copy.raw";
            if (GetParam() != Kind::kDifferencing) {
                expect_ok(run_process({"qemu-img", "convert", "-O", "raw", m_image, copy}),
                          "qemu-img convert");
                verify_raw_copy(copy, "qemu-img convert");
                if (HasFatalFailure()) return;
                lap("qemu-img convert");
            }
            if (GetParam() != Kind::kRaw) {
                expect_ok(run_process({vireo_binary(), "img", "convert", "-O", "raw", m_image, copy}),
                          "vireo img convert");
                verify_raw_copy(copy, "vireo img convert");
                if (HasFatalFailure()) return;
                lap("vireo img convert");
            }
            std::filesystem::remove(copy);
            lap("cleanup");
        }
        final_check();
        std::printf("%d kills, %llu writes acknowledged, %llu flushes, %zu units checked\n", iterations,
                    static_cast<unsigned long long>(m_acked_writes),
                    static_cast<unsigned long long>(m_flushes), m_units_tracked);
        EXPECT_GT(m_acked_writes, 0u);
        for (const auto& [phase, seconds] : phase_seconds)
            std::printf("  %-18s %6.2f s\n", phase.c_str(), seconds);
    }

    std::string m_dir, m_socket, m_image;
    uint64_t m_seed = 0;
    std::mt19937_64 m_rng;
    ServerProcess m_server;
    std::unique_ptr<CrashModel> m_model;
    uint64_t m_acked_writes = 0;
    uint64_t m_flushes = 0;
    size_t m_units_tracked = 0;
};

TEST_P(NbdCrashTest, FlushedWritesSurviveSigkill) {
    run_crash_loop(GetParam() == Kind::kRaw ? 10 : 16);
}

INSTANTIATE_TEST_SUITE_P(Images, NbdCrashTest,
                         ::testing::Values(Kind::kRaw, Kind::kDynamic, Kind::kDifferencing),
                         [](const ::testing::TestParamInfo<Kind>& param) {
                             switch (param.param) {
                                 case Kind::kRaw:
                                     return std::string("Raw");
                                 case Kind::kDynamic:
                                     return std::string("DynamicVhd");
                                 case Kind::kDifferencing:
                                     return std::string("DifferencingVhd");
                             }
                             return std::string("Unknown");
                         });

}  // namespace
}  // namespace vireo::test
