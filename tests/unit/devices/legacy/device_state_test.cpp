// Tests for the snapshot helpers shared by the legacy devices.
#include "devices/legacy/device_state.hpp"

#include <gtest/gtest.h>

namespace vireo::devices {
namespace {

TEST(DeviceState, HexRoundTrip) {
    std::vector<uint8_t> bytes = {0x00, 0x7f, 0x80, 0xff, 0x1a};
    nlohmann::json j = {{"version", 3}, {"b", bytes_to_hex(bytes)}};
    EXPECT_EQ(j["b"], "007f80ff1a");
    StateReader r(j, "dev", 3);
    EXPECT_EQ(r.bytes("b", 5, 5), bytes);
    EXPECT_TRUE(r.status().ok());
}

TEST(DeviceState, FirstErrorWinsAndNamesDeviceAndField) {
    nlohmann::json j = {{"version", 1}, {"a", 300}, {"s", true}};
    StateReader r(j, "rtc", 1);
    EXPECT_EQ(r.number("a", 255), 0u);
    r.boolean("missing");
    ASSERT_FALSE(r.ok());
    std::string msg = r.status().error().message();
    EXPECT_NE(msg.find("rtc"), std::string::npos);
    EXPECT_NE(msg.find("\"a\""), std::string::npos);
    EXPECT_EQ(msg.find("missing"), std::string::npos);
}

TEST(DeviceState, TypeChecks) {
    nlohmann::json j = {{"version", 1}, {"neg", -1}, {"str", "x"}, {"odd", "abc"},
                        {"big", 5},     {"i", -5},   {"hex", "0G"}};
    auto failing = [&](auto fn) {
        StateReader r(j, "d", 1);
        fn(r);
        return !r.ok();
    };
    EXPECT_TRUE(failing([](StateReader& r) { r.number("neg", 10); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.number("str", 10); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.boolean("big"); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.bytes("odd", 10); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.bytes("hex", 10); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.bytes("str", 10); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.bytes("odd", 0); }));
    EXPECT_TRUE(failing([](StateReader& r) { r.signed_number("str"); }));
    EXPECT_FALSE(failing([](StateReader& r) { EXPECT_EQ(r.signed_number("i"), -5); }));
    EXPECT_FALSE(failing([](StateReader& r) { EXPECT_EQ(r.number("big", 5), 5u); }));
}

TEST(DeviceState, VersionMustMatch) {
    EXPECT_FALSE(StateReader(nlohmann::json{{"version", 2}}, "d", 1).ok());
    EXPECT_FALSE(StateReader(nlohmann::json{{"x", 1}}, "d", 1).ok());
    EXPECT_FALSE(StateReader(nlohmann::json(5), "d", 1).ok());
    EXPECT_TRUE(StateReader(nlohmann::json{{"version", 1}}, "d", 1).ok());
}

}  // namespace
}  // namespace vireo::devices
