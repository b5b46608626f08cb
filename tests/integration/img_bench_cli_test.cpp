// `vireo img bench` against `qemu-img bench`: same options accepted, same header line, the same
// "Run completed in N seconds." line, same refusals; and the workload writes what it should.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support/process.hpp"

namespace vireo::test {
namespace {

class ImgBenchCliTest : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!have_program("qemu-img"))
            GTEST_SKIP() << "qemu-img not installed (scripts/setup installs qemu-utils)";
        char dir[] = "/tmp/vireo-bench-cli-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_image = m_dir + "/disk.raw";
        ASSERT_EQ(run_process({"qemu-img", "create", "-f", "raw", m_image, "16M"}).exit_code, 0);
    }
    void TearDown() override {
        if (!m_dir.empty()) std::filesystem::remove_all(m_dir);
    }
    ProcessResult vireo(std::vector<std::string> args) {
        args.insert(args.begin(), {vireo_binary(), "img", "bench"});
        args.push_back(m_image);
        return run_process(args);
    }
    ProcessResult qemu(std::vector<std::string> args) {
        args.insert(args.begin(), {"qemu-img", "bench", "-f", "raw"});
        args.push_back(m_image);
        return run_process(args);
    }
    std::string m_dir, m_image;
};

TEST_F(ImgBenchCliTest, SameOutputAsQemuImg) {
    const std::vector<std::vector<std::string>> cases = {
        {"-c", "200"},
        {"-c", "300", "-d", "8", "-s", "64k"},
        {"-w", "-c", "128", "-d", "4", "-o", "1M", "-S", "8192", "--pattern", "0x41"},
        {"-w", "-c", "256", "-d", "16", "--flush-interval", "64", "--no-drain", "-t", "none", "-n"},
        {"-c", "100", "-q", "-i", "io_uring", "-t", "writeback", "-U"},
    };
    const std::regex completed(R"(Run completed in \d+\.\d{3} seconds\.)");
    for (const auto& args : cases) {
        std::string joined;
        for (const auto& a : args)
            joined += a + " ";
        SCOPED_TRACE(joined);
        ProcessResult v = vireo(args);
        ProcessResult q = qemu(args);
        ASSERT_EQ(v.exit_code, 0) << v.output;
        ASSERT_EQ(q.exit_code, 0) << q.output;
        auto lines = [](const std::string& out) {
            std::vector<std::string> l;
            std::istringstream in(out);
            for (std::string line; std::getline(in, line);) {
                if (line.rfind("Sending", 0) == 0 || line.rfind("Run completed", 0) == 0) l.push_back(line);
            }
            return l;
        };
        auto vl = lines(v.output);
        auto ql = lines(q.output);
        ASSERT_EQ(vl.size(), ql.size()) << v.output << "\n---\n" << q.output;
        for (size_t i = 0; i + 1 < vl.size(); ++i)
            EXPECT_EQ(vl[i], ql[i]);
        EXPECT_TRUE(std::regex_match(vl.back(), completed)) << vl.back();
    }
}

TEST_F(ImgBenchCliTest, WritesThePatternWhereQemuWould) {
    // Same write workload through both tools on two copies: the images end up identical.
    std::string copy = m_dir + "/copy.raw";
    std::filesystem::copy_file(m_image, copy);
    ASSERT_EQ(
        vireo({"-w", "-c", "77", "-d", "5", "-o", "4096", "-S", "12288", "-s", "8k", "--pattern", "171"})
            .exit_code,
        0);
    ASSERT_EQ(run_process({"qemu-img", "bench", "-f", "raw", "-w", "-c", "77", "-d", "5", "-o", "4096", "-S",
                           "12288", "-s", "8k", "--pattern", "171", copy})
                  .exit_code,
              0);
    auto cmp = run_process({"qemu-img", "compare", "-f", "raw", "-F", "raw", m_image, copy});
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
    auto nonzero = run_process({"qemu-io", "-f", "raw", "-c", "read -P 171 4096 8192", m_image});
    EXPECT_EQ(nonzero.exit_code, 0);
    EXPECT_EQ(nonzero.output.find("Pattern verification failed"), std::string::npos) << nonzero.output;
}

TEST_F(ImgBenchCliTest, RefusesWhatQemuImgRefuses) {
    const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
        {{"--flush-interval", "64"}, "--flush-interval is only available in write tests"},
        {{"-w", "--flush-interval", "2", "-d", "4"}, "Flush interval can't be smaller than depth"},
        {{"-t", "bogus"}, "Invalid cache mode"},
        {{"--pattern", "256"}, "Invalid pattern byte specified"},
        {{"-c", "many"}, "Invalid request count specified"},
        {{"-c", "10", "-o", "16M"}, "Failed request"},
    };
    for (const auto& [args, message] : cases) {
        ProcessResult v = vireo(args);
        ProcessResult q = qemu(args);
        EXPECT_EQ(v.exit_code, 1) << message << ": " << v.output;
        EXPECT_NE(q.exit_code, 0) << message << ": qemu-img accepted it";
        EXPECT_NE(v.output.find(message), std::string::npos) << v.output;
    }
    // qemu-img 7.2 takes -d 0 and never finishes; newer releases refuse it, as Vireo does.
    ProcessResult v = vireo({"-d", "0"});
    EXPECT_EQ(v.exit_code, 1);
    EXPECT_NE(v.output.find("Invalid queue depth specified"), std::string::npos) << v.output;
}

}  // namespace
}  // namespace vireo::test
