// Snapshot writing: destination checks, paused-state capture, files, manifest.
#include "vmm/control/snapshot_writer.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <chrono>

#include <fmt/format.h>

#include "base/io.hpp"
#include "base/log.hpp"
#include "devices/snapshot.hpp"
#include "vmm/control/state_json.hpp"
#include "vmm/pci_devices.hpp"
#include "vmm/snapshot/manifest.hpp"
#include "vmm/snapshot/memory_file.hpp"

#ifndef VIREO_VERSION
#define VIREO_VERSION "0.0.0"
#endif

namespace vireo::vmm {
namespace {

// Disk requests in flight when the VM pauses get this long to complete.
constexpr std::chrono::milliseconds kDrainTimeout{20000};
// The loop thread may be busy (a device callback) but never for long beyond draining the disks
// and flushing them; a loop that has stopped (the VM is going away) never runs the task, hence
// the bound.
constexpr std::chrono::milliseconds kLoopTimeout{60000};

Result<bool> dir_is_empty(const std::string& dir) {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return os_error(fmt::format("snapshot destination {}", dir));
    bool empty = true;
    while (dirent* e = ::readdir(d)) {
        std::string_view name = e->d_name;
        if (name != "." && name != "..") {
            empty = false;
            break;
        }
    }
    ::closedir(d);
    return empty;
}

Status sync_file(const std::string& path) {
    VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_RDONLY | O_CLOEXEC));
    if (::fsync(fd.get()) != 0) return os_error(fmt::format("fsync {}", path));
    return {};
}

uint64_t allocated_bytes(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return 0;
    return static_cast<uint64_t>(st.st_blocks) * 512;
}

std::string utc_now() {
    timespec ts{};
    ::clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    ::gmtime_r(&ts.tv_sec, &t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
    return buf;
}

}  // namespace

Result<bool> prepare_snapshot_dir(const std::string& dir) {
    if (dir.empty()) return make_error("snapshot destination is empty");
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return make_error("snapshot destination {} exists and is not a directory", dir);
        VIREO_ASSIGN_OR_RETURN(bool empty, dir_is_empty(dir));
        if (!empty)
            return make_error("snapshot destination {} is not empty (a snapshot never overwrites files)",
                              dir);
        if (::access(dir.c_str(), W_OK) != 0) return os_error(fmt::format("snapshot destination {}", dir));
        return false;
    }
    if (errno != ENOENT) return os_error(fmt::format("snapshot destination {}", dir));
    if (::mkdir(dir.c_str(), 0700) != 0) {
        if (errno == ENOENT)
            return make_error("snapshot destination {}: its parent directory does not exist", dir);
        return os_error(fmt::format("snapshot destination {}: mkdir", dir));
    }
    return true;
}

Status write_paused_state(Vm& vm, EventLoop& loop, const std::string& dir, uint64_t* memory_bytes) {
    // Device models and KVM's in-kernel devices together, on the loop thread. Disk requests
    // still in flight complete first (their used entries and interrupts go into the state
    // saved next), then every writable disk is flushed, so the snapshot never records a queue
    // waiting for I/O that a restored VMM would not know about.
    if (loop.stopping()) return make_error("snapshot: the VM is stopping");
    Status devices_ok = make_error("not read");
    Result<VmKvmSnapshot> kvm = make_error("not read");
    nlohmann::json device_state = nlohmann::json::object();
    Status called = loop.call(
        [&] {
            devices_ok = [&]() -> Status {
                if (size_t pending = vm.pci().in_flight(); pending > 0)
                    log::get("api").info("snapshot: completing {} disk requests in flight first", pending);
                VIREO_TRY_CTX(vm.pci().drain(static_cast<int>(kDrainTimeout.count())), "snapshot");
                VIREO_TRY_CTX(vm.pci().flush_disks(), "snapshot: flushing disks");
                return {};
            }();
            if (!devices_ok.ok()) return;
            kvm = vm.save_kvm_state();
            for (auto [name, device] : vm.stateful_devices())
                device_state[name] = device->save_state();
        },
        kLoopTimeout);
    if (!called.ok()) return Error(called.error()).context("snapshot");
    VIREO_TRY(devices_ok);
    if (!kvm.ok()) return Error(kvm.error()).context("snapshot: in-kernel devices");
    VmKvmSnapshot kvm_state = *kvm;

    VIREO_ASSIGN_OR_RETURN(auto vcpus, vm.save_vcpu_states());
    nlohmann::json vcpu_json = nlohmann::json::array();
    for (size_t i = 0; i < vcpus.size(); ++i) {
        nlohmann::json v = to_json(vcpus[i]);
        v["id"] = i;
        vcpu_json.push_back(std::move(v));
    }
    nlohmann::json state = {
        {"vcpus", std::move(vcpu_json)},
        {"kvm", to_json(kvm_state)},
        {"devices", std::move(device_state)},
    };
    std::string text = state.dump() + "\n";
    {
        std::string path = dir + "/" + snapshot::kStateFile;
        VIREO_ASSIGN_OR_RETURN(UniqueFd fd, open_file(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
        VIREO_TRY_CTX(write_all(fd.get(), {reinterpret_cast<const uint8_t*>(text.data()), text.size()}),
                      path);
    }
    VIREO_ASSIGN_OR_RETURN(auto stats, snapshot::write_memory_file(dir + "/" + snapshot::kMemoryFile,
                                                                   vm.ram().snapshot_source()));
    *memory_bytes = stats.data_bytes;
    return {};
}

Result<SnapshotWriteResult> finish_snapshot(const std::string& dir, const nlohmann::json& vm_config,
                                            const kvm::System& kvm, Vm& vm, uint64_t memory_bytes) {
    std::string memory = dir + "/" + snapshot::kMemoryFile;
    std::string state = dir + "/" + snapshot::kStateFile;
    VIREO_TRY(sync_file(memory));
    VIREO_TRY(sync_file(state));

    snapshot::Manifest m;
    m.vireo_version = VIREO_VERSION;
    m.created = utc_now();
    VIREO_ASSIGN_OR_RETURN(m.cpu, snapshot::probe_host_cpu(kvm));
    m.vm_config = vm_config;
    m.vcpus = vm.config().cpus;
    m.memory_size = vm.ram().size();
    m.memory_data_bytes = memory_bytes;
    for (const auto& slot : vm.ram().slots())
        m.regions.push_back({slot.gpa, slot.size, slot.file_offset});
    // The disks were flushed while the VM was paused; they are not copied: restoring needs them
    // as they were then.
    std::vector<std::string> opened = vm.pci().disk_paths();  // "vhd dynamic PATH", ...
    const auto& disks = vm.config().disks;
    for (size_t i = 0; i < disks.size(); ++i) {
        nlohmann::json details = {{"read_only", disks[i].read_only}, {"format", disks[i].format}};
        if (!disks[i].serial.empty()) details["serial"] = disks[i].serial;
        if (i < opened.size()) details["opened_as"] = opened[i];
        m.disks.push_back({disks[i].path, std::move(details)});
    }
    VIREO_TRY(snapshot::write_manifest(dir, m));

    SnapshotWriteResult r;
    r.memory_bytes = memory_bytes;
    r.total_bytes = allocated_bytes(memory) + allocated_bytes(state) +
                    allocated_bytes(dir + "/" + snapshot::kManifestFile);
    return r;
}

void remove_partial_snapshot(const std::string& dir, bool created) {
    for (const char* name : {snapshot::kManifestFile, snapshot::kStateFile, snapshot::kMemoryFile}) {
        ::unlink((dir + "/" + name).c_str());
        ::unlink((dir + "/" + name + ".tmp").c_str());
    }
    if (created) ::rmdir(dir.c_str());
}

}  // namespace vireo::vmm
