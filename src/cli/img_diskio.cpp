// `vireo img serve` and `vireo img bench` registration, and the image opener they share.
#include "cli/img_diskio.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "base/io.hpp"
#include "cli/command.hpp"
#include "disk/raw_backend.hpp"

namespace vireo::cli {

void register_img_serve(CLI::App& img, Context& ctx);
void register_img_bench(CLI::App& img, Context& ctx);

void register_img_diskio(CLI::App& img, Context& ctx) {
    register_img_serve(img, ctx);
    register_img_bench(img, ctx);
}

namespace {

// VHD images carry the "conectix" cookie in the footer copy at offset 0 (dynamic, differencing)
// or in the footer at the end (fixed).
Result<bool> looks_like_vhd(const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY));
    VIREO_ASSIGN_OR_RETURN(uint64_t size, file_size(fd.get()));
    std::array<uint8_t, 8> cookie{};
    static constexpr char kCookie[] = "conectix";
    if (size >= 512) {
        VIREO_TRY(pread_exact(fd.get(), cookie, 0));
        if (std::memcmp(cookie.data(), kCookie, 8) == 0) return true;
        VIREO_TRY(pread_exact(fd.get(), cookie, size - 512));
        if (std::memcmp(cookie.data(), kCookie, 8) == 0) return true;
    }
    return false;
}

}  // namespace

Result<std::unique_ptr<disk::BlockBackend>> open_disk_image(const std::string& path,
                                                            const std::string& format, bool read_only,
                                                            bool direct) {
    std::string fmt = format;
    if (fmt == "vpc") fmt = "vhd";
    if (fmt.empty()) {
        VIREO_ASSIGN_OR_RETURN(bool vhd, looks_like_vhd(path));
        fmt = vhd ? "vhd" : "raw";
    }
    disk::OpenOptions options;
    options.read_only = read_only;
    options.direct = direct;
    if (fmt == "raw") {
        VIREO_ASSIGN_OR_RETURN(auto raw, disk::RawBackend::open(path, options));
        return std::unique_ptr<disk::BlockBackend>(std::move(raw));
    }
    if (fmt == "vhd") return make_error("{}: VHD images are not supported by this build yet", path);
    return make_error("unknown image format '{}' (use raw or vhd)", format);
}

}  // namespace vireo::cli
