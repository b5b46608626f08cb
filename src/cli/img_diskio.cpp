// `vireo img serve` and `vireo img bench` registration, and the image opener they share.
#include "cli/img_diskio.hpp"

#include "cli/command.hpp"
#include "disk/image.hpp"

namespace vireo::cli {

void register_img_serve(CLI::App& img, Context& ctx);
void register_img_bench(CLI::App& img, Context& ctx);

void register_img_diskio(CLI::App& img, Context& ctx) {
    register_img_serve(img, ctx);
    register_img_bench(img, ctx);
}

Result<std::unique_ptr<disk::BlockBackend>> open_disk_image(const std::string& path,
                                                            const std::string& format, bool read_only,
                                                            bool direct) {
    disk::ImageOptions options;
    VIREO_ASSIGN_OR_RETURN(options.format, disk::parse_format(format));
    options.read_only = read_only;
    options.direct = direct;
    return disk::open_image(path, options);
}

}  // namespace vireo::cli
