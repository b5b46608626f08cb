// Host CPU identity and feature set for snapshot compatibility checks.
#include "vmm/snapshot/host_cpu.hpp"

#include <cpuid.h>

#include <cstring>

#include <fmt/format.h>

namespace vireo::vmm::snapshot {
namespace {

struct FeatureRegister {
    uint32_t leaf;
    uint32_t subleaf;
    const char* reg;
};

// The registers that hold feature flags (Intel SDM vol. 2A, CPUID; AMD APM vol. 3, E.3).
constexpr FeatureRegister kFeatureRegisters[] = {
    {0x1, 0, "ecx"}, {0x1, 0, "edx"},        {0x7, 0, "ebx"},        {0x7, 0, "ecx"},
    {0x7, 0, "edx"}, {0x7, 1, "eax"},        {0xd, 0, "eax"},        {0xd, 0, "edx"},
    {0xd, 1, "eax"}, {0x80000001, 0, "ecx"}, {0x80000001, 0, "edx"}, {0x80000008, 0, "ebx"},
};

struct FeatureName {
    const char* key;
    int bit;
    const char* name;
};

// Names for the flags people ask about; other bits are reported by number.
constexpr FeatureName kFeatureNames[] = {
    {"0x1.0.ecx", 0, "sse3"},
    {"0x1.0.ecx", 9, "ssse3"},
    {"0x1.0.ecx", 12, "fma"},
    {"0x1.0.ecx", 13, "cx16"},
    {"0x1.0.ecx", 19, "sse4.1"},
    {"0x1.0.ecx", 20, "sse4.2"},
    {"0x1.0.ecx", 21, "x2apic"},
    {"0x1.0.ecx", 22, "movbe"},
    {"0x1.0.ecx", 23, "popcnt"},
    {"0x1.0.ecx", 24, "tsc-deadline"},
    {"0x1.0.ecx", 25, "aes"},
    {"0x1.0.ecx", 26, "xsave"},
    {"0x1.0.ecx", 28, "avx"},
    {"0x1.0.ecx", 29, "f16c"},
    {"0x1.0.ecx", 30, "rdrand"},
    {"0x1.0.edx", 0, "fpu"},
    {"0x1.0.edx", 4, "tsc"},
    {"0x1.0.edx", 5, "msr"},
    {"0x1.0.edx", 9, "apic"},
    {"0x1.0.edx", 25, "sse"},
    {"0x1.0.edx", 26, "sse2"},
    {"0x7.0.ebx", 0, "fsgsbase"},
    {"0x7.0.ebx", 3, "bmi1"},
    {"0x7.0.ebx", 5, "avx2"},
    {"0x7.0.ebx", 8, "bmi2"},
    {"0x7.0.ebx", 9, "erms"},
    {"0x7.0.ebx", 16, "avx512f"},
    {"0x7.0.ebx", 18, "rdseed"},
    {"0x7.0.ebx", 19, "adx"},
    {"0x7.0.ebx", 20, "smap"},
    {"0x7.0.ebx", 29, "sha"},
    {"0x7.0.ecx", 2, "umip"},
    {"0x7.0.ecx", 5, "waitpkg"},
    {"0x7.0.ecx", 9, "vaes"},
    {"0x7.0.ecx", 10, "vpclmulqdq"},
    {"0x7.0.ecx", 22, "rdpid"},
    {"0x7.0.edx", 4, "fsrm"},
    {"0x7.0.edx", 24, "amx-tile"},
    {"0xd.1.eax", 0, "xsaveopt"},
    {"0xd.1.eax", 1, "xsavec"},
    {"0xd.1.eax", 3, "xsaves"},
    {"0x80000001.0.ecx", 0, "lahf_lm"},
    {"0x80000001.0.ecx", 5, "abm"},
    {"0x80000001.0.edx", 11, "syscall"},
    {"0x80000001.0.edx", 20, "nx"},
    {"0x80000001.0.edx", 26, "pdpe1gb"},
    {"0x80000001.0.edx", 27, "rdtscp"},
    {"0x80000001.0.edx", 29, "lm"},
};

std::string key_of(uint32_t leaf, uint32_t subleaf, const char* reg) {
    return fmt::format("0x{:x}.{}.{}", leaf, subleaf, reg);
}

std::string describe_bit(const std::string& key, int bit) {
    for (const auto& n : kFeatureNames) {
        if (key == n.key && bit == n.bit) return fmt::format("{} (CPUID {} bit {})", n.name, key, bit);
    }
    return fmt::format("CPUID {} bit {}", key, bit);
}

}  // namespace

std::map<std::string, uint32_t> feature_registers(std::span<const kvm_cpuid_entry2> supported) {
    std::map<std::string, uint32_t> out;
    for (const auto& r : kFeatureRegisters) {
        uint32_t value = 0;  // a leaf KVM does not list offers nothing
        for (const auto& e : supported) {
            if (e.function != r.leaf) continue;
            bool indexed = e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
            if (indexed && e.index != r.subleaf) continue;
            if (!indexed && r.subleaf != 0) continue;
            if (std::strcmp(r.reg, "eax") == 0)
                value = e.eax;
            else if (std::strcmp(r.reg, "ebx") == 0)
                value = e.ebx;
            else if (std::strcmp(r.reg, "ecx") == 0)
                value = e.ecx;
            else
                value = e.edx;
            break;
        }
        out[key_of(r.leaf, r.subleaf, r.reg)] = value;
    }
    return out;
}

Result<HostCpu> probe_host_cpu(const kvm::System& system) {
    HostCpu cpu;
    unsigned a = 0, b = 0, c = 0, d = 0;
    __cpuid(0, a, b, c, d);
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    cpu.vendor = vendor;
    __cpuid(1, a, b, c, d);
    // Intel SDM vol. 2A, CPUID leaf 1 EAX: the displayed family and model.
    uint32_t base_family = (a >> 8) & 0xF, base_model = (a >> 4) & 0xF;
    cpu.family = base_family == 0xF ? base_family + ((a >> 20) & 0xFF) : base_family;
    cpu.model = (base_family == 0x6 || base_family == 0xF) ? base_model | ((a >> 16) & 0xF) << 4 : base_model;
    cpu.stepping = a & 0xF;
    VIREO_ASSIGN_OR_RETURN(auto supported, system.supported_cpuid());
    cpu.features = feature_registers(supported);
    return cpu;
}

std::vector<std::string> cpu_differences(const HostCpu& snapshot, const HostCpu& here) {
    std::vector<std::string> out;
    if (snapshot.vendor != here.vendor)
        out.push_back(fmt::format("CPU vendor is {} here, {} in the snapshot", here.vendor, snapshot.vendor));
    for (const auto& [key, theirs] : snapshot.features) {
        auto it = here.features.find(key);
        uint32_t ours = it == here.features.end() ? 0 : it->second;
        for (int bit = 0; bit < 32; ++bit) {
            bool t = theirs >> bit & 1, o = ours >> bit & 1;
            if (t && !o) out.push_back(fmt::format("feature {} is missing here", describe_bit(key, bit)));
            if (!t && o)
                out.push_back(
                    fmt::format("feature {} is here but was not in the snapshot", describe_bit(key, bit)));
        }
    }
    for (const auto& [key, ours] : here.features) {
        if (!snapshot.features.contains(key) && ours != 0)
            out.push_back(fmt::format("feature register CPUID {} is not recorded in the snapshot", key));
    }
    return out;
}

nlohmann::json to_json(const HostCpu& cpu) {
    nlohmann::json features = nlohmann::json::object();
    for (const auto& [key, value] : cpu.features)
        features[key] = fmt::format("0x{:08x}", value);
    return {
        {"vendor", cpu.vendor},     {"family", cpu.family}, {"model", cpu.model},
        {"stepping", cpu.stepping}, {"features", features},
    };
}

Result<HostCpu> host_cpu_from_json(const nlohmann::json& j) {
    if (!j.is_object()) return make_error("\"cpu\" is not an object");
    HostCpu cpu;
    auto vendor = j.find("vendor");
    if (vendor == j.end() || !vendor->is_string()) return make_error("cpu: \"vendor\" is missing");
    cpu.vendor = vendor->get<std::string>();
    for (auto [key, out] :
         {std::pair{"family", &cpu.family}, {"model", &cpu.model}, {"stepping", &cpu.stepping}}) {
        auto it = j.find(key);
        if (it == j.end() || !it->is_number_unsigned())
            return make_error("cpu: \"{}\" is missing or not a number", key);
        *out = it->get<uint32_t>();
    }
    auto features = j.find("features");
    if (features == j.end() || !features->is_object()) return make_error("cpu: \"features\" is missing");
    for (const auto& [key, value] : features->items()) {
        if (!value.is_string()) return make_error("cpu: feature {} is not a hex string", key);
        const std::string& text = value.get_ref<const std::string&>();
        char* end = nullptr;
        errno = 0;
        unsigned long v = std::strtoul(text.c_str(), &end, 16);
        if (text.size() < 3 || text.substr(0, 2) != "0x" || *end != '\0' || errno != 0 || v > 0xFFFFFFFFul)
            return make_error("cpu: feature {} = \"{}\" is not a 32-bit hex value", key, text);
        cpu.features[key] = static_cast<uint32_t>(v);
    }
    return cpu;
}

}  // namespace vireo::vmm::snapshot
