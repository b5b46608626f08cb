// Tests for the control API's HTTP request parser: valid requests and every refusal.
#include "vmm/api/http_request_parser.hpp"

#include <gtest/gtest.h>

#include <string>

namespace vireo::vmm::api {
namespace {

using State = HttpRequestParser::State;

struct Outcome {
    State state;
    HttpRequestParser parser;
};

// Feeds `text` in one piece.
Outcome parse(const std::string& text) {
    Outcome o{State::kIncomplete, HttpRequestParser()};
    o.state = o.parser.parse(text);
    return o;
}

int error_status(const std::string& text) {
    auto o = parse(text);
    EXPECT_EQ(o.state, State::kError) << text;
    return o.parser.error_status();
}

TEST(HttpRequestParser, ParsesGetWithoutBody) {
    auto o = parse("GET /api/v1/vm HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n");
    ASSERT_EQ(o.state, State::kComplete);
    const auto& r = o.parser.request();
    EXPECT_EQ(r.method, "GET");
    EXPECT_EQ(r.target, "/api/v1/vm");
    EXPECT_EQ(r.minor_version, 1);
    EXPECT_FALSE(r.close);
    ASSERT_NE(r.header("host"), nullptr);
    EXPECT_EQ(*r.header("host"), "localhost");
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(o.parser.consumed(),
              std::string("GET /api/v1/vm HTTP/1.1\r\nHost: localhost\r\nAccept: */*\r\n\r\n").size());
}

TEST(HttpRequestParser, ParsesPutWithBodyAndLeavesTheNextRequest) {
    std::string first = "PUT /api/v1/vm.snapshot HTTP/1.1\r\nContent-Length: 9\r\n\r\n{\"a\": 1}\n";
    auto o = parse(first + "GET /x HTTP/1.1\r\n");
    ASSERT_EQ(o.state, State::kComplete);
    EXPECT_EQ(o.parser.request().body, "{\"a\": 1}\n");
    EXPECT_EQ(o.parser.consumed(), first.size());
}

TEST(HttpRequestParser, HeaderNamesAreCaseInsensitiveAndValuesTrimmed) {
    auto o = parse("GET / HTTP/1.1\r\nX-Thing:   value with spaces \t\r\nCONTENT-length: 0\r\n\r\n");
    ASSERT_EQ(o.state, State::kComplete);
    ASSERT_NE(o.parser.request().header("x-thing"), nullptr);
    EXPECT_EQ(*o.parser.request().header("x-thing"), "value with spaces");
}

TEST(HttpRequestParser, ByteAtATimeGivesTheSameRequest) {
    std::string text = "PUT /api/v1/vm.pause?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}";
    HttpRequestParser parser;
    for (size_t i = 1; i < text.size(); ++i)
        ASSERT_EQ(parser.parse(text.substr(0, i)), State::kIncomplete) << i;
    ASSERT_EQ(parser.parse(text), State::kComplete);
    EXPECT_EQ(parser.request().body, "{}");
    EXPECT_EQ(parser.request().path(), "/api/v1/vm.pause");
}

TEST(HttpRequestParser, LeadingEmptyLinesAreIgnored) {
    auto o = parse("\r\n\r\nGET / HTTP/1.1\r\n\r\n");
    ASSERT_EQ(o.state, State::kComplete);
    EXPECT_EQ(o.parser.consumed(), std::string("\r\n\r\nGET / HTTP/1.1\r\n\r\n").size());
}

TEST(HttpRequestParser, ConnectionSemantics) {
    EXPECT_TRUE(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").parser.request().close);
    EXPECT_TRUE(parse("GET / HTTP/1.1\r\nConnection: Upgrade, CLOSE\r\n\r\n").parser.request().close);
    EXPECT_TRUE(parse("GET / HTTP/1.0\r\n\r\n").parser.request().close);
    EXPECT_FALSE(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").parser.request().close);
    EXPECT_FALSE(parse("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n").parser.request().close);
}

TEST(HttpRequestParser, ExpectContinueIsReportedOnlyWhileTheBodyIsMissing) {
    HttpRequestParser parser;
    std::string head = "PUT /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
    ASSERT_EQ(parser.parse(head), State::kIncomplete);
    EXPECT_TRUE(parser.wants_continue());
    ASSERT_EQ(parser.parse(head + "abc"), State::kComplete);
    EXPECT_FALSE(parser.wants_continue());
    HttpRequestParser no_body;
    ASSERT_EQ(no_body.parse("PUT /a HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"), State::kComplete);
}

TEST(HttpRequestParser, ResetAllowsTheNextRequest) {
    HttpRequestParser parser;
    ASSERT_EQ(parser.parse("GET /a HTTP/1.1\r\n\r\n"), State::kComplete);
    parser.reset();
    ASSERT_EQ(parser.parse("GET /b HTTP/1.1\r\n\r\n"), State::kComplete);
    EXPECT_EQ(parser.request().target, "/b");
}

TEST(HttpRequestParser, InProgressOnlyOnceBytesArrive) {
    HttpRequestParser parser;
    EXPECT_EQ(parser.parse(""), State::kIncomplete);
    EXPECT_FALSE(parser.in_progress());
    EXPECT_EQ(parser.parse("G"), State::kIncomplete);
    EXPECT_TRUE(parser.in_progress());
}

TEST(HttpRequestParser, MalformedRequestLines) {
    EXPECT_EQ(error_status("garbage\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET /\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET  / HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1 \r\n\r\n"), 400);
    EXPECT_EQ(error_status("G(T / HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTX/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.10\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET api HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET http://h/api HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET /a\x7f HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET /\xc3\xa9 HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("VERYLONGMETHODNAMEXX / HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET /" + std::string(5000, 'a') + " HTTP/1.1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/2.0\r\n\r\n"), 505);
}

TEST(HttpRequestParser, GarbageIsRefusedBeforeTheHeadEnds) {
    // A bad request line is answered at once, without waiting for an empty line that may
    // never come.
    HttpRequestParser parser;
    EXPECT_EQ(parser.parse("\x16\x03\x01 hello\r\n"), State::kError);
    EXPECT_EQ(parser.error_status(), 400);
    HttpRequestParser binary;
    EXPECT_EQ(binary.parse(std::string("\0\1\2", 3)), State::kError);
}

TEST(HttpRequestParser, LineEndsMustBeCrlf) {
    EXPECT_EQ(error_status("GET / HTTP/1.1\n\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: a\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"), 400);
}

TEST(HttpRequestParser, MalformedHeaders) {
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\nNoColon\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\n: a\r\n\r\n"), 400);
    EXPECT_EQ(error_status("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n"), 400);
    EXPECT_EQ(error_status(std::string("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n", 27)), 400);
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 65; ++i)
        many += "X" + std::to_string(i) + ": y\r\n";
    EXPECT_EQ(error_status(many + "\r\n"), 400);
}

TEST(HttpRequestParser, ContentLengthRules) {
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n"), 400);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 1, 1\r\n\r\n"), 400);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length:\r\n\r\n"), 400);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n"), 400);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), 400);
    // Equal repeats are one length.
    auto o = parse("PUT / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab");
    EXPECT_EQ(o.state, State::kComplete);
}

TEST(HttpRequestParser, OversizedRequestsGet413) {
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 65537\r\n\r\n"), 413);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n"), 413);
    // A head that never ends is refused at the limit instead of growing without bound.
    std::string head = "GET / HTTP/1.1\r\n";
    while (head.size() < kMaxRequestSize + 10)
        head += "X-Filler: " + std::string(100, 'a') + "\r\n";
    EXPECT_EQ(error_status(head), 413);
    // Exactly at the limit is fine.
    std::string prefix = "PUT / HTTP/1.1\r\nContent-Length: ";
    size_t body = kMaxRequestSize - prefix.size() - 5 - 4;
    std::string exact = prefix + std::to_string(body) + "\r\n\r\n" + std::string(body, 'x');
    ASSERT_EQ(exact.size(), kMaxRequestSize);
    EXPECT_EQ(parse(exact).state, State::kComplete);
    std::string over = prefix + std::to_string(body + 1) + "\r\n\r\n";
    EXPECT_EQ(error_status(over), 413);
}

TEST(HttpRequestParser, TransferCodingsAreRefused) {
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
}

TEST(HttpRequestParser, UnknownExpectationGets417) {
    EXPECT_EQ(error_status("PUT / HTTP/1.1\r\nExpect: teapot\r\n\r\n"), 417);
}

TEST(HttpRequestParser, ErrorsAreSticky) {
    HttpRequestParser parser;
    ASSERT_EQ(parser.parse("bad\r\n"), State::kError);
    EXPECT_EQ(parser.parse("bad\r\nGET / HTTP/1.1\r\n\r\n"), State::kError);
    EXPECT_FALSE(parser.error_message().empty());
}

}  // namespace
}  // namespace vireo::vmm::api
