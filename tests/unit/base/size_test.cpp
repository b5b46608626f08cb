// Tests for size parsing and formatting.
#include "base/size.hpp"

#include <gtest/gtest.h>

namespace vireo {
namespace {

TEST(ParseSize, PlainBytes) {
    EXPECT_EQ(*parse_size("0"), 0u);
    EXPECT_EQ(*parse_size("4096"), 4096u);
    EXPECT_EQ(*parse_size(" 512 "), 512u);
    EXPECT_EQ(*parse_size("512b"), 512u);
}

TEST(ParseSize, BinarySuffixes) {
    EXPECT_EQ(*parse_size("1K"), 1024u);
    EXPECT_EQ(*parse_size("512M"), 512ull << 20);
    EXPECT_EQ(*parse_size("10G"), 10ull << 30);
    EXPECT_EQ(*parse_size("10g"), 10ull << 30);
    EXPECT_EQ(*parse_size("2T"), 2ull << 40);
    EXPECT_EQ(*parse_size("1GiB"), 1ull << 30);
    EXPECT_EQ(*parse_size("1MB"), 1ull << 20);
    EXPECT_EQ(*parse_size("1.5G"), 3ull << 29);
}

TEST(ParseSize, Rejects) {
    for (const char* bad :
         {"", "G", "abc", "10X", "10GX", "1.", "-1", "1.3b", "99999999999999999999", "20000000000E"}) {
        EXPECT_FALSE(parse_size(bad).ok()) << bad;
    }
    EXPECT_FALSE(parse_size(".").ok());
}

TEST(ParseSize, ErrorNamesInput) {
    auto r = parse_size("10X");
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("10X"), std::string::npos);
}

TEST(FormatSize, Units) {
    EXPECT_EQ(format_size(100), "100 B");
    EXPECT_EQ(format_size(1ull << 30), "1 GiB");
    EXPECT_EQ(format_size(512ull << 20), "512 MiB");
    EXPECT_EQ(format_size(1536), "1.5 KiB");
}

}  // namespace
}  // namespace vireo
