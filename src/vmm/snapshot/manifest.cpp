// Manifest encoding, validation and atomic writing.
#include "vmm/snapshot/manifest.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include "base/io.hpp"

namespace vireo::vmm::snapshot {
namespace {

template <typename T>
Status read_u(const nlohmann::json& j, const char* key, T* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_unsigned())
        return make_error("\"{}\" is missing or not a number", key);
    uint64_t v = it->get<uint64_t>();
    if (v > std::numeric_limits<T>::max()) return make_error("\"{}\" is out of range", key);
    *out = static_cast<T>(v);
    return {};
}

Status read_s(const nlohmann::json& j, const char* key, std::string* out) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return make_error("\"{}\" is missing or not a string", key);
    *out = it->get<std::string>();
    return {};
}

Status fsync_dir(const std::string& dir) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (::fsync(fd.get()) != 0) return os_error(fmt::format("fsync {}", dir));
    return {};
}

}  // namespace

nlohmann::json to_json(const Manifest& m) {
    nlohmann::json regions = nlohmann::json::array();
    for (const auto& r : m.regions)
        regions.push_back({{"gpa", r.gpa}, {"size", r.size}, {"file_offset", r.file_offset}});
    nlohmann::json disks = nlohmann::json::array();
    for (const auto& d : m.disks) {
        nlohmann::json disk = d.details;
        disk["path"] = d.path;
        disks.push_back(disk);
    }
    return {
        {"format_version", m.format_version},
        {"vireo_version", m.vireo_version},
        {"created", m.created},
        {"cpu", to_json(m.cpu)},
        {"vm", m.vm_config},
        {"vcpus", m.vcpus},
        {"memory",
         {{"file", kMemoryFile},
          {"size", m.memory_size},
          {"data_bytes", m.memory_data_bytes},
          {"regions", regions}}},
        {"state_file", kStateFile},
        {"disks", disks},
    };
}

Result<Manifest> manifest_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("manifest is not a JSON object");
    Manifest m;
    auto version = j.find("format_version");
    if (version == j.end() || !version->is_number_unsigned())
        return make_error("manifest has no \"format_version\": not a Vireo snapshot");
    m.format_version = version->get<uint32_t>();
    if (m.format_version != kFormatVersion)
        return make_error("snapshot format version {} is not supported: this vireo-vmm reads version {} only",
                          m.format_version, kFormatVersion);
    VIREO_TRY(read_s(j, "vireo_version", &m.vireo_version));
    VIREO_TRY(read_s(j, "created", &m.created));
    auto cpu = j.find("cpu");
    if (cpu == j.end()) return make_error("manifest has no \"cpu\"");
    VIREO_ASSIGN_OR_RETURN(m.cpu, host_cpu_from_json(*cpu));
    auto vm = j.find("vm");
    if (vm == j.end() || !vm->is_object()) return make_error("manifest: \"vm\" is missing or not an object");
    m.vm_config = *vm;
    VIREO_TRY(read_u(j, "vcpus", &m.vcpus));
    if (m.vcpus == 0) return make_error("manifest: \"vcpus\" is 0");
    auto mem = j.find("memory");
    if (mem == j.end() || !mem->is_object()) return make_error("manifest: \"memory\" is missing");
    VIREO_TRY_CTX(read_u(*mem, "size", &m.memory_size), "manifest memory");
    VIREO_TRY_CTX(read_u(*mem, "data_bytes", &m.memory_data_bytes), "manifest memory");
    auto regions = mem->find("regions");
    if (regions == mem->end() || !regions->is_array() || regions->empty())
        return make_error("manifest memory: \"regions\" is missing or empty");
    for (const auto& r : *regions) {
        MemoryRegionRecord rec;
        if (!r.is_object()) return make_error("manifest memory: a region is not an object");
        VIREO_TRY_CTX(read_u(r, "gpa", &rec.gpa), "manifest memory region");
        VIREO_TRY_CTX(read_u(r, "size", &rec.size), "manifest memory region");
        VIREO_TRY_CTX(read_u(r, "file_offset", &rec.file_offset), "manifest memory region");
        if (rec.size == 0 || rec.file_offset > m.memory_size || rec.size > m.memory_size - rec.file_offset ||
            rec.gpa + rec.size < rec.gpa || rec.gpa % 4096 != 0 || rec.size % 4096 != 0 ||
            rec.file_offset % 4096 != 0)
            return make_error(
                "manifest memory: region gpa 0x{:x} size 0x{:x} at file offset 0x{:x} does not fit a "
                "{}-byte memory file in whole pages",
                rec.gpa, rec.size, rec.file_offset, m.memory_size);
        m.regions.push_back(rec);
    }
    auto disks = j.find("disks");
    if (disks == j.end() || !disks->is_array()) return make_error("manifest: \"disks\" is missing");
    for (const auto& d : *disks) {
        DiskRecord rec;
        if (!d.is_object()) return make_error("manifest: a disk is not an object");
        VIREO_TRY_CTX(read_s(d, "path", &rec.path), "manifest disk");
        rec.details = d;
        rec.details.erase("path");
        m.disks.push_back(std::move(rec));
    }
    return m;
}

Result<nlohmann::json> read_json_file(const std::string& path, size_t max_size) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY | O_CLOEXEC));
    VIREO_ASSIGN_OR_RETURN(uint64_t size, file_size(fd.get()));
    if (size > max_size)
        return make_error("{}: {} bytes, more than the {} a snapshot file may have", path, size, max_size);
    std::string text(size, '\0');
    VIREO_TRY_CTX(pread_exact(fd.get(), {reinterpret_cast<uint8_t*>(text.data()), text.size()}, 0), path);
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded()) return make_error("{}: not valid JSON", path);
    return j;
}

Result<Manifest> load_manifest(const std::string& dir, const HostCpu& here) {
    std::string path = dir + "/" + kManifestFile;
    if (::access(path.c_str(), F_OK) != 0)
        return make_error("{}: no {} (not a snapshot, or one that was not completely written)", dir,
                          kManifestFile);
    VIREO_ASSIGN_OR_RETURN(auto j, read_json_file(path, 16 * 1024 * 1024));
    auto m = manifest_from_json(j);
    if (!m.ok()) return std::move(m).error().context(fmt::format("snapshot {}", dir));
    auto diffs = cpu_differences(m->cpu, here);
    if (!diffs.empty()) {
        std::string list;
        for (size_t i = 0; i < diffs.size() && i < 8; ++i)
            list += "\n  - " + diffs[i];
        if (diffs.size() > 8) list += fmt::format("\n  - and {} more", diffs.size() - 8);
        return make_error(
            "snapshot {} was taken on a host with a different CPU feature set ({} {}/{}/{}); a guest may "
            "rely on "
            "any of its features, so it cannot be restored here:{}",
            dir, m->cpu.vendor, m->cpu.family, m->cpu.model, m->cpu.stepping, list);
    }
    return m;
}

Status write_json_file(const std::string& dir, const std::string& name, const nlohmann::json& j) {
    std::string path = dir + "/" + name;
    std::string tmp = path + ".tmp";
    std::string text = j.dump(2) + "\n";
    {
        VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        auto s = write_all(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()});
        if (s.ok() && ::fsync(fd.get()) != 0) s = os_error("fsync");
        if (!s.ok()) {
            ::unlink(tmp.c_str());
            return std::move(s).error().context(tmp);
        }
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return os_error(fmt::format("rename {} to {}", tmp, path), err);
    }
    return fsync_dir(dir);
}

Status write_manifest(const std::string& dir, const Manifest& m) {
    return write_json_file(dir, kManifestFile, to_json(m));
}

}  // namespace vireo::vmm::snapshot
