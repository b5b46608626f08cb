// Snapshot and restore of a real VM: a tiny guest counting in memory and printing each count on
// the serial port is snapshotted, its VMM killed, and the restored VM continues the count with
// no gap and no repeat.
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iostream>

#include "integration/vmm_fixture.hpp"

namespace vireo::testing {
namespace {

class SnapshotTest : public VmmTest {};

uint64_t allocated(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST_F(SnapshotTest, RestoredGuestContinuesTheCountAfterTheVmmIsKilled) {
    auto a = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 10)) << stderr_of("a");
    std::string snap = dir.file("snap");
    auto r = api("a", "PUT", "/api/v1/vm.snapshot",
                 nlohmann::json{{"destination", snap}, {"resume", false}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["state"], "paused");
    std::string before = read_file(serial("a"));
    a->kill(SIGKILL);
    ASSERT_TRUE(a->wait_for(std::chrono::seconds(10)).has_value());
    EXPECT_EQ(read_file(serial("a")), before) << "a paused guest printed more";

    auto b = start_vmm("b", {"--restore", snap});
    ASSERT_TRUE(
        wait_until([&] { return counts_in(read_file(serial("b"))).size() >= 10; }, std::chrono::seconds(60)))
        << stderr_of("b");
    EXPECT_EQ(state("b"), "running");
    // What the first VMM printed and what the restored one prints read as one run.
    std::string after = read_file(serial("b"));
    auto counts = counts_in(before + after);
    EXPECT_TRUE(consecutive_from_one(counts))
        << "before:\n"
        << before.substr(before.size() > 200 ? before.size() - 200 : 0) << "\nafter:\n"
        << after.substr(0, 200);
    EXPECT_GT(counts.size(), counts_in(before).size() + 5);
    EXPECT_EQ(after.find("vireo-guest"), std::string::npos) << "the restored guest must not boot again";

    EXPECT_EQ(api("b", "PUT", "/api/v1/vm.power-off").status, 200);
    EXPECT_EQ(b->wait_for(std::chrono::seconds(30)), 0);
}

// The round numbers of the virtio guest's "blk-loop: round N ok" lines.
std::vector<uint64_t> rounds_in(const std::string& text) {
    std::vector<uint64_t> out;
    const std::string prefix = "blk-loop: round ";
    size_t pos = 0;
    while ((pos = text.find(prefix, pos)) != std::string::npos) {
        size_t start = pos + prefix.size();
        size_t end = text.find(" ok\n", start);
        if (end == std::string::npos) break;
        out.push_back(std::stoull(text.substr(start, end - start)));
        pos = end;
    }
    return out;
}

TEST_F(SnapshotTest, VirtioBlockRequestsInFlightStayConsistent) {
    if (!std::filesystem::exists(guest_path("virtio_guest.elf")))
        GTEST_SKIP() << "the virtio test guest was not built";
    // The guest writes 8 requests of 64 KiB at once, flushes, reads them back at once and checks
    // them, round after round: snapshots catch requests in flight. A request lost or completed
    // twice, or data not on the disk, makes it print FAIL or stop counting.
    std::string disk = dir.file("disk.raw");
    { std::ofstream create(disk); }
    std::filesystem::resize_file(disk, 4u << 20);
    auto a = start_vmm("a", {"--kernel", guest_path("virtio_guest.elf"), "--memory", "64", "--cmdline",
                             "blk-loop", "--disk", disk, "--log-level", "info"});
    auto rounds = [&](const std::string& name) { return rounds_in(read_file(serial(name))).size(); };
    ASSERT_TRUE(wait_until([&] { return rounds("a") >= 2; }, std::chrono::seconds(120)))
        << read_file(serial("a")) << stderr_of("a");
    for (int i = 0; i < 4; ++i) {
        auto r = api("a", "PUT", "/api/v1/vm.snapshot",
                     nlohmann::json{{"destination", dir.file("snap" + std::to_string(i))}}.dump());
        ASSERT_EQ(r.status, 200) << r.body;
        size_t seen = rounds("a");
        ASSERT_TRUE(wait_until([&] { return rounds("a") > seen; }, std::chrono::seconds(60)))
            << "the guest stopped after snapshot " << i << "\n"
            << read_file(serial("a")) << stderr_of("a");
    }
    // Then, several times: snapshot staying paused, kill the VMM, restore in a new one. Each
    // restored VMM brings the disk back from the snapshot and the guest carries on.
    std::string output;  // serial output of every VMM so far, in order
    std::string name = "a";
    std::unique_ptr<ChildProcess> vmm = std::move(a);
    size_t caught = 0;
    std::string snap;
    for (int cycle = 0; cycle < 4; ++cycle) {
        snap = dir.file("cycle" + std::to_string(cycle));
        auto r = api(name, "PUT", "/api/v1/vm.snapshot",
                     nlohmann::json{{"destination", snap}, {"resume", false}}.dump());
        ASSERT_EQ(r.status, 200) << r.body;
        auto counters = api(name, "GET", "/api/v1/vm.counters").json();
        auto blk = counters["devices"]["virtio-blk0"];
        EXPECT_GT(blk["requests"].get<uint64_t>(), 0u) << counters.dump();
        EXPECT_GT(blk["write_bytes"].get<uint64_t>(), 0u) << counters.dump();
        EXPECT_EQ(blk["errors"], 0) << counters.dump();
        EXPECT_EQ(blk["in_flight"], 0) << "a paused VM's snapshot completed every request";
        output += read_file(serial(name));
        vmm->kill(SIGKILL);
        ASSERT_TRUE(vmm->wait_for(std::chrono::seconds(10)).has_value());
        std::string log = stderr_of(name);
        for (size_t p = 0; (p = log.find("disk requests in flight first", p)) != std::string::npos; ++p)
            ++caught;

        auto manifest = nlohmann::json::parse(read_file(snap + "/manifest.json"));
        ASSERT_EQ(manifest["disks"].size(), 1u) << manifest.dump();
        EXPECT_EQ(manifest["disks"][0]["path"], disk);
        EXPECT_EQ(manifest["disks"][0]["read_only"], false);
        EXPECT_EQ(manifest["vm"]["disks"][0]["path"], disk);

        name = "r" + std::to_string(cycle);
        vmm = start_vmm(name, {"--restore", snap, "--log-level", "info"});
        ASSERT_TRUE(wait_until([&] { return rounds(name) >= 3; }, std::chrono::seconds(120)))
            << read_file(serial(name)) << stderr_of(name);
        std::string after = read_file(serial(name));
        EXPECT_EQ(after.find("virtio-guest\n"), std::string::npos)
            << "the restored guest must not boot again";
        auto all = rounds_in(output + after);
        ASSERT_TRUE(consecutive_from_one(all))
            << "cycle " << cycle << ", before:\n"
            << output.substr(output.size() > 300 ? output.size() - 300 : 0) << "\nafter:\n"
            << after.substr(0, 300);
    }
    output += read_file(serial(name));
    EXPECT_EQ(output.find("FAIL"), std::string::npos) << output;
    std::cout << "snapshots taken with disk requests in flight: " << caught << " of 8\n";
    auto info = api(name, "GET", "/api/v1/vm").json();
    EXPECT_EQ(info["config"]["disks"][0]["path"], disk);
    // Devices come with the snapshot; naming them again is refused.
    auto refused = run_process({vmm_binary(), "--restore", snap, "--disk", disk, "--serial", "none"});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("cannot be given with a snapshot"), std::string::npos) << refused.err;

    EXPECT_EQ(api(name, "PUT", "/api/v1/vm.power-off").status, 200);
    EXPECT_EQ(vmm->wait_for(std::chrono::seconds(30)), 0);
}

TEST_F(SnapshotTest, SnapshotFilesAndResume) {
    auto a = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 3));
    std::string snap = dir.file("snap");
    auto r = api("a", "PUT", "/api/v1/vm.snapshot", nlohmann::json{{"destination", snap}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    auto j = r.json();
    EXPECT_EQ(j["state"], "running") << "resume defaults to true for a running VM";
    EXPECT_GT(j["memory_bytes"].get<uint64_t>(), 0u);
    size_t printed = counts_in(read_file(serial("a"))).size();
    EXPECT_TRUE(wait_for_counts("a", printed + 3)) << "the guest must run on after the snapshot";

    for (const char* f : {"manifest.json", "vmstate.json", "memory.bin"})
        EXPECT_TRUE(std::filesystem::exists(snap + "/" + f)) << f;
    auto manifest = nlohmann::json::parse(read_file(snap + "/manifest.json"));
    EXPECT_EQ(manifest["format_version"], 1);
    EXPECT_EQ(manifest["vcpus"], 1);
    EXPECT_EQ(manifest["memory"]["size"], 64u << 20);
    EXPECT_TRUE(manifest["cpu"]["features"].is_object());
    EXPECT_TRUE(manifest["disks"].is_array());
    // Sparse: a 64 MiB guest that touched a few pages takes a few pages.
    EXPECT_EQ(std::filesystem::file_size(snap + "/memory.bin"), 64u << 20);
    EXPECT_LT(allocated(snap + "/memory.bin"), 2u << 20);
    EXPECT_EQ(manifest["memory"]["data_bytes"], j["memory_bytes"]);
    auto state = nlohmann::json::parse(read_file(snap + "/vmstate.json"));
    ASSERT_EQ(state["vcpus"].size(), 1u);
    for (const char* key : {"regs", "sregs", "xsave", "xcrs", "msrs", "lapic", "events", "mp_state", "cpuid"})
        EXPECT_TRUE(state["vcpus"][0].contains(key)) << key;
    for (const char* key : {"pic_master", "pic_slave", "ioapic", "pit", "kvmclock"})
        EXPECT_TRUE(state["kvm"].contains(key)) << key;
    for (const char* dev : {"serial", "rtc", "i8042", "acpi-pm"})
        EXPECT_TRUE(state["devices"].contains(dev)) << dev;

    // A paused VM stays paused unless told otherwise.
    ASSERT_EQ(api("a", "PUT", "/api/v1/vm.pause").status, 200);
    auto again =
        api("a", "PUT", "/api/v1/vm.snapshot", nlohmann::json{{"destination", dir.file("snap2")}}.dump());
    ASSERT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.json()["state"], "paused");
    auto resumed = api("a", "PUT", "/api/v1/vm.snapshot",
                       nlohmann::json{{"destination", dir.file("snap3")}, {"resume", true}}.dump());
    ASSERT_EQ(resumed.status, 200) << resumed.body;
    EXPECT_EQ(resumed.json()["state"], "running");
}

TEST_F(SnapshotTest, SnapshotOfARestoredVmRestoresToo) {
    auto a = start_counting("a");
    ASSERT_TRUE(wait_for_counts("a", 5));
    ASSERT_EQ(api("a", "PUT", "/api/v1/vm.snapshot",
                  nlohmann::json{{"destination", dir.file("s1")}, {"resume", false}}.dump())
                  .status,
              200);
    std::string first = read_file(serial("a"));
    a.reset();

    auto b = start_vmm("b", {"--restore", dir.file("s1")});
    ASSERT_TRUE(wait_until(
        [&] { return counts_in(first + read_file(serial("b"))).size() >= counts_in(first).size() + 5; },
        std::chrono::seconds(60)));
    // Its memory is now a private mapping of s1's file plus the pages the guest wrote since.
    ASSERT_EQ(api("b", "PUT", "/api/v1/vm.snapshot",
                  nlohmann::json{{"destination", dir.file("s2")}, {"resume", false}}.dump())
                  .status,
              200);
    std::string second = read_file(serial("b"));
    b.reset();

    auto c = start_vmm("c", {"--restore", dir.file("s2")});
    ASSERT_TRUE(wait_until(
        [&] {
            return counts_in(first + second + read_file(serial("c"))).size() >=
                   counts_in(first + second).size() + 5;
        },
        std::chrono::seconds(60)));
    EXPECT_TRUE(consecutive_from_one(counts_in(first + second + read_file(serial("c")))));
    // The first snapshot was not changed by the VM restored from it.
    auto m1 = nlohmann::json::parse(read_file(dir.file("s1") + "/manifest.json"));
    EXPECT_EQ(m1["format_version"], 1);
}

TEST_F(SnapshotTest, TwoVcpus) {
    auto a = start_counting("a", "smp=2", {"--cpus", "2"});
    ASSERT_TRUE(wait_for_counts("a", 5)) << read_file(serial("a"));
    ASSERT_NE(read_file(serial("a")).find("smp: 2 cpus"), std::string::npos);
    ASSERT_EQ(api("a", "PUT", "/api/v1/vm.snapshot",
                  nlohmann::json{{"destination", dir.file("s")}, {"resume", false}}.dump())
                  .status,
              200);
    std::string before = read_file(serial("a"));
    a.reset();
    auto state = nlohmann::json::parse(read_file(dir.file("s") + "/vmstate.json"));
    EXPECT_EQ(state["vcpus"].size(), 2u);
    auto b = start_vmm("b", {"--restore", dir.file("s")});
    ASSERT_TRUE(wait_until(
        [&] { return counts_in(before + read_file(serial("b"))).size() >= counts_in(before).size() + 5; },
        std::chrono::seconds(60)));
    EXPECT_TRUE(consecutive_from_one(counts_in(before + read_file(serial("b")))));
    auto counters = api("b", "GET", "/api/v1/vm.counters").json();
    EXPECT_EQ(counters["vcpus"].size(), 2u);
}

class SnapshotRefusalTest : public VmmTest {
  protected:
    void SetUp() override {
        VmmTest::SetUp();
        if (IsSkipped()) return;
        auto a = start_counting("a");
        ASSERT_TRUE(wait_for_counts("a", 2));
        ASSERT_EQ(api("a", "PUT", "/api/v1/vm.snapshot",
                      nlohmann::json{{"destination", dir.file("s")}, {"resume", false}}.dump())
                      .status,
                  200);
    }
    // Runs `vireo-vmm --restore s` to its end.
    ProcessResult restore() {
        return run_process({vmm_binary(), "--restore", dir.file("s"), "--serial", "none"});
    }
    void edit_manifest(const std::function<void(nlohmann::json&)>& edit) {
        auto m = nlohmann::json::parse(read_file(dir.file("s") + "/manifest.json"));
        edit(m);
        std::ofstream(dir.file("s") + "/manifest.json") << m.dump(2);
    }
};

TEST_F(SnapshotRefusalTest, OtherFormatVersion) {
    edit_manifest([](auto& m) { m["format_version"] = 2; });
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("snapshot format version 2 is not supported"), std::string::npos) << p.err;
}

TEST_F(SnapshotRefusalTest, OtherCpuFeatures) {
    edit_manifest([](auto& m) { m["cpu"]["features"]["0x7.0.ebx"] = "0xffffffff"; });
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("different CPU feature set"), std::string::npos) << p.err;
    EXPECT_NE(p.err.find("missing here"), std::string::npos) << p.err;
}

TEST_F(SnapshotRefusalTest, OtherCpuVendor) {
    edit_manifest([](auto& m) { m["cpu"]["vendor"] = "SomeOtherCPU"; });
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("CPU vendor"), std::string::npos) << p.err;
}

TEST_F(SnapshotRefusalTest, IncompleteOrDamagedSnapshots) {
    std::filesystem::remove(dir.file("s") + "/manifest.json");
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("no manifest.json"), std::string::npos) << p.err;

    auto missing = run_process({vmm_binary(), "--restore", dir.file("nothing"), "--serial", "none"});
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_FALSE(missing.err.empty());

    auto both = run_process({vmm_binary(), "--restore", dir.file("s"), "--kernel", guest_path("pvh64.elf")});
    EXPECT_EQ(both.exit_code, 1);
    EXPECT_NE(both.err.find("exclude"), std::string::npos) << both.err;
}

TEST_F(SnapshotRefusalTest, DamagedStateOrMemory) {
    std::ofstream(dir.file("s") + "/vmstate.json") << "{\"vcpus\": []}";
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("vmstate.json"), std::string::npos) << p.err;
}

TEST_F(SnapshotRefusalTest, TruncatedMemoryFile) {
    std::filesystem::resize_file(dir.file("s") + "/memory.bin", 4096);
    auto p = restore();
    EXPECT_EQ(p.exit_code, 1);
    EXPECT_NE(p.err.find("memory file"), std::string::npos) << p.err;
}

}  // namespace
}  // namespace vireo::testing
