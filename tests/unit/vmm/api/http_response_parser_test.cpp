// Tests for the API client's HTTP response parser.
#include "vmm/api/http_response_parser.hpp"

#include <gtest/gtest.h>

namespace vireo::vmm::api {
namespace {

TEST(HttpResponseParser, ParsesAResponseWithContentLength) {
    std::string text =
        "HTTP/1.1 409 Conflict\r\nContent-Type: application/json\r\nContent-Length: "
        "13\r\n\r\n{\"error\":\"x\"}";
    auto r = parse_response(text, false);
    ASSERT_TRUE(r.ok()) << r.error().message();
    ASSERT_TRUE(r->complete);
    EXPECT_EQ(r->response.status, 409);
    EXPECT_EQ(r->response.body, "{\"error\":\"x\"}");
    EXPECT_EQ(r->response.content_type, "application/json");
    EXPECT_EQ(r->consumed, text.size());
}

TEST(HttpResponseParser, WaitsForTheWholeBody) {
    auto r = parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", false);
    ASSERT_TRUE(r.ok());
    EXPECT_FALSE(r->complete);
    auto head = parse_response("HTTP/1.1 200 OK\r\nContent-Len", false);
    ASSERT_TRUE(head.ok());
    EXPECT_FALSE(head->complete);
}

TEST(HttpResponseParser, SkipsInterimResponses) {
    auto r =
        parse_response("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", false);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->complete);
    EXPECT_EQ(r->response.status, 200);
    EXPECT_EQ(r->response.body, "{}");
}

TEST(HttpResponseParser, BodyWithoutLengthEndsAtEof) {
    auto partial = parse_response("HTTP/1.0 200 OK\r\n\r\nabc", false);
    ASSERT_TRUE(partial.ok());
    EXPECT_FALSE(partial->complete);
    auto r = parse_response("HTTP/1.0 200 OK\r\n\r\nabc", true);
    ASSERT_TRUE(r.ok());
    ASSERT_TRUE(r->complete);
    EXPECT_EQ(r->response.body, "abc");
}

TEST(HttpResponseParser, Errors) {
    EXPECT_FALSE(parse_response("", true).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", true).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 5", true).ok());
    EXPECT_FALSE(parse_response("SSH-2.0-OpenSSH\r\n\r\n", false).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 2x0 OK\r\n\r\n", false).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nbad header\r\n\r\n", false).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", false).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nContent-Length: 999999999\r\n\r\n", false).ok());
    EXPECT_FALSE(parse_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false).ok());
}

}  // namespace
}  // namespace vireo::vmm::api
