// Tests for sparse snapshot memory files: touched pages only, holes elsewhere, lazy COW maps.
#include "vmm/snapshot/memory_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "support/subprocess.hpp"

namespace vireo::vmm::snapshot {
namespace {

class MemfdRam {
  public:
    explicit MemfdRam(uint64_t size) : m_size(size) {
        m_fd = UniqueFd(::memfd_create("test-ram", MFD_CLOEXEC));
        EXPECT_EQ(::ftruncate(m_fd.get(), static_cast<off_t>(size)), 0);
        m_data =
            static_cast<uint8_t*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, m_fd.get(), 0));
    }
    ~MemfdRam() { ::munmap(m_data, m_size); }
    uint8_t* page(uint64_t n) { return m_data + n * kPageSize; }
    MemorySource source() const { return {m_data, m_size, m_fd.get(), false}; }

  private:
    UniqueFd m_fd;
    uint8_t* m_data;
    uint64_t m_size;
};

std::vector<std::pair<uint64_t, uint64_t>> data_extents(const std::string& path) {
    std::vector<std::pair<uint64_t, uint64_t>> out;
    UniqueFd fd(::open(path.c_str(), O_RDONLY));
    off_t pos = 0;
    for (;;) {
        off_t d = ::lseek(fd.get(), pos, SEEK_DATA);
        if (d < 0) break;
        off_t h = ::lseek(fd.get(), d, SEEK_HOLE);
        out.emplace_back(d, h);
        pos = h;
    }
    return out;
}

// The Rss of the mapping that starts at `addr`, from /proc/self/smaps.
uint64_t rss_kib_of_mapping(const void* addr) {
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool in_mapping = false;
    auto start = reinterpret_cast<uintptr_t>(addr);
    while (std::getline(smaps, line)) {
        if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
            line.find('-') != std::string::npos) {
            in_mapping = std::stoull(line.substr(0, line.find('-')), nullptr, 16) == start;
        } else if (in_mapping && line.starts_with("Rss:")) {
            return std::stoull(line.substr(4));
        }
    }
    return ~uint64_t{0};
}

uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

TEST(MemoryFile, WritesOnlyTouchedNonZeroPages) {
    testing::TempDir dir("vireo-mem");
    constexpr uint64_t kPages = 4096;  // 16 MiB
    MemfdRam ram(kPages * kPageSize);
    for (uint64_t p : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{100}, uint64_t{4095}})
        std::memset(ram.page(p), static_cast<int>(p % 250 + 1), kPageSize);
    std::memset(ram.page(200), 0, kPageSize);  // touched, but zero: stays a hole
    volatile uint8_t sink = ram.page(300)[0];  // read only
    (void)sink;

    std::string path = dir.file("memory.bin");
    auto stats = write_memory_file(path, ram.source());
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->data_bytes, 5 * kPageSize);
    EXPECT_GE(stats->zero_pages, 1u);

    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(static_cast<uint64_t>(st.st_size), kPages * kPageSize);
    EXPECT_LE(allocated_bytes(path), 5 * kPageSize + 64 * 1024);  // filesystems may round up a little

    auto mapped = MappedMemoryFile::map(path, kPages * kPageSize);
    ASSERT_TRUE(mapped.ok()) << mapped.error().message();
    for (uint64_t p = 0; p < kPages; ++p)
        ASSERT_EQ(std::memcmp((*mapped)->data() + p * kPageSize, ram.page(p), kPageSize), 0) << "page " << p;
}

TEST(MemoryFile, UntouchedMemoryGivesAnEmptySparseFile) {
    testing::TempDir dir("vireo-mem");
    MemfdRam ram(1024 * kPageSize);
    std::string path = dir.file("memory.bin");
    auto stats = write_memory_file(path, ram.source());
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->data_bytes, 0u);
    EXPECT_TRUE(data_extents(path).empty());
}

TEST(MemoryFile, RestoredMappingIsCopyOnWriteAndLazy) {
    testing::TempDir dir("vireo-mem");
    MemfdRam ram(256 * kPageSize);
    std::memset(ram.page(10), 0xAB, kPageSize);
    std::string path = dir.file("memory.bin");
    ASSERT_TRUE(write_memory_file(path, ram.source()).ok());

    auto mapped = MappedMemoryFile::map(path, 256 * kPageSize);
    ASSERT_TRUE(mapped.ok());
    uint8_t* mem = (*mapped)->data();
    // Nothing is copied or faulted in until the guest touches it.
    EXPECT_EQ(rss_kib_of_mapping(mem), 0u);
    mem[10 * kPageSize] = 0x11;
    mem[50 * kPageSize] = 0x22;
    UniqueFd fd(::open(path.c_str(), O_RDONLY));
    uint8_t b = 0;
    ASSERT_EQ(::pread(fd.get(), &b, 1, 10 * kPageSize), 1);
    EXPECT_EQ(b, 0xAB) << "the snapshot file must not change";
    EXPECT_LE(rss_kib_of_mapping(mem), 2 * kPageSize / 1024);

    // A snapshot of the restored memory holds the file's data and the guest's new writes.
    std::string second = dir.file("memory2.bin");
    auto stats = write_memory_file(second, (*mapped)->source());
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->data_bytes, 2 * kPageSize);
    auto again = MappedMemoryFile::map(second, 256 * kPageSize);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ((*again)->data()[10 * kPageSize], 0x11);
    EXPECT_EQ((*again)->data()[10 * kPageSize + 1], 0xAB);
    EXPECT_EQ((*again)->data()[50 * kPageSize], 0x22);
    EXPECT_EQ((*again)->data()[60 * kPageSize], 0);
}

TEST(MemoryFile, AnonymousMemoryUsesPagemap) {
    testing::TempDir dir("vireo-mem");
    constexpr uint64_t kSize = 128 * kPageSize;
    auto* mem = static_cast<uint8_t*>(
        ::mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(mem, MAP_FAILED);
    mem[3 * kPageSize] = 7;
    mem[77 * kPageSize + 5] = 9;
    std::string path = dir.file("memory.bin");
    auto stats = write_memory_file(path, {mem, kSize, -1, false});
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->data_bytes, 2 * kPageSize);
    ::munmap(mem, kSize);
}

TEST(MemoryFile, HugePagesUseResidency) {
    constexpr uint64_t kHuge = 2 << 20;
    UniqueFd fd(::memfd_create("test-huge", MFD_CLOEXEC | MFD_HUGETLB));
    if (!fd || ::ftruncate(fd.get(), 4 * kHuge) != 0) GTEST_SKIP() << "no hugetlbfs memfd here";
    auto* mem =
        static_cast<uint8_t*>(::mmap(nullptr, 4 * kHuge, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0));
    if (mem == MAP_FAILED) GTEST_SKIP() << "huge pages cannot be mapped here (vm.nr_hugepages)";
    // Touching a huge page may still fail (SIGBUS) when the pool is empty: only go on with 2.
    std::ifstream free_pages("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages");
    int free_count = 0;
    free_pages >> free_count;
    if (free_count < 2) {
        ::munmap(mem, 4 * kHuge);
        GTEST_SKIP() << "fewer than 2 free huge pages (vm.nr_hugepages)";
    }
    mem[kHuge + 5] = 1;  // the second huge page only
    testing::TempDir dir("vireo-mem");
    auto stats = write_memory_file(dir.file("memory.bin"), {mem, 4 * kHuge, fd.get(), false});
    ASSERT_TRUE(stats.ok()) << stats.error().message();
    EXPECT_EQ(stats->touched_bytes, kHuge) << "untouched huge pages are neither read nor written";
    EXPECT_EQ(stats->data_bytes, kPageSize);
    ::munmap(mem, 4 * kHuge);
}

TEST(MemoryFile, Errors) {
    testing::TempDir dir("vireo-mem");
    MemfdRam ram(16 * kPageSize);
    std::string path = dir.file("memory.bin");
    ASSERT_TRUE(write_memory_file(path, ram.source()).ok());
    EXPECT_FALSE(write_memory_file(path, ram.source()).ok()) << "an existing file is never overwritten";
    EXPECT_FALSE(write_memory_file(dir.file("no/dir/m.bin"), ram.source()).ok());
    auto wrong_size = MappedMemoryFile::map(path, 32 * kPageSize);
    ASSERT_FALSE(wrong_size.ok());
    EXPECT_NE(wrong_size.error().message().find("manifest says"), std::string::npos);
    EXPECT_FALSE(MappedMemoryFile::map(dir.file("missing.bin"), 16 * kPageSize).ok());
}

}  // namespace
}  // namespace vireo::vmm::snapshot
