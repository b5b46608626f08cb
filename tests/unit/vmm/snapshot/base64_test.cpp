// Tests for base64 encoding and strict decoding.
#include "vmm/snapshot/base64.hpp"

#include <gtest/gtest.h>

namespace vireo::vmm::snapshot {
namespace {

std::vector<uint8_t> bytes(std::string_view s) {
    return {s.begin(), s.end()};
}

TEST(Base64, Rfc4648Vectors) {
    // RFC 4648 §10
    EXPECT_EQ(base64_encode(bytes("")), "");
    EXPECT_EQ(base64_encode(bytes("f")), "Zg==");
    EXPECT_EQ(base64_encode(bytes("fo")), "Zm8=");
    EXPECT_EQ(base64_encode(bytes("foo")), "Zm9v");
    EXPECT_EQ(base64_encode(bytes("foob")), "Zm9vYg==");
    EXPECT_EQ(base64_encode(bytes("fooba")), "Zm9vYmE=");
    EXPECT_EQ(base64_encode(bytes("foobar")), "Zm9vYmFy");
    for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
        auto d = base64_decode(base64_encode(bytes(s)));
        ASSERT_TRUE(d.ok());
        EXPECT_EQ(*d, bytes(s));
    }
}

TEST(Base64, AllByteValuesRoundTrip) {
    std::vector<uint8_t> all(256);
    for (int i = 0; i < 256; ++i)
        all[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
    auto d = base64_decode(base64_encode(all));
    ASSERT_TRUE(d.ok());
    EXPECT_EQ(*d, all);
}

TEST(Base64, RefusesMalformedInput) {
    EXPECT_FALSE(base64_decode("Zm9").ok());
    EXPECT_FALSE(base64_decode("Zm9v!A==").ok());
    EXPECT_FALSE(base64_decode("Zm=v").ok());
    EXPECT_FALSE(base64_decode("Z===").ok());
    EXPECT_FALSE(base64_decode("Zg==Zm9v").ok());
    // Bits the padding leaves over must be zero, so every value has one encoding.
    EXPECT_FALSE(base64_decode("5vm=").ok());
    EXPECT_FALSE(base64_decode("Zh==").ok());
    EXPECT_TRUE(base64_decode("5vk=").ok());
}

}  // namespace
}  // namespace vireo::vmm::snapshot
