// Tests for the raw image backend, synchronous and asynchronous.
#include "disk/raw_backend.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "disk/io_context.hpp"

namespace vireo::disk {
namespace {

class RawBackendTest : public ::testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/vireo-raw-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        m_path = tmpl;
        ASSERT_TRUE(RawBackend::create(m_path, 1 << 20).ok());
    }
    void TearDown() override { ::unlink(m_path.c_str()); }
    std::string m_path;
};

TEST_F(RawBackendTest, CreateIsSparseAndSized) {
    auto disk = RawBackend::open(m_path);
    ASSERT_TRUE(disk.ok()) << disk.error().message();
    EXPECT_EQ((*disk)->size(), 1u << 20);
    struct stat st {};
    ASSERT_EQ(::stat(m_path.c_str(), &st), 0);
    EXPECT_EQ(st.st_blocks, 0);
    EXPECT_EQ((*disk)->describe(), "raw " + m_path);
}

TEST_F(RawBackendTest, SyncReadWriteZeroesDiscard) {
    auto disk = std::move(*RawBackend::open(m_path));
    std::vector<uint8_t> data(8192, 0x5A);
    iovec w{data.data(), data.size()};
    ASSERT_TRUE(disk->write(4096, {&w, 1}).ok());
    std::vector<uint8_t> back(8192);
    iovec r{back.data(), back.size()};
    ASSERT_TRUE(disk->read(4096, {&r, 1}).ok());
    EXPECT_EQ(back, data);
    ASSERT_TRUE(disk->write_zeroes(4096, 4096).ok());
    ASSERT_TRUE(disk->discard(8192, 4096).ok());
    ASSERT_TRUE(disk->read(4096, {&r, 1}).ok());
    EXPECT_EQ(back, std::vector<uint8_t>(8192, 0));
    EXPECT_TRUE(disk->flush().ok());
}

TEST_F(RawBackendTest, RangesPastEndAreErrors) {
    auto disk = std::move(*RawBackend::open(m_path));
    std::vector<uint8_t> buf(1024);
    iovec v{buf.data(), buf.size()};
    auto s = disk->read((1 << 20) - 512, {&v, 1});
    ASSERT_FALSE(s.ok());
    EXPECT_NE(s.error().message().find("past the end"), std::string::npos);
    EXPECT_FALSE(disk->write(~uint64_t{0} - 10, {&v, 1}).ok());
    EXPECT_FALSE(disk->discard(1 << 20, 1).ok());
}

TEST_F(RawBackendTest, ReadOnlyRefusesWrites) {
    OpenOptions opts;
    opts.read_only = true;
    auto disk = std::move(*RawBackend::open(m_path, opts));
    EXPECT_TRUE(disk->read_only());
    std::vector<uint8_t> buf(512);
    iovec v{buf.data(), buf.size()};
    auto s = disk->write(0, {&v, 1});
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().os_error(), EROFS);
    EXPECT_TRUE(disk->read(0, {&v, 1}).ok());
}

TEST_F(RawBackendTest, MissingFileIsAnError) {
    auto disk = RawBackend::open("/nonexistent/disk.img");
    ASSERT_FALSE(disk.ok());
    EXPECT_NE(disk.error().message().find("/nonexistent/disk.img"), std::string::npos);
}

TEST_F(RawBackendTest, AsyncRequests) {
    auto disk = std::move(*RawBackend::open(m_path));
    auto ctx = std::move(*IoContext::create(32));
    std::vector<uint8_t> data(4096, 0xC3), back(4096);
    iovec w{data.data(), data.size()}, r{back.data(), back.size()};
    std::vector<std::string> order;
    IoRequest write_req{IoOp::kWrite, 0, 4096, {&w, 1}, [&](IoRequest&, Status s) {
                            EXPECT_TRUE(s.ok());
                            order.push_back("write");
                        }};
    disk->submit(*ctx, write_req);
    ASSERT_TRUE(ctx->drain().ok());
    IoRequest flush_req{IoOp::kFlush, 0, 0, {}, [&](IoRequest&, Status s) {
                            EXPECT_TRUE(s.ok());
                            order.push_back("flush");
                        }};
    IoRequest read_req{IoOp::kRead, 0, 4096, {&r, 1}, [&](IoRequest&, Status s) {
                           EXPECT_TRUE(s.ok());
                           order.push_back("read");
                       }};
    IoRequest bad_req{IoOp::kRead, 1 << 20, 4096, {&r, 1}, [&](IoRequest&, Status s) {
                          EXPECT_FALSE(s.ok());
                          order.push_back("bad");
                      }};
    IoRequest zero_req{IoOp::kWriteZeroes, 8192, 4096, {}, [&](IoRequest&, Status s) {
                           EXPECT_TRUE(s.ok());
                           order.push_back("zero");
                       }};
    disk->submit(*ctx, flush_req);
    disk->submit(*ctx, read_req);
    disk->submit(*ctx, bad_req);
    disk->submit(*ctx, zero_req);
    EXPECT_TRUE(order.size() == 1);  // nothing completes inside submit()
    ASSERT_TRUE(ctx->drain().ok());
    EXPECT_EQ(order.size(), 5u);
    EXPECT_EQ(back, data);
}

}  // namespace
}  // namespace vireo::disk
