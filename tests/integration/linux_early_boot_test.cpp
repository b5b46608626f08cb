// Debian's cloud kernel under `vireo run`, always (label kvm): the kernel prints its banner,
// exactly our command line, and the memory map we gave it (checked against
// arch::x86::build_e820); the VM is killed after that. On emulated KVM this is as far as Linux
// gets in test time. Both forms of the kernel: the ELF vmlinux unpacked from the package's
// bzImage (booted through its PVH note, a few seconds here) and the bzImage itself (64-bit
// boot protocol; its decompressor alone takes a minute or more on emulated KVM), which also
// runs until the kernel has counted the vCPUs in our MADT.
#include <filesystem>
#include <random>

#include "integration/linux_guest.hpp"

namespace vireo::linux_guest {
namespace {

void expect_early_boot(const std::string& kernel, bool pvh, uint64_t memory_mib, uint32_t cpus,
                       double timeout_seconds) {
    make_guest();
    // A token the kernel could not have made up, so the command line check is exact.
    std::string token = std::to_string(std::random_device{}());
    std::string cmdline =
        "console=ttyS0 earlyprintk=serial,ttyS0,115200 reboot=k panic=1 vireo.test=" + token;
    std::string want_map = expected_linux_e820(memory_mib << 20, pvh);
    ProcessOptions opt;
    opt.timeout_seconds = timeout_seconds;
    // Enough once the printed map is complete (the next line follows it). With RAM above 4 GiB,
    // wait for the kernel's first allocation too: memblock allocates top-down, so the node data
    // lands in the RAM above the hole, and the kernel writing it shows that slot works.
    const bool high = memory_mib > 3072;
    const std::string node_data = "NODE_DATA(0) allocated [mem 0x";
    opt.stop_when = [&](const std::string& out, const std::string&) {
        size_t map = out.find("BIOS-provided physical RAM map:");
        if (map == std::string::npos || out.find("printk: bootconsole", map) == std::string::npos)
            return false;
        if (high) {
            size_t nd = out.find(node_data);
            if (nd == std::string::npos || out.find('\n', nd) == std::string::npos) return false;
        }
        // With several vCPUs, wait until the kernel has counted them in our MADT.
        if (cpus > 1) {
            size_t smp = out.find("smpboot: Allowing ");
            if (smp == std::string::npos || out.find('\n', smp) == std::string::npos) return false;
        }
        return true;
    };
    ProcessResult r = run_process({kBin + "vireo", "run", "--kernel", kCache + kernel, "--initrd",
                                   kCache + "initramfs.cpio.gz", "--memory", std::to_string(memory_mib),
                                   "--cpus", std::to_string(cpus), "--cmdline", cmdline, "--serial", "stdio"},
                                  opt);
    EXPECT_TRUE(r.stopped_early) << kernel << ": the kernel did not print its memory map in time\n"
                                 << r.describe();
    std::string log = "\n" + strip_timestamps(r.out);
    EXPECT_NE(log.find("\nLinux version 6."), std::string::npos) << r.describe();
    EXPECT_NE(log.find("\nCommand line: " + cmdline + "\n"), std::string::npos) << r.describe();
    EXPECT_NE(log.find(want_map), std::string::npos) << "want:\n" << want_map << "\n" << r.describe();
    // The initrd: where we put it, page-aligned, its size rounded up to whole pages.
    size_t rd = log.find("\nRAMDISK: [mem 0x");
    ASSERT_NE(rd, std::string::npos) << "the kernel did not find the initrd\n" << r.describe();
    uint64_t rd_start = std::stoull(log.substr(rd + 15, 18), nullptr, 16);
    uint64_t rd_end = std::stoull(log.substr(log.find('-', rd + 15) + 1, 18), nullptr, 16);
    uint64_t initrd_size = std::filesystem::file_size(kCache + "initramfs.cpio.gz");
    EXPECT_EQ(rd_start % 4096, 0u) << r.describe();
    EXPECT_EQ(rd_end + 1 - rd_start, (initrd_size + 4095) / 4096 * 4096) << r.describe();
    if (cpus > 1) {
        EXPECT_NE(log.find(fmt::format("\nsmpboot: Allowing {} CPUs, 0 hotplug CPUs\n", cpus)),
                  std::string::npos)
            << r.describe();
        // By then the kernel has listed our ACPI tables: each one once.
        for (const char* table : {"XSDT", "FACP", "DSDT", "FACS", "APIC", "MCFG"}) {
            std::string line = std::string("\nACPI: ") + table + " 0x";
            size_t first = log.find(line);
            EXPECT_NE(first, std::string::npos) << table << "\n" << r.describe();
            if (first != std::string::npos) {
                EXPECT_EQ(log.find(line, first + 1), std::string::npos) << table << " listed twice\n"
                                                                        << r.describe();
            }
        }
    }
    if (high) {
        size_t nd = log.find(node_data);
        ASSERT_NE(nd, std::string::npos) << r.describe();
        uint64_t addr = std::stoull(log.substr(nd + node_data.size(), 16), nullptr, 16);
        EXPECT_GE(addr, uint64_t{1} << 32) << "node data below 4 GiB\n" << r.describe();
    }
}

TEST(LinuxBoot, EarlyBootShowsBannerCommandLineAndOurMemoryMap) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    // More than 3 GiB: RAM on both sides of the 32-bit MMIO hole (host pages are only used when
    // touched, and the kernel is stopped long before it touches much).
    expect_early_boot("vmlinux", true, 4608, 1, 120);
}

TEST(LinuxBoot, EarlyBootFromTheBzImage) {
    if (!have_kvm()) GTEST_SKIP() << "/dev/kvm is not available on this host";
    // Two vCPUs: the kernel finds the ACPI tables through boot_params and counts both in the MADT.
    expect_early_boot("vmlinuz", false, 384, 2, 600);
}

}  // namespace
}  // namespace vireo::linux_guest
