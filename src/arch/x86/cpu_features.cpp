// The feature-name table (Intel SDM Vol. 2A CPUID, Tables 3-10, 3-11, 3-8; AMD APM Vol. 3
// Appendix E) and --cpu-features parsing.
#include "arch/x86/cpu_features.hpp"

#include <algorithm>
#include <cctype>

namespace vireo::arch::x86 {
namespace {

using enum CpuidReg;

constexpr uint32_t kExt = 0x8000'0001;

constexpr CpuFeature kFeatures[] = {
    // Leaf 1 EDX
    {"fpu", 1, 0, kEdx, 0},
    {"vme", 1, 0, kEdx, 1},
    {"de", 1, 0, kEdx, 2},
    {"pse", 1, 0, kEdx, 3},
    {"tsc", 1, 0, kEdx, 4},
    {"msr", 1, 0, kEdx, 5},
    {"pae", 1, 0, kEdx, 6},
    {"mce", 1, 0, kEdx, 7},
    {"cx8", 1, 0, kEdx, 8},
    {"apic", 1, 0, kEdx, 9},
    {"sep", 1, 0, kEdx, 11},
    {"mtrr", 1, 0, kEdx, 12},
    {"pge", 1, 0, kEdx, 13},
    {"mca", 1, 0, kEdx, 14},
    {"cmov", 1, 0, kEdx, 15},
    {"pat", 1, 0, kEdx, 16},
    {"pse36", 1, 0, kEdx, 17},
    {"pn", 1, 0, kEdx, 18},
    {"clflush", 1, 0, kEdx, 19},
    {"ds", 1, 0, kEdx, 21},
    {"acpi", 1, 0, kEdx, 22},
    {"mmx", 1, 0, kEdx, 23},
    {"fxsr", 1, 0, kEdx, 24},
    {"sse", 1, 0, kEdx, 25},
    {"sse2", 1, 0, kEdx, 26},
    {"ss", 1, 0, kEdx, 27},
    {"ht", 1, 0, kEdx, 28},
    {"tm", 1, 0, kEdx, 29},
    {"ia64", 1, 0, kEdx, 30},
    {"pbe", 1, 0, kEdx, 31},
    // Leaf 1 ECX
    {"pni", 1, 0, kEcx, 0},
    {"pclmulqdq", 1, 0, kEcx, 1},
    {"dtes64", 1, 0, kEcx, 2},
    {"monitor", 1, 0, kEcx, 3},
    {"ds_cpl", 1, 0, kEcx, 4},
    {"vmx", 1, 0, kEcx, 5},
    {"smx", 1, 0, kEcx, 6},
    {"est", 1, 0, kEcx, 7},
    {"tm2", 1, 0, kEcx, 8},
    {"ssse3", 1, 0, kEcx, 9},
    {"cid", 1, 0, kEcx, 10},
    {"sdbg", 1, 0, kEcx, 11},
    {"fma", 1, 0, kEcx, 12},
    {"cx16", 1, 0, kEcx, 13},
    {"xtpr", 1, 0, kEcx, 14},
    {"pdcm", 1, 0, kEcx, 15},
    {"pcid", 1, 0, kEcx, 17},
    {"dca", 1, 0, kEcx, 18},
    {"sse4_1", 1, 0, kEcx, 19},
    {"sse4_2", 1, 0, kEcx, 20},
    {"x2apic", 1, 0, kEcx, 21},
    {"movbe", 1, 0, kEcx, 22},
    {"popcnt", 1, 0, kEcx, 23},
    {"tsc_deadline_timer", 1, 0, kEcx, 24},
    {"aes", 1, 0, kEcx, 25},
    {"xsave", 1, 0, kEcx, 26},
    {"osxsave", 1, 0, kEcx, 27},
    {"avx", 1, 0, kEcx, 28},
    {"f16c", 1, 0, kEcx, 29},
    {"rdrand", 1, 0, kEcx, 30},
    {"hypervisor", 1, 0, kEcx, 31},
    // Leaf 7 subleaf 0 EBX
    {"fsgsbase", 7, 0, kEbx, 0},
    {"tsc_adjust", 7, 0, kEbx, 1},
    {"sgx", 7, 0, kEbx, 2},
    {"bmi1", 7, 0, kEbx, 3},
    {"hle", 7, 0, kEbx, 4},
    {"avx2", 7, 0, kEbx, 5},
    {"fdp_excptn_only", 7, 0, kEbx, 6},
    {"smep", 7, 0, kEbx, 7},
    {"bmi2", 7, 0, kEbx, 8},
    {"erms", 7, 0, kEbx, 9},
    {"invpcid", 7, 0, kEbx, 10},
    {"rtm", 7, 0, kEbx, 11},
    {"cqm", 7, 0, kEbx, 12},
    {"zero_fcs_fds", 7, 0, kEbx, 13},
    {"mpx", 7, 0, kEbx, 14},
    {"rdt_a", 7, 0, kEbx, 15},
    {"avx512f", 7, 0, kEbx, 16},
    {"avx512dq", 7, 0, kEbx, 17},
    {"rdseed", 7, 0, kEbx, 18},
    {"adx", 7, 0, kEbx, 19},
    {"smap", 7, 0, kEbx, 20},
    {"avx512ifma", 7, 0, kEbx, 21},
    {"pcommit", 7, 0, kEbx, 22},
    {"clflushopt", 7, 0, kEbx, 23},
    {"clwb", 7, 0, kEbx, 24},
    {"intel_pt", 7, 0, kEbx, 25},
    {"avx512pf", 7, 0, kEbx, 26},
    {"avx512er", 7, 0, kEbx, 27},
    {"avx512cd", 7, 0, kEbx, 28},
    {"sha_ni", 7, 0, kEbx, 29},
    {"avx512bw", 7, 0, kEbx, 30},
    {"avx512vl", 7, 0, kEbx, 31},
    // Leaf 7 subleaf 0 ECX
    {"prefetchwt1", 7, 0, kEcx, 0},
    {"avx512vbmi", 7, 0, kEcx, 1},
    {"umip", 7, 0, kEcx, 2},
    {"pku", 7, 0, kEcx, 3},
    {"ospke", 7, 0, kEcx, 4},
    {"waitpkg", 7, 0, kEcx, 5},
    {"avx512_vbmi2", 7, 0, kEcx, 6},
    {"shstk", 7, 0, kEcx, 7},
    {"gfni", 7, 0, kEcx, 8},
    {"vaes", 7, 0, kEcx, 9},
    {"vpclmulqdq", 7, 0, kEcx, 10},
    {"avx512_vnni", 7, 0, kEcx, 11},
    {"avx512_bitalg", 7, 0, kEcx, 12},
    {"tme", 7, 0, kEcx, 13},
    {"avx512_vpopcntdq", 7, 0, kEcx, 14},
    {"la57", 7, 0, kEcx, 16},
    {"rdpid", 7, 0, kEcx, 22},
    {"bus_lock_detect", 7, 0, kEcx, 24},
    {"cldemote", 7, 0, kEcx, 25},
    {"movdiri", 7, 0, kEcx, 27},
    {"movdir64b", 7, 0, kEcx, 28},
    {"enqcmd", 7, 0, kEcx, 29},
    {"sgx_lc", 7, 0, kEcx, 30},
    {"pks", 7, 0, kEcx, 31},
    // Leaf 7 subleaf 0 EDX
    {"avx512_4vnniw", 7, 0, kEdx, 2},
    {"avx512_4fmaps", 7, 0, kEdx, 3},
    {"fsrm", 7, 0, kEdx, 4},
    {"avx512_vp2intersect", 7, 0, kEdx, 8},
    {"srbds_ctrl", 7, 0, kEdx, 9},
    {"md_clear", 7, 0, kEdx, 10},
    {"serialize", 7, 0, kEdx, 14},
    {"tsxldtrk", 7, 0, kEdx, 16},
    {"pconfig", 7, 0, kEdx, 18},
    {"arch_lbr", 7, 0, kEdx, 19},
    {"ibt", 7, 0, kEdx, 20},
    {"amx_bf16", 7, 0, kEdx, 22},
    {"avx512_fp16", 7, 0, kEdx, 23},
    {"amx_tile", 7, 0, kEdx, 24},
    {"amx_int8", 7, 0, kEdx, 25},
    {"spec_ctrl", 7, 0, kEdx, 26},
    {"stibp", 7, 0, kEdx, 27},
    {"flush_l1d", 7, 0, kEdx, 28},
    {"arch_capabilities", 7, 0, kEdx, 29},
    {"core_capabilities", 7, 0, kEdx, 30},
    {"ssbd", 7, 0, kEdx, 31},
    // Leaf 0x80000001 ECX
    {"lahf_lm", kExt, 0, kEcx, 0},
    {"cmp_legacy", kExt, 0, kEcx, 1},
    {"svm", kExt, 0, kEcx, 2},
    {"extapic", kExt, 0, kEcx, 3},
    {"cr8_legacy", kExt, 0, kEcx, 4},
    {"abm", kExt, 0, kEcx, 5},
    {"sse4a", kExt, 0, kEcx, 6},
    {"misalignsse", kExt, 0, kEcx, 7},
    {"3dnowprefetch", kExt, 0, kEcx, 8},
    {"osvw", kExt, 0, kEcx, 9},
    {"ibs", kExt, 0, kEcx, 10},
    {"xop", kExt, 0, kEcx, 11},
    {"skinit", kExt, 0, kEcx, 12},
    {"wdt", kExt, 0, kEcx, 13},
    {"lwp", kExt, 0, kEcx, 15},
    {"fma4", kExt, 0, kEcx, 16},
    {"tce", kExt, 0, kEcx, 17},
    {"nodeid_msr", kExt, 0, kEcx, 19},
    {"tbm", kExt, 0, kEcx, 21},
    {"topoext", kExt, 0, kEcx, 22},
    {"perfctr_core", kExt, 0, kEcx, 23},
    {"perfctr_nb", kExt, 0, kEcx, 24},
    {"bpext", kExt, 0, kEcx, 26},
    {"ptsc", kExt, 0, kEcx, 27},
    {"perfctr_llc", kExt, 0, kEcx, 28},
    {"mwaitx", kExt, 0, kEcx, 29},
    // Leaf 0x80000001 EDX
    {"syscall", kExt, 0, kEdx, 11},
    {"nx", kExt, 0, kEdx, 20},
    {"mmxext", kExt, 0, kEdx, 22},
    {"fxsr_opt", kExt, 0, kEdx, 25},
    {"pdpe1gb", kExt, 0, kEdx, 26},
    {"rdtscp", kExt, 0, kEdx, 27},
    {"lm", kExt, 0, kEdx, 29},
    {"3dnowext", kExt, 0, kEdx, 30},
    {"3dnow", kExt, 0, kEdx, 31},
};

struct Alias {
    const char* alias;
    const char* name;
};
constexpr Alias kAliases[] = {
    {"sse3", "pni"},
    {"tsc_deadline", "tsc_deadline_timer"},
    {"sha", "sha_ni"},
    {"lahf", "lahf_lm"},
    {"ssse3", "ssse3"},
    {"i64", "lm"},
    {"spec_ctrl_ssbd", "ssbd"},
    {"intel_stibp", "stibp"},
    {"ibrs", "spec_ctrl"},
};

// What hiding a feature takes with it (Linux arch/x86/kernel/cpu/cpuid-deps.c has the same shape).
struct Dependency {
    const char* feature;
    const char* depends_on;
};
constexpr Dependency kDependencies[] = {
    {"avx", "xsave"},
    {"fma", "avx"},
    {"f16c", "avx"},
    {"avx2", "avx"},
    {"avx512f", "avx"},
    {"vaes", "avx"},
    {"vpclmulqdq", "avx"},
    {"pku", "xsave"},
    {"avx512dq", "avx512f"},
    {"avx512ifma", "avx512f"},
    {"avx512pf", "avx512f"},
    {"avx512er", "avx512f"},
    {"avx512cd", "avx512f"},
    {"avx512bw", "avx512f"},
    {"avx512vl", "avx512f"},
    {"avx512vbmi", "avx512f"},
    {"avx512_vbmi2", "avx512f"},
    {"avx512_vnni", "avx512f"},
    {"avx512_bitalg", "avx512f"},
    {"avx512_vpopcntdq", "avx512f"},
    {"avx512_4vnniw", "avx512f"},
    {"avx512_4fmaps", "avx512f"},
    {"avx512_vp2intersect", "avx512f"},
    {"avx512_fp16", "avx512bw"},
    {"amx_tile", "xsave"},
    {"amx_bf16", "amx_tile"},
    {"amx_int8", "amx_tile"},
    {"x2apic", "apic"},
    {"tsc_deadline_timer", "apic"},
    {"shstk", "xsave"},
    {"ibt", "xsave"},
    {"xop", "avx"},
    {"fma4", "avx"},
};

std::string normalize(std::string_view name) {
    std::string out;
    out.reserve(name.size());
    for (char c : name) {
        if (c == '-' || c == '.') c = '_';
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
}

}  // namespace

std::span<const CpuFeature> cpu_feature_table() {
    return kFeatures;
}

const CpuFeature* find_cpu_feature(std::string_view name) {
    std::string n = normalize(name);
    for (const Alias& a : kAliases) {
        if (n == a.alias) {
            n = a.name;
            break;
        }
    }
    for (const CpuFeature& f : kFeatures) {
        if (n == f.name) return &f;
    }
    return nullptr;
}

std::vector<const CpuFeature*> dependent_features(const CpuFeature& feature) {
    std::vector<const CpuFeature*> out;
    std::vector<std::string_view> pending = {feature.name};
    while (!pending.empty()) {
        std::string_view current = pending.back();
        pending.pop_back();
        for (const Dependency& d : kDependencies) {
            if (current != d.depends_on) continue;
            const CpuFeature* dep = find_cpu_feature(d.feature);
            if (dep == nullptr || std::find(out.begin(), out.end(), dep) != out.end()) continue;
            out.push_back(dep);
            pending.push_back(dep->name);
        }
    }
    return out;
}

Result<std::vector<CpuFeatureChange>> parse_cpu_features(std::string_view list) {
    std::vector<CpuFeatureChange> changes;
    size_t pos = 0;
    while (pos <= list.size()) {
        size_t comma = list.find(',', pos);
        if (comma == std::string_view::npos) comma = list.size();
        std::string_view item = list.substr(pos, comma - pos);
        while (!item.empty() && item.front() == ' ')
            item.remove_prefix(1);
        while (!item.empty() && item.back() == ' ')
            item.remove_suffix(1);
        pos = comma + 1;
        if (item.empty()) {
            if (comma == list.size()) break;
            return make_error("--cpu-features: empty item in '{}'", list);
        }
        bool enable = true;
        if (item.front() == '-' || item.front() == '+') {
            enable = item.front() == '+';
            item.remove_prefix(1);
        } else if (size_t eq = item.find('='); eq != std::string_view::npos) {
            // QEMU's newer spelling: name=on|off.
            std::string_view value = item.substr(eq + 1);
            if (value != "on" && value != "off")
                return make_error("--cpu-features: '{}': the value after '=' must be on or off", item);
            enable = value == "on";
            item = item.substr(0, eq);
        }
        const CpuFeature* f = find_cpu_feature(item);
        if (f == nullptr) {
            return make_error(
                "--cpu-features: unknown CPU feature '{}' (names as in /proc/cpuinfo or QEMU's -cpu "
                "flags, e.g. -xsave,-cx16; `vireo-vmm --list-cpu-features` lists them)",
                item);
        }
        changes.push_back({f, enable});
    }
    return changes;
}

}  // namespace vireo::arch::x86
