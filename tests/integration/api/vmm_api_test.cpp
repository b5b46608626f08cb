// The control API of a real vireo-vmm, driven with curl: every endpoint, the state machine,
// errors, and the VMM's exit when the guest or the API stops it.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "integration/vmm_fixture.hpp"

namespace vireo::testing {
namespace {

class VmmApiTest : public VmmTest {};

TEST_F(VmmApiTest, GetVmDescribesTheRunningVm) {
    auto vmm = start_counting("a", "", {"--cpus", "2"});
    ASSERT_TRUE(wait_for_counts("a", 1));
    auto r = api("a", "GET", "/api/v1/vm");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["vcpus"], 2);
    EXPECT_EQ(j["memory_mib"], 64);
    EXPECT_EQ(j["id"].get<std::string>().size(), 36u);
    EXPECT_TRUE(j["uptime_ms"].is_number_unsigned());
    EXPECT_EQ(j["config"]["kernel"], guest_path("pvh64.elf"));
    EXPECT_EQ(j["config"]["cpus"], 2);
    struct stat st {};
    ASSERT_EQ(::stat(sock("a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(VmmApiTest, Counters) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 5));
    auto r = api("a", "GET", "/api/v1/vm.counters");
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    ASSERT_EQ(j["vcpus"].size(), 1u);
    EXPECT_EQ(j["vcpus"][0]["id"], 0);
    EXPECT_GT(j["vcpus"][0]["exits"]["io"].get<uint64_t>(), 10u);
    EXPECT_GT(j["vcpus"][0]["total_exits"].get<uint64_t>(), 10u);
    auto serial = j["devices"]["serial"];
    // The guest printed at least the text of five counts, checking the line status each time.
    EXPECT_GE(serial["bytes"].get<uint64_t>(), 5u * 9u);
    EXPECT_GE(serial["requests"].get<uint64_t>(), serial["bytes"].get<uint64_t>());
    EXPECT_EQ(serial["errors"], 0);
    for (const char* dev : {"rtc", "i8042", "acpi-pm"})
        EXPECT_TRUE(j["devices"].contains(dev)) << dev;
    EXPECT_GT(j["rss_bytes"].get<uint64_t>(), 1u << 20);
}

TEST_F(VmmApiTest, PauseAndResume) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 3));
    auto p = api("a", "PUT", "/api/v1/vm.pause");
    ASSERT_EQ(p.status, 200) << p.body;
    EXPECT_EQ(p.json()["state"], "paused");
    std::string paused_output = read_file(serial("a"));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    EXPECT_EQ(read_file(serial("a")), paused_output) << "a paused guest must not run";
    auto again = api("a", "PUT", "/api/v1/vm.pause");
    EXPECT_EQ(again.status, 409);
    EXPECT_TRUE(again.json()["error"].is_string());
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.shutdown").status, 409) << "a paused guest cannot see the button";

    auto r = api("a", "PUT", "/api/v1/vm.resume");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["state"], "running");
    EXPECT_TRUE(wait_for_counts("a", counts_in(paused_output).size() + 3));
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.resume").status, 409);
    EXPECT_TRUE(consecutive_from_one(counts_in(read_file(serial("a")))));
}

TEST_F(VmmApiTest, ShutdownPressesThePowerButtonAndTheGuestPowersOff) {
    auto vmm = start_counting("a", "button");
    ASSERT_TRUE(wait_for_counts("a", 2));
    auto r = api("a", "PUT", "/api/v1/vm.shutdown");
    ASSERT_EQ(r.status, 200) << r.body;
    // The reply may come before or after the guest reacted.
    std::string s = r.json()["state"];
    EXPECT_TRUE(s == "shutting-down" || s == "stopped") << s;
    EXPECT_EQ(vmm->wait_for(std::chrono::seconds(60)), 0) << stderr_of("a");
    EXPECT_NE(read_file(serial("a")).find("button: pressed"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(sock("a"))) << "the socket is removed on exit";
}

TEST_F(VmmApiTest, ShutdownOfAGuestThatIgnoresTheButtonLeavesItShuttingDown) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 2));
    ASSERT_EQ(api("a", "PUT", "/api/v1/vm.shutdown").status, 200);
    EXPECT_EQ(state("a"), "shutting-down");
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.shutdown").status, 409);
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.pause").status, 409);
    auto off = api("a", "PUT", "/api/v1/vm.power-off");
    ASSERT_EQ(off.status, 200);
    EXPECT_EQ(off.json()["state"], "stopped");
    EXPECT_EQ(vmm->wait_for(std::chrono::seconds(30)), 0);
}

TEST_F(VmmApiTest, PowerOffEndsTheVmmAtOnce) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 2));
    auto r = api("a", "PUT", "/api/v1/vm.power-off");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["state"], "stopped");
    EXPECT_EQ(vmm->wait_for(std::chrono::seconds(30)), 0) << stderr_of("a");
    EXPECT_FALSE(std::filesystem::exists(sock("a")));
}

TEST_F(VmmApiTest, RebootStartsTheGuestAgain) {
    auto vmm = start_counting("a");  // --on-reboot exit: an API reboot restarts anyway
    ASSERT_TRUE(wait_for_counts("a", 3));
    auto r = api("a", "PUT", "/api/v1/vm.reboot");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["state"], "running");
    ASSERT_TRUE(wait_until(
        [&] {
            std::string out = read_file(serial("a"));
            size_t second = out.find("vireo-guest", out.find("vireo-guest") + 1);
            return second != std::string::npos && counts_in(out.substr(second)).size() >= 2;
        },
        std::chrono::seconds(60)))
        << read_file(serial("a"));
    EXPECT_TRUE(vmm->running());
    EXPECT_EQ(state("a"), "running");
}

TEST_F(VmmApiTest, Errors) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 1));
    EXPECT_EQ(api("a", "GET", "/api/v1/nope").status, 404);
    auto wrong = api("a", "POST", "/api/v1/vm.pause", "{}");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_NE(wrong.headers.find("Allow: PUT"), std::string::npos);
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.snapshot", "{\"destination\": ").status, 400);
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.snapshot", "{\"resume\": false}").status, 400);
    // A destination that is not empty, or whose parent does not exist, is refused before the
    // VM is touched.
    std::filesystem::create_directory(dir.file("full"));
    std::ofstream(dir.file("full") + "/keep") << "x";
    auto full =
        api("a", "PUT", "/api/v1/vm.snapshot", nlohmann::json{{"destination", dir.file("full")}}.dump());
    EXPECT_EQ(full.status, 400);
    EXPECT_NE(full.json()["error"].get<std::string>().find("not empty"), std::string::npos);
    EXPECT_EQ(read_file(dir.file("full") + "/keep"), "x");
    EXPECT_EQ(api("a", "PUT", "/api/v1/vm.snapshot",
                  nlohmann::json{{"destination", dir.file("no/such/dir")}}.dump())
                  .status,
              400);
    auto big = api("a", "PUT", "/api/v1/vm.pause", std::string(70000, ' '));
    EXPECT_EQ(big.status, 413);
    EXPECT_EQ(state("a"), "running");
}

TEST_F(VmmApiTest, VireoApiClient) {
    auto vmm = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 1));
    std::string vireo = std::string(VIREO_BINARY_DIR) + "/bin/vireo";
    auto get = run_process({vireo, "api", sock("a"), "GET", "/api/v1/vm"});
    ASSERT_EQ(get.exit_code, 0) << get.err;
    EXPECT_EQ(nlohmann::json::parse(get.out)["state"], "running");
    auto pause = run_process({vireo, "api", sock("a"), "PUT", "vm.pause"});
    EXPECT_EQ(pause.exit_code, 0) << pause.err;
    auto again = run_process({vireo, "api", sock("a"), "PUT", "vm.pause"});
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.err.find("409"), std::string::npos) << again.err;
    auto snap = run_process({vireo, "api", sock("a"), "PUT", "vm.snapshot",
                             nlohmann::json{{"destination", dir.file("s")}}.dump()});
    EXPECT_EQ(snap.exit_code, 0) << snap.err;
    EXPECT_TRUE(std::filesystem::exists(dir.file("s") + "/manifest.json"));
}

TEST_F(VmmApiTest, StaleSocketIsReplacedAndALiveOneIsNot) {
    // A socket file left by a VMM that was killed.
    auto first = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 1));
    first->kill(SIGKILL);
    ASSERT_TRUE(first->wait_for(std::chrono::seconds(10)).has_value());
    ASSERT_TRUE(std::filesystem::exists(sock("a")));
    auto second = start_counting("a");
    EXPECT_TRUE(second->running());
    EXPECT_EQ(state("a"), "running");
    // A third VMM on the same socket refuses to start and leaves the second alone.
    auto third = run_process({vmm_binary(), "--kernel", guest_path("pvh64.elf"), "--memory", "16", "--serial",
                              "none", "--api-socket", sock("a")});
    EXPECT_EQ(third.exit_code, 1);
    EXPECT_NE(third.err.find("in use"), std::string::npos) << third.err;
    EXPECT_EQ(state("a"), "running");
}

TEST_F(VmmApiTest, GuestPowerOffEndsTheVmm) {
    // The guest powers off by itself at once.
    ChildProcess vmm({vmm_binary(), "--kernel", guest_path("pvh64.elf"), "--memory", "16", "--serial", "none",
                      "--api-socket", sock("a")},
                     dir.file("a.stdout"), dir.file("a.stderr"));
    EXPECT_EQ(vmm.wait_for(std::chrono::seconds(60)), 0) << stderr_of("a");
    EXPECT_FALSE(std::filesystem::exists(sock("a")));
}

}  // namespace
}  // namespace vireo::testing
