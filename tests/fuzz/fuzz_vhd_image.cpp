// Fuzz target: any bytes as a VHD. The checker, the layout reader, the opener (read-only, without
// parents) and reads through what it opens never crash, hang, allocate beyond the input's size
// or write; whatever opens describes itself consistently.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "disk/image.hpp"
#include "disk/image_check.hpp"
#include "disk/vhd_layout.hpp"

using namespace vireo;
using namespace vireo::disk;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static int fd = ::memfd_create("fuzz-vhd", MFD_CLOEXEC);
    if (fd < 0) std::abort();
    if (::ftruncate(fd, 0) < 0) std::abort();
    for (size_t done = 0; done < size;) {
        ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
        if (n <= 0) std::abort();
        done += static_cast<size_t>(n);
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);

    CheckReport report = check_vhd_fd(fd, path);
    if (report.exit_code() < 0 || report.exit_code() > 3) std::abort();

    auto layout = read_vhd_layout(fd, path);
    if (layout.ok()) {
        // A layout the reader accepts is one the checker finds no corruption in, bar footers.
        if (layout->allocated_blocks() > layout->max_table_entries) std::abort();
        (void)vhd::parent_candidates(layout->locators, vhd::parent_name(layout->header), "/nonexistent");
    }

    ImageOptions options;
    options.read_only = true;
    options.format = ImageFormat::kVhd;
    options.open_parents = false;
    auto disk = open_image(path, options);
    if (!disk.ok()) return 0;
    BlockBackend& d = **disk;
    uint64_t disk_size = d.size();
    // Walk the first extents and read a little of each.
    std::vector<uint8_t> buf(64 << 10);
    uint64_t offset = 0;
    for (int i = 0; i < 32 && offset < disk_size; ++i) {
        auto e = d.block_status(offset, disk_size - offset);
        if (!e.ok()) break;
        if (e->length == 0 || e->offset != offset) std::abort();
        uint64_t n = std::min<uint64_t>(e->length, buf.size());
        iovec v{buf.data(), static_cast<size_t>(n)};
        (void)d.read(offset, {&v, 1});  // may fail (sectors in the unopened parent)
        offset += e->length;
    }
    if (disk_size >= 512) {
        iovec v{buf.data(), 512};
        (void)d.read(disk_size - 512, {&v, 1});
    }
    return 0;
}
