// Tests for the retrying file I/O helpers.
#include "base/io.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace vireo {
namespace {

class IoTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vireo-io-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        m_path = tmpl;
        m_fd.reset(fd);
    }
    void TearDown() override { ::unlink(m_path.c_str()); }
    std::string m_path;
    UniqueFd m_fd;
};

TEST_F(IoTest, WriteThenRead) {
    std::vector<uint8_t> data(10000);
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = static_cast<uint8_t>(i * 7);
    ASSERT_TRUE(pwrite_exact(m_fd.get(), data, 100).ok());
    std::vector<uint8_t> back(data.size());
    ASSERT_TRUE(pread_exact(m_fd.get(), back, 100).ok());
    EXPECT_EQ(back, data);
    EXPECT_EQ(*file_size(m_fd.get()), 10100u);
}

TEST_F(IoTest, ShortReadIsAnError) {
    std::vector<uint8_t> data(10, 1);
    ASSERT_TRUE(pwrite_exact(m_fd.get(), data, 0).ok());
    std::vector<uint8_t> back(20);
    auto s = pread_exact(m_fd.get(), back, 0);
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("short read"), std::string::npos);
    EXPECT_EQ(*pread_some(m_fd.get(), back, 0), 10u);
}

TEST_F(IoTest, Vectored) {
    uint8_t a[3] = {1, 2, 3}, b[0] = {}, c[5] = {4, 5, 6, 7, 8};
    iovec out[] = {{a, 3}, {b, 0}, {c, 5}};
    ASSERT_TRUE(pwritev_exact(m_fd.get(), out, 4).ok());
    uint8_t x[4] = {}, y[4] = {};
    iovec in[] = {{x, 4}, {y, 4}};
    ASSERT_TRUE(preadv_exact(m_fd.get(), in, 4).ok());
    EXPECT_EQ(x[3], 4);
    EXPECT_EQ(y[3], 8);
}

TEST(Io, OpenMissingFileNamesPath) {
    auto r = open_file("/nonexistent/dir/file", O_RDONLY);
    ASSERT_FALSE(r.ok());
    EXPECT_NE(r.error().message().find("/nonexistent/dir/file"), std::string::npos);
}

}  // namespace
}  // namespace vireo
