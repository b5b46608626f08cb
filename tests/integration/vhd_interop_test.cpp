// VHD interoperability with real peers: images made by qemu-img and written by qemu-io read
// bit-exactly in Vireo; images made by Vireo open in qemu-img (which verifies both checksums),
// compare identical there and read correctly in libvhdi; differencing chains made by Vireo are
// recognised by libvhdi; both sides agree on every image's virtual size.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "base/endian.hpp"
#include "disk/image.hpp"
#include "disk/vhd_format.hpp"
#include "integration/run_command.hpp"
#include "unit/disk/disk_test_util.hpp"

namespace vireo::disk {
namespace {

using vireo::testing::have_program;
using vireo::testing::run_command;
using vireo::testing::sh;
using namespace vireo::disk::testing;

const std::string kVireo = std::string(VIREO_BINARY_DIR) + "/bin/vireo";
// Debian's python3 has the libvhdi bindings; a python3 earlier in PATH may not.
const char* kPython = "/usr/bin/python3";

class VhdInteropTest : public ::testing::Test {
  protected:
    void SetUp() override {
        for (const char* tool : {"qemu-img", "qemu-io"}) {
            if (!have_program(tool)) GTEST_SKIP() << tool << " is not installed (apt install qemu-utils)";
        }
    }

    uint64_t qemu_size(const std::string& path, const std::string& fmt = "vpc") {
        auto r = run_command("qemu-img info -f " + fmt + " --output=json " + sh(path), false);
        EXPECT_EQ(r.status, 0) << r.output;
        if (r.status != 0) return 0;
        return nlohmann::json::parse(r.output)["virtual-size"].get<uint64_t>();
    }

    nlohmann::json vireo_info(const std::string& path) {
        auto r = run_command(kVireo + " img info --json " + sh(path), false);
        EXPECT_EQ(r.status, 0) << r.output;
        if (r.status != 0) return {};
        return nlohmann::json::parse(r.output);
    }

    void expect_same_raw(const std::string& vhd) {
        std::string q = m_dir.path("qemu.raw"), v = m_dir.path("vireo.raw");
        auto a = run_command("qemu-img convert -f vpc -O raw " + sh(vhd) + " " + sh(q));
        ASSERT_EQ(a.status, 0) << a.output;
        auto b = run_command(kVireo + " img convert -O raw " + sh(vhd) + " " + sh(v));
        ASSERT_EQ(b.status, 0) << b.output;
        EXPECT_EQ(std::filesystem::file_size(q), std::filesystem::file_size(v)) << vhd;
        EXPECT_EQ(run_command("cmp " + sh(q) + " " + sh(v)).status, 0) << vhd << " reads differently";
    }

    // A raw file of `size` bytes with data in a few places (some unaligned).
    std::vector<uint8_t> make_raw(const std::string& path, uint64_t size, uint32_t seed) {
        std::vector<uint8_t> model(size, 0);
        std::mt19937_64 rng(seed);
        for (int i = 0; i < 6; ++i) {
            uint64_t len = std::min<uint64_t>(size, 1 + rng() % 300000);
            uint64_t at = rng() % (size - len + 1);
            auto data = pattern(len, seed + i);
            std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(at));
        }
        write_file(path, model);
        return model;
    }

    TempDir m_dir;
};

TEST_F(VhdInteropTest, QemuImagesReadBitExactly) {
    struct Case {
        const char* options;
        const char* size;
    };
    const Case cases[] = {
        {"subformat=dynamic", "1M"},
        {"subformat=dynamic", "10M"},
        {"subformat=dynamic", "33M"},
        {"subformat=dynamic", "100001K"},
        {"subformat=fixed", "1M"},
        {"subformat=fixed", "7777K"},
        {"subformat=fixed", "40M"},
        {"subformat=dynamic,force_size=on", "50000K"},
        {"subformat=fixed,force_size=on", "3M"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.options) + " " + c.size);
        std::string img = m_dir.path("q.vhd");
        std::filesystem::remove(img);
        auto r = run_command(std::string("qemu-img create -q -f vpc -o ") + c.options + " " + sh(img) + " " +
                             c.size);
        ASSERT_EQ(r.status, 0) << r.output;
        uint64_t size = qemu_size(img);
        // Data at the start, across a 2 MiB block boundary, unaligned, and in the last sector.
        std::string cmds = "-c 'write -P 0xab 0 64k' -c 'write -P 0x77 1000 3000' -c 'write -P 0x33 " +
                           std::to_string(size - 512) + " 512'";
        if (size > (3 << 20)) cmds += " -c 'write -P 0x5c 2093056 8192'";
        r = run_command("qemu-io -f vpc " + cmds + " " + sh(img));
        ASSERT_EQ(r.status, 0) << r.output;
        auto info = vireo_info(img);
        EXPECT_EQ(info["virtual_size"].get<uint64_t>(), size);
        EXPECT_EQ(info["format"], "vhd");
        expect_same_raw(img);
        auto chk = run_command(kVireo + " img check " + sh(img));
        EXPECT_EQ(chk.status, 0) << chk.output;
    }
}

TEST_F(VhdInteropTest, VireoImagesOpenInQemuAndLibvhdi) {
    bool have_vhdi = have_program("vhdiinfo");
    bool have_pyvhdi = run_command(std::string(kPython) + " -c 'import pyvhdi'").status == 0;
    struct Case {
        const char* args;
        uint64_t size;
        uint64_t expected;
        const char* type;  // as vhdiinfo prints it
    };
    const Case cases[] = {
        {"", 10 << 20, 10 << 20, "Dynamic"},
        {"--block-size 512K", (7 << 20) + 512 * 3, (7 << 20) + 512 * 3, "Dynamic"},
        {"--block-size 4M", 9 << 20, 9 << 20, "Dynamic"},
        {"--subformat fixed", 5 << 20, 5 << 20, "Fixed"},
        {"--subformat fixed --align-1m", (5 << 20) + 4096, 6 << 20, "Fixed"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(std::string(c.args) + " " + std::to_string(c.size));
        std::string raw = m_dir.path("src.raw"), img = m_dir.path("v.vhd");
        auto model = make_raw(raw, c.size, static_cast<uint32_t>(c.size));
        model.resize(c.expected, 0);
        write_file(raw, model);
        auto r = run_command(kVireo + " img convert -O vhd " + c.args + " " + sh(raw) + " " + sh(img));
        ASSERT_EQ(r.status, 0) << r.output;
        // qemu-img verifies the footer and header checksums while opening.
        EXPECT_EQ(qemu_size(img), c.expected);
        r = run_command("qemu-img compare -f raw -F vpc " + sh(raw) + " " + sh(img));
        EXPECT_EQ(r.status, 0) << r.output;
        EXPECT_EQ(vireo_info(img)["virtual_size"].get<uint64_t>(), c.expected);
        if (have_vhdi) {
            r = run_command("vhdiinfo " + sh(img));
            EXPECT_EQ(r.status, 0) << r.output;
            EXPECT_NE(r.output.find("(" + std::to_string(c.expected) + " bytes)"), std::string::npos)
                << r.output;
            EXPECT_NE(r.output.find(c.type), std::string::npos) << r.output;
        }
        if (have_pyvhdi) {
            r = run_command(std::string(kPython) +
                            " -c \"import pyvhdi,sys; f=pyvhdi.file(); f.open(sys.argv[1]); "
                            "sys.exit(0 if f.read_buffer(f.get_media_size())==open(sys.argv[2],"
                            "'rb').read() else 1)\" " +
                            sh(img) + " " + sh(raw));
            EXPECT_EQ(r.status, 0) << "libvhdi reads different data: " << r.output;
        }
    }
    if (!have_vhdi)
        GTEST_SKIP() << "vhdiinfo is not installed (apt install libvhdi-utils); qemu checks passed";
}

TEST_F(VhdInteropTest, QemuIoWritesIntoVireoImages) {
    std::string img = m_dir.path("w.vhd");
    auto r = run_command(kVireo + " img create -f vhd " + sh(img) + " 24M");
    ASSERT_EQ(r.status, 0) << r.output;
    r = run_command(
        "qemu-io -f vpc -c 'write -P 0x42 0 1M' -c 'write -P 0x43 5M 12k' -c 'write -P 0x44 23M 1M' " +
        sh(img));
    ASSERT_EQ(r.status, 0) << r.output;
    expect_same_raw(img);
    r = run_command(kVireo + " img check " + sh(img));
    EXPECT_EQ(r.status, 0) << r.output;
}

TEST_F(VhdInteropTest, SizeRulesAgreeInBothDirections) {
    // qemu-img's own images: CHS for "qemu", current_size for force_size ("qem2").
    std::string a = m_dir.path("a.vhd"), b = m_dir.path("b.vhd");
    ASSERT_EQ(run_command("qemu-img create -q -f vpc " + sh(a) + " 1G").status, 0);
    ASSERT_EQ(run_command("qemu-img create -q -f vpc -o force_size=on " + sh(b) + " 1G").status, 0);
    auto ia = vireo_info(a);
    EXPECT_EQ(ia["virtual_size"].get<uint64_t>(), qemu_size(a));
    EXPECT_EQ(ia["virtual_size"].get<uint64_t>(), 1073995776u);
    EXPECT_EQ(ia["size_rule"], "chs");
    EXPECT_EQ(ia["creator_app"], "qemu");
    auto ib = vireo_info(b);
    EXPECT_EQ(ib["virtual_size"].get<uint64_t>(), 1073741824u);
    EXPECT_EQ(ib["size_rule"], "current_size");
    EXPECT_EQ(ib["creator_app"], "qem2");

    // Vireo's images: the exact size asked for, as QEMU 7.2 sees it too, for sizes CHS cannot
    // express; the geometry is the spec's (rounded down).
    for (uint64_t size :
         {1ULL << 30, 10ULL << 30, (1ULL << 30) + 512, 9999872ULL, 3ULL << 20, 130ULL << 30}) {
        for (const char* sub : {"dynamic", "fixed"}) {
            std::string v = m_dir.path("v.vhd");
            auto r = run_command(kVireo + " img create -f vhd --subformat " + sub + " " + sh(v) + " " +
                                 std::to_string(size));
            ASSERT_EQ(r.status, 0) << r.output;
            EXPECT_EQ(qemu_size(v), size) << sub << " " << size;
            auto info = vireo_info(v);
            EXPECT_EQ(info["virtual_size"].get<uint64_t>(), size);
            EXPECT_EQ(info["geometry"]["size"].get<uint64_t>(), vhd::chs_for_size(size).bytes());
            std::filesystem::remove(v);
        }
    }

    // Other creators, footers rewritten: both read CHS for "vpc " and unknown ones, current_size
    // for XenServer's "tap\0" and Hyper-V's "win ".
    for (const char* app : {"vpc ", "vbox", "tap\0", "win ", "d2v ", "CTXS"}) {
        std::string v = m_dir.path("c.vhd");
        ASSERT_EQ(run_command(kVireo + " img create -f vhd " + sh(v) + " 100M").status, 0);
        auto bytes = read_file(v);
        for (size_t off : {size_t{0}, bytes.size() - 512}) {
            vhd::Footer f;
            std::memcpy(&f, bytes.data() + off, 512);
            std::memcpy(f.creator_app.data(), app, 4);
            vhd::seal_footer(f);
            std::memcpy(bytes.data() + off, &f, 512);
        }
        write_file(v, bytes);
        EXPECT_EQ(vireo_info(v)["virtual_size"].get<uint64_t>(), qemu_size(v)) << app;
        expect_same_raw(v);
    }
}

TEST_F(VhdInteropTest, DifferencingChainsInLibvhdiAndVireo) {
    const uint64_t size = 12 << 20;
    std::vector<uint8_t> model(size, 0);
    std::vector<std::string> chain = {m_dir.path("base.vhd"), m_dir.path("mid.vhd"), m_dir.path("top.vhd")};
    CreateOptions o;
    o.format = ImageFormat::kVhd;
    o.size = size;
    ASSERT_TRUE(create_image(chain[0], o).ok());
    for (size_t level = 0; level < chain.size(); ++level) {
        if (level > 0) {
            auto r = run_command(kVireo + " img create -b " + sh(chain[level - 1]) + " " + sh(chain[level]));
            ASSERT_EQ(r.status, 0) << r.output;
        }
        auto d = open_image(chain[level]);
        ASSERT_TRUE(d.ok()) << d.error().message();
        for (int k = 0; k < 3; ++k) {
            uint64_t at = level * 3000000 + k * 1234567 + 511;
            auto data = pattern(100000, static_cast<uint32_t>(level * 10 + k));
            ASSERT_TRUE(write_at(**d, at, data).ok());
            std::copy(data.begin(), data.end(), model.begin() + static_cast<ptrdiff_t>(at));
        }
    }
    std::string expected = m_dir.path("expected.raw"), got = m_dir.path("got.raw");
    write_file(expected, model);
    auto r = run_command(kVireo + " img convert -O raw " + sh(chain[2]) + " " + sh(got));
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_EQ(run_command("cmp " + sh(expected) + " " + sh(got)).status, 0) << "vireo reads the chain wrong";
    auto info = vireo_info(chain[2]);
    ASSERT_EQ(info["backing_chain"].size(), 2u);
    EXPECT_EQ(info["backing_chain"][0], chain[1]);
    EXPECT_EQ(info["backing_chain"][1], chain[0]);
    EXPECT_EQ(info["subformat"], "differencing");

    if (!have_program("vhdiinfo")) GTEST_SKIP() << "vhdiinfo is not installed (apt install libvhdi-utils)";
    for (size_t level = 1; level < chain.size(); ++level) {
        std::string parent_uuid = vireo_info(chain[level - 1])["uuid"];
        r = run_command("vhdiinfo " + sh(chain[level]));
        ASSERT_EQ(r.status, 0) << r.output;
        EXPECT_NE(r.output.find("Differential"), std::string::npos) << r.output;
        EXPECT_NE(r.output.find("Parent identifier\t: " + parent_uuid), std::string::npos) << r.output;
        EXPECT_NE(r.output.find(std::filesystem::path(chain[level - 1]).filename().string()),
                  std::string::npos)
            << r.output;
    }
    if (run_command(std::string(kPython) + " -c 'import pyvhdi'").status != 0) {
        GTEST_SKIP() << "python3-libvhdi is not installed";
    }
    // libvhdi reads through the chain with the parents it is given.
    std::string script =
        "import pyvhdi,sys\n"
        "files=[]\n"
        "for p in sys.argv[1:4]:\n"
        "    f=pyvhdi.file(); f.open(p); files.append(f)\n"
        "for child,parent in zip(files[::-1], files[::-1][1:]):\n"
        "    child.set_parent(parent)\n"
        "top=files[-1]\n"
        "sys.exit(0 if top.read_buffer(top.get_media_size())==open(sys.argv[4],'rb').read() else 1)\n";
    write_file(m_dir.path("chain.py"), std::vector<uint8_t>(script.begin(), script.end()));
    r = run_command(std::string(kPython) + " " + sh(m_dir.path("chain.py")) + " " + sh(chain[0]) + " " +
                    sh(chain[1]) + " " + sh(chain[2]) + " " + sh(expected));
    EXPECT_EQ(r.status, 0) << "libvhdi reads the chain differently: " << r.output;
}

}  // namespace
}  // namespace vireo::disk
