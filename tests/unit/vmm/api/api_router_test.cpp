// Tests for the control API routes, driven with parsed requests against a fake controller.
#include "vmm/api/api_router.hpp"

#include <gtest/gtest.h>

#include "fakes/fake_vm_controller.hpp"
#include "support/subprocess.hpp"

namespace vireo::vmm::api {
namespace {

using testing::FakeVmController;

HttpRequest request(std::string method, std::string target, std::string body = {}) {
    HttpRequest r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.body = std::move(body);
    return r;
}

nlohmann::json body_of(const HttpResponse& r) {
    return nlohmann::json::parse(r.body);
}

class ApiRouterTest : public ::testing::Test {
  protected:
    FakeVmController vm;
    ApiRouter router{vm};
};

TEST_F(ApiRouterTest, GetVmDescribesTheVm) {
    auto r = router.handle(request("GET", "/api/v1/vm"));
    ASSERT_EQ(r.status, 200);
    auto j = body_of(r);
    EXPECT_EQ(j["id"], "fake-vm");
    EXPECT_EQ(j["state"], "running");
    EXPECT_EQ(j["vcpus"], 2);
    EXPECT_EQ(j["memory_mib"], 256);
    EXPECT_EQ(j["uptime_ms"], 1234);
    EXPECT_EQ(j["config"]["kernel"], "/fake/vmlinux");
}

TEST_F(ApiRouterTest, CountersShape) {
    auto r = router.handle(request("GET", "/api/v1/vm.counters"));
    ASSERT_EQ(r.status, 200);
    auto j = body_of(r);
    EXPECT_EQ(j["vcpus"][0]["id"], 0);
    EXPECT_EQ(j["vcpus"][0]["exits"]["io"], 10);
    EXPECT_EQ(j["vcpus"][0]["total_exits"], 13);
    EXPECT_EQ(j["devices"]["virtio-blk0"]["bytes"], 4096);
    EXPECT_EQ(j["devices"]["virtio-blk0"]["requests"], 8);
    EXPECT_EQ(j["devices"]["virtio-blk0"]["errors"], 1);
    EXPECT_EQ(j["devices"]["virtio-blk0"]["write_requests"], 3);
    EXPECT_EQ(j["devices"]["serial"].size(), 3u);  // no details: bytes, requests, errors
    EXPECT_EQ(j["rss_bytes"], 5 << 20);
}

TEST_F(ApiRouterTest, StateTransitionsAndConflicts) {
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.resume")).status, 409);
    auto paused = router.handle(request("PUT", "/api/v1/vm.pause"));
    ASSERT_EQ(paused.status, 200);
    EXPECT_EQ(body_of(paused)["state"], "paused");
    auto again = router.handle(request("PUT", "/api/v1/vm.pause"));
    EXPECT_EQ(again.status, 409);
    EXPECT_NE(body_of(again)["error"].get<std::string>().find("already paused"), std::string::npos);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.shutdown")).status, 409);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.resume")).status, 200);
    auto down = router.handle(request("PUT", "/api/v1/vm.shutdown"));
    ASSERT_EQ(down.status, 200);
    EXPECT_EQ(body_of(down)["state"], "shutting-down");
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.pause")).status, 409);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.shutdown")).status, 409);
    vm.guest_powered_off();
    EXPECT_EQ(body_of(router.handle(request("GET", "/api/v1/vm")))["state"], "stopped");
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.power-off")).status, 409);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.reboot")).status, 409);
}

TEST_F(ApiRouterTest, PowerOffAndReboot) {
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.reboot")).status, 200);
    EXPECT_EQ(vm.reboots(), 1);
    auto off = router.handle(request("PUT", "/api/v1/vm.power-off"));
    ASSERT_EQ(off.status, 200);
    EXPECT_EQ(body_of(off)["state"], "stopped");
}

TEST_F(ApiRouterTest, ActionBodiesMayBeEmptyOrAnEmptyObject) {
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.pause", "{}")).status, 200);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.resume", " \n")).status, 200);
    auto bad = router.handle(request("PUT", "/api/v1/vm.pause", "{\"force\": true}"));
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(body_of(bad)["error"].get<std::string>().find("force"), std::string::npos);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.pause", "{nope")).status, 400);
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.pause", "[]")).status, 400);
    EXPECT_EQ(vm.pauses(), 1);
}

TEST_F(ApiRouterTest, UnknownPathsAre404) {
    for (const char* path :
         {"/", "/api/v1/", "/api/v1/vm/", "/api/v1/vm.explode", "/api/v2/vm", "/api/v1/VM"}) {
        auto r = router.handle(request("GET", path));
        EXPECT_EQ(r.status, 404) << path;
        EXPECT_TRUE(body_of(r)["error"].is_string());
    }
}

TEST_F(ApiRouterTest, WrongMethodsAre405WithAllow) {
    struct Case {
        const char* method;
        const char* path;
        const char* allow;
    };
    for (auto c : {Case{"PUT", "/api/v1/vm", "GET"}, Case{"POST", "/api/v1/vm.pause", "PUT"},
                   Case{"GET", "/api/v1/vm.snapshot", "PUT"}, Case{"DELETE", "/api/v1/vm.counters", "GET"},
                   Case{"get", "/api/v1/vm", "GET"}}) {
        auto r = router.handle(request(c.method, c.path));
        EXPECT_EQ(r.status, 405) << c.method << " " << c.path;
        ASSERT_EQ(r.headers.size(), 1u);
        EXPECT_EQ(r.headers[0].name, "Allow");
        EXPECT_EQ(r.headers[0].value, c.allow);
    }
    EXPECT_EQ(vm.mutations(), 0);
}

TEST_F(ApiRouterTest, QueryStringsAreIgnored) {
    EXPECT_EQ(router.handle(request("GET", "/api/v1/vm?verbose=1")).status, 200);
}

TEST_F(ApiRouterTest, SnapshotValidatesItsBody) {
    for (const char* body :
         {"", "{}", "{\"destination\": 3}", "{\"destination\": \"\"}", "{\"destination\": null}",
          "{\"destination\": \"/tmp/x\", \"resume\": \"yes\"}", "{\"destination\": \"/tmp/x\", \"extra\": 1}",
          "\"/tmp/x\"", "{\"destination\": \"/tmp/x\""}) {
        auto r = router.handle(request("PUT", "/api/v1/vm.snapshot", body));
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_TRUE(body_of(r)["error"].is_string()) << body;
    }
    EXPECT_EQ(vm.snapshots(), 0);
}

TEST_F(ApiRouterTest, SnapshotResumesOrStaysPaused) {
    testing::TempDir dir;
    auto r = router.handle(
        request("PUT", "/api/v1/vm.snapshot", nlohmann::json{{"destination", dir.file("s1")}}.dump()));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(body_of(r)["state"], "running");
    EXPECT_EQ(body_of(r)["destination"], dir.file("s1"));
    auto paused =
        router.handle(request("PUT", "/api/v1/vm.snapshot",
                              nlohmann::json{{"destination", dir.file("s2")}, {"resume", false}}.dump()));
    ASSERT_EQ(paused.status, 200);
    EXPECT_EQ(body_of(paused)["state"], "paused");
    EXPECT_EQ(vm.state(), FakeVmController::VmState::kPaused);
}

TEST_F(ApiRouterTest, SnapshotErrorsKeepTheirStatus) {
    auto r = router.handle(request("PUT", "/api/v1/vm.snapshot", "{\"destination\": \"/proc/no/such/dir\"}"));
    EXPECT_EQ(r.status, 400);
    vm.guest_powered_off();
    EXPECT_EQ(router.handle(request("PUT", "/api/v1/vm.snapshot", "{\"destination\": \"/tmp/x\"}")).status,
              409);
}

}  // namespace
}  // namespace vireo::vmm::api
