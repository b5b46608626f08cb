// `vireo img` end to end: every subcommand with its output and exit status.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "base/endian.hpp"
#include "integration/run_command.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo {
namespace {

using testing::CommandResult;
using testing::run_command;
using testing::sh;
using namespace vireo::disk::testing;

const std::string kVireo = std::string(VIREO_BINARY_DIR) + "/bin/vireo";

CommandResult img(const std::string& args) {
    return run_command(kVireo + " img " + args);
}

class ImgCliTest : public ::testing::Test {
  protected:
    std::string p(const std::string& name) const { return sh(m_dir.path(name)); }
    nlohmann::json json_of(const std::string& args) {
        auto r = run_command(kVireo + " img " + args, false);
        EXPECT_EQ(r.status, 0) << r.output;
        return r.status == 0 ? nlohmann::json::parse(r.output) : nlohmann::json();
    }
    TempDir m_dir;
};

TEST_F(ImgCliTest, CreateAndInfo) {
    auto r = img("create -f vhd " + p("d.vhd") + " 512M");
    ASSERT_EQ(r.status, 0) << r.output;
    auto j = json_of("info --json " + p("d.vhd"));
    EXPECT_EQ(j["format"], "vhd");
    EXPECT_EQ(j["subformat"], "dynamic");
    EXPECT_EQ(j["virtual_size"], 512ULL << 20);
    EXPECT_TRUE(j["actual_size"].is_number());
    EXPECT_EQ(j["block_size"], 2 << 20);
    EXPECT_TRUE(j["backing_chain"].is_array());
    EXPECT_TRUE(j["backing_chain"].empty());
    EXPECT_TRUE(j["creator_app"].is_string());

    ASSERT_EQ(img("create -f vhd --subformat fixed --align-1m " + p("f.vhd") + " 10000000").status, 0);
    j = json_of("info --json " + p("f.vhd"));
    EXPECT_EQ(j["subformat"], "fixed");
    EXPECT_EQ(j["virtual_size"], 10ULL << 20);
    EXPECT_TRUE(j["block_size"].is_null());
    EXPECT_EQ(std::filesystem::file_size(m_dir.path("f.vhd")), (10u << 20) + 512);

    ASSERT_EQ(img("create -f raw " + p("r.img") + " 10G").status, 0);
    j = json_of("info --json " + p("r.img"));
    EXPECT_EQ(j["format"], "raw");
    EXPECT_EQ(j["virtual_size"], 10ULL << 30);

    ASSERT_EQ(img("create -f vhd --block-size 512K " + p("b.vhd") + " 1G").status, 0);
    EXPECT_EQ(json_of("info --json " + p("b.vhd"))["block_size"], 512 << 10);

    // Differencing: takes the parent's size; -f defaults to vhd with -b.
    r = img("create -b " + p("d.vhd") + " " + p("c.vhd"));
    ASSERT_EQ(r.status, 0) << r.output;
    j = json_of("info --json " + p("c.vhd"));
    EXPECT_EQ(j["subformat"], "differencing");
    EXPECT_EQ(j["virtual_size"], 512ULL << 20);
    ASSERT_EQ(j["backing_chain"].size(), 1u);
    EXPECT_EQ(j["backing_chain"][0], m_dir.path("d.vhd"));

    r = img("info " + p("c.vhd"));
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("differencing"), std::string::npos);
    EXPECT_NE(r.output.find("backing file"), std::string::npos);
}

TEST_F(ImgCliTest, CreateErrorsNameTheProblem) {
    auto r = img("create -f vhd " + p("x.vhd") + " 1000");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("multiple of 512"), std::string::npos) << r.output;
    r = img("create -f vhd --block-size 3M " + p("x.vhd") + " 1G");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("power of two"), std::string::npos) << r.output;
    r = img("create -f vhd " + p("x.vhd") + " 3T");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("2040 GiB"), std::string::npos) << r.output;
    r = img("create -f qcow2 " + p("x.vhd") + " 1G");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("qcow2"), std::string::npos) << r.output;
    r = img("create -b " + p("missing.vhd") + " " + p("x.vhd"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("missing.vhd"), std::string::npos) << r.output;
    r = img("create -f vhd " + p("x.vhd"));
    EXPECT_NE(r.status, 0);
    EXPECT_FALSE(std::filesystem::exists(m_dir.path("x.vhd")));
    r = img("info " + p("nothing.vhd"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("nothing.vhd"), std::string::npos) << r.output;

    // Directories are neither images nor places to write one to.
    std::filesystem::create_directory(m_dir.path("dir"));
    r = img("info " + p("dir"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
    r = img("create -f vhd " + p("dir") + " 1M");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
    ASSERT_EQ(img("create -f raw " + p("r.img") + " 1M").status, 0);
    r = img("convert -O vhd " + p("r.img") + " " + p("dir"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("is a directory"), std::string::npos) << r.output;
    EXPECT_TRUE(std::filesystem::is_empty(m_dir.path("dir")));
    r = img("create -f vhd " + p("no/such/dir/x.vhd") + " 1M");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("no/such/dir/x.vhd"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("No such file or directory"), std::string::npos) << r.output;

    // Nothing half-written is left next to the images after any of the failures above.
    for (const auto& e : std::filesystem::directory_iterator(m_dir.dir()))
        EXPECT_EQ(e.path().filename().string().find(".vireo-tmp-"), std::string::npos) << e.path();
}

TEST_F(ImgCliTest, ConvertCompareMap) {
    std::vector<uint8_t> raw(6 << 20, 0);
    auto data = pattern(100000, 1);
    std::copy(data.begin(), data.end(), raw.begin() + (4 << 20));
    write_file(m_dir.path("src.raw"), raw);
    auto r = img("convert -O vhd -p " + p("src.raw") + " " + p("d.vhd"));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("100.00/100%"), std::string::npos);
    ASSERT_EQ(img("convert -O vhd --subformat fixed " + p("d.vhd") + " " + p("f.vhd")).status, 0);
    ASSERT_EQ(img("convert " + p("f.vhd") + " " + p("back.raw")).status, 0);  // -O raw by default
    EXPECT_EQ(read_file(m_dir.path("back.raw")), raw);

    r = img("compare " + p("src.raw") + " " + p("d.vhd"));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("identical"), std::string::npos);
    raw[(4 << 20) + 777] ^= 0xFF;
    write_file(m_dir.path("changed.raw"), raw);
    r = img("compare " + p("changed.raw") + " " + p("f.vhd"));
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_NE(r.output.find(std::to_string((4 << 20) + 777)), std::string::npos) << r.output;
    r = img("compare " + p("changed.raw") + " " + p("none.vhd"));
    EXPECT_EQ(r.status, 2) << r.output;

    auto j = json_of("map --json " + p("d.vhd"));
    ASSERT_EQ(j.size(), 1u);  // one allocated 2 MiB block
    EXPECT_EQ(j[0]["start"], 4 << 20);
    EXPECT_EQ(j[0]["length"], 2 << 20);
    EXPECT_EQ(j[0]["data"], true);
    r = img("map " + p("d.vhd"));
    EXPECT_EQ(r.status, 0);
    EXPECT_NE(r.output.find("0x400000"), std::string::npos) << r.output;

    r = img("convert " + p("nonexistent.vhd") + " " + p("out.raw"));
    EXPECT_NE(r.status, 0);
    EXPECT_FALSE(std::filesystem::exists(m_dir.path("out.raw")));
}

TEST_F(ImgCliTest, CheckExitCodesAndRepair) {
    std::vector<uint8_t> raw(8 << 20, 0);
    auto data = pattern(3 << 20, 2);
    std::copy(data.begin(), data.end(), raw.begin());
    write_file(m_dir.path("src.raw"), raw);
    ASSERT_EQ(img("convert -O vhd " + p("src.raw") + " " + p("d.vhd")).status, 0);
    auto r = img("check " + p("d.vhd"));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("No errors"), std::string::npos);

    // A leak: an extra block's worth of space before the footer.
    auto bytes = read_file(m_dir.path("d.vhd"));
    std::vector<uint8_t> footer(bytes.end() - 512, bytes.end());
    bytes.resize(bytes.size() - 512 + (2 << 20) + 512, 0);
    std::copy(footer.begin(), footer.end(), bytes.end() - 512);
    write_file(m_dir.path("d.vhd"), bytes);
    r = img("check " + p("d.vhd"));
    EXPECT_EQ(r.status, 3) << r.output;
    auto j = nlohmann::json::parse(run_command(kVireo + " img check --json " + p("d.vhd"), false).output);
    EXPECT_EQ(j["leaks"], 1);
    EXPECT_EQ(j["corruptions"], 0);
    r = img("check --repair " + p("d.vhd"));
    EXPECT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("repaired"), std::string::npos) << r.output;
    EXPECT_EQ(img("compare " + p("src.raw") + " " + p("d.vhd")).status, 0);

    // Corruption: two BAT entries pointing at the same block.
    bytes = read_file(m_dir.path("d.vhd"));
    std::memcpy(bytes.data() + 1536 + 8, bytes.data() + 1536, 4);
    write_file(m_dir.path("d.vhd"), bytes);
    r = img("check " + p("d.vhd"));
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("overlap"), std::string::npos) << r.output;
    EXPECT_EQ(img("check --repair " + p("d.vhd")).status, 2);
    EXPECT_EQ(read_file(m_dir.path("d.vhd")), bytes);  // not touched
    r = img("info " + p("d.vhd"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("overlap"), std::string::npos) << r.output;

    EXPECT_EQ(img("check " + p("missing.vhd")).status, 1);
}

TEST_F(ImgCliTest, CommitAndResize) {
    ASSERT_EQ(img("create -f vhd " + p("base.vhd") + " 16M").status, 0);
    ASSERT_EQ(img("create -b " + p("base.vhd") + " " + p("child.vhd")).status, 0);
    // Put data into the child through convert: raw -> child is not possible, so write a raw
    // image and commit a child made of it.
    std::vector<uint8_t> raw(16 << 20, 0);
    auto data = pattern(500000, 3);
    std::copy(data.begin(), data.end(), raw.begin() + 3000000);
    write_file(m_dir.path("src.raw"), raw);
    ASSERT_EQ(img("convert -O vhd " + p("src.raw") + " " + p("data.vhd")).status, 0);
    ASSERT_EQ(img("create -b " + p("data.vhd") + " " + p("top.vhd")).status, 0);
    auto r = img("commit " + p("top.vhd"));
    EXPECT_EQ(r.status, 0) << r.output;  // nothing in top yet: a no-op
    r = img("commit " + p("base.vhd"));
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("not a differencing"), std::string::npos) << r.output;

    r = img("resize " + p("data.vhd") + " +16M");
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(json_of("info --json " + p("data.vhd"))["virtual_size"], 32 << 20);
    raw.resize(32 << 20, 0);
    write_file(m_dir.path("src32.raw"), raw);
    EXPECT_EQ(img("compare " + p("src32.raw") + " " + p("data.vhd")).status, 0);
    r = img("resize " + p("data.vhd") + " 1M");
    EXPECT_NE(r.status, 0);
    EXPECT_NE(r.output.find("shrinking"), std::string::npos) << r.output;
    EXPECT_EQ(img("check " + p("data.vhd")).status, 0);
}

}  // namespace
}  // namespace vireo
