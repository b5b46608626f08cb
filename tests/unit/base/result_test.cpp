// Tests for Result<T>, Error and the TRY macros.
#include "base/result.hpp"

#include <gtest/gtest.h>

#include <memory>

namespace vireo {
namespace {

Result<int> parse_positive(int v) {
    if (v <= 0) return make_error("value {} is not positive", v);
    return v;
}

Result<int> doubled(int v) {
    VIREO_ASSIGN_OR_RETURN(int x, parse_positive(v));
    return 2 * x;
}

Status check_both(int a, int b) {
    VIREO_TRY(parse_positive(a));
    VIREO_TRY_CTX(parse_positive(b), "second");
    return {};
}

TEST(Result, HoldsValue) {
    Result<int> r = 5;
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, 5);
    EXPECT_EQ(r.value_or(1), 5);
}

TEST(Result, HoldsError) {
    Result<int> r = parse_positive(-1);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().message(), "value -1 is not positive");
    EXPECT_EQ(r.value_or(7), 7);
}

TEST(Result, AssignOrReturnPropagates) {
    EXPECT_EQ(*doubled(4), 8);
    EXPECT_EQ(doubled(0).error().message(), "value 0 is not positive");
}

TEST(Result, TryAddsContext) {
    EXPECT_TRUE(check_both(1, 2).ok());
    EXPECT_EQ(check_both(-1, 2).error().message(), "value -1 is not positive");
    EXPECT_EQ(check_both(1, -2).error().message(), "second: value -2 is not positive");
}

TEST(Result, MoveOnlyValue) {
    Result<std::unique_ptr<int>> r = std::make_unique<int>(3);
    ASSERT_TRUE(r.ok());
    std::unique_ptr<int> p = std::move(r).value();
    EXPECT_EQ(*p, 3);
}

TEST(Result, OsErrorKeepsErrno) {
    Error e = os_error("open /nonexistent", ENOENT);
    EXPECT_EQ(e.os_error(), ENOENT);
    EXPECT_NE(e.message().find("No such file"), std::string::npos);
    EXPECT_EQ(e.context("disk").message().rfind("disk: open /nonexistent", 0), 0u);
}

}  // namespace
}  // namespace vireo
