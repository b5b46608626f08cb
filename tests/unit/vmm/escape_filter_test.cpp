// Console escapes: Ctrl-A x, Ctrl-A h, Ctrl-A Ctrl-A, and plain input.
#include "vmm/escape_filter.hpp"

#include <gtest/gtest.h>

#include <string>

namespace vireo::vmm {
namespace {

EscapeFilter::Output feed(EscapeFilter& f, const std::string& s) {
    return f.feed({reinterpret_cast<const uint8_t*>(s.data()), s.size()});
}
std::string text(const EscapeFilter::Output& o) {
    return {o.to_guest.begin(), o.to_guest.end()};
}

TEST(EscapeFilter, PlainInputPassesThrough) {
    EscapeFilter f;
    auto o = feed(f, "ls -l\r\x03");
    EXPECT_EQ(text(o), "ls -l\r\x03");
    EXPECT_EQ(o.command, EscapeFilter::Command::kNone);
}

TEST(EscapeFilter, CtrlAXQuitsAndDropsTheRest) {
    EscapeFilter f;
    auto o = feed(f, "ab\x01xcd");
    EXPECT_EQ(text(o), "ab");
    EXPECT_EQ(o.command, EscapeFilter::Command::kQuit);
}

TEST(EscapeFilter, EscapeSplitAcrossReads) {
    EscapeFilter f;
    auto o1 = feed(f, "a\x01");
    EXPECT_EQ(text(o1), "a");
    EXPECT_EQ(o1.command, EscapeFilter::Command::kNone);
    auto o2 = feed(f, "x");
    EXPECT_EQ(o2.command, EscapeFilter::Command::kQuit);
}

TEST(EscapeFilter, DoubleCtrlASendsOne) {
    EscapeFilter f;
    EXPECT_EQ(text(feed(f, "\x01\x01z")), "\x01z");
}

TEST(EscapeFilter, HelpAndUnknownEscapes) {
    EscapeFilter f;
    auto o = feed(f, "\x01hq\x01qr");
    EXPECT_TRUE(o.help);
    EXPECT_EQ(text(o), "qr");  // Ctrl-A q is not an escape: both dropped
    EXPECT_NE(std::string(EscapeFilter::help_text()).find("C-a x"), std::string::npos);
}

}  // namespace
}  // namespace vireo::vmm
