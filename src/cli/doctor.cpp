// `vireo doctor` rendering and command.
#include "cli/doctor.hpp"

#include <cstdio>

#include <fmt/format.h>

#include "cli/command.hpp"

namespace vireo::cli {

nlohmann::json doctor_json(const kvm::HostReport& r) {
    nlohmann::json caps = nlohmann::json::object();
    for (const auto& c : r.capabilities)
        caps[c.name] = c.usable;
    nlohmann::json kvm = {
        {"device", r.kvm_device},
        {"present", r.kvm_present},
        {"openable", r.kvm_openable},
        {"error", r.kvm_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.kvm_error)},
        {"api_version", r.kvm_openable ? nlohmann::json(r.api_version) : nlohmann::json(nullptr)},
        {"capabilities", caps},
        {"acceleration", r.acceleration},
        {"ns_per_instruction",
         r.ns_per_instruction ? nlohmann::json(*r.ns_per_instruction) : nlohmann::json(nullptr)},
        {"emulated_threshold_ns", kvm::kEmulatedThresholdNs},
    };
    if (!r.speed_error.empty()) kvm["speed_error"] = r.speed_error;
    nlohmann::json out = {{"kvm", kvm}};
    for (const auto& c : r.host)
        out[c.name] = {{"usable", c.usable}, {"detail", c.detail}};
    out["vmm_ready"] = r.vmm_ready();
    out["advice"] = r.advice;
    return out;
}

std::string doctor_text(const kvm::HostReport& r) {
    std::string out = "Vireo host report\n\nKVM\n";
    auto line = [&out](std::string_view key, std::string_view value) {
        out += fmt::format("  {:<16}{}\n", key, value);
    };
    if (!r.kvm_present) {
        line("device", fmt::format("{}: missing", r.kvm_device));
    } else if (!r.kvm_openable) {
        line("device", fmt::format("{}: present, cannot open", r.kvm_device));
    } else {
        line("device", fmt::format("{}: present, openable", r.kvm_device));
        line("API version", std::to_string(r.api_version));
        for (const auto& c : r.capabilities)
            line(c.name, c.usable ? "yes" : "no");
        if (r.ns_per_instruction) {
            line("acceleration",
                 fmt::format("{} ({:.1f} ns per guest instruction; above {:.0f} ns is emulated)",
                             r.acceleration, *r.ns_per_instruction, kvm::kEmulatedThresholdNs));
        } else {
            line("acceleration",
                 fmt::format("unknown ({})", r.speed_error.empty() ? "not measured" : r.speed_error));
        }
    }
    out += "\nHost\n";
    for (const auto& c : r.host)
        line(c.name, fmt::format("{}  {}", c.usable ? "yes" : "no ", c.detail));
    if (!r.advice.empty()) {
        out += "\nAdvice\n";
        for (const auto& a : r.advice)
            out += fmt::format("  - {}\n", a);
    }
    out += "\n";
    if (!r.vmm_ready()) {
        out += "Verdict: this host cannot run Vireo VMs yet (see above)\n";
    } else if (r.acceleration == "emulated") {
        out += "Verdict: VMs can run, but KVM is emulated here: guests run about a thousand times slower\n";
    } else {
        out += "Verdict: ready to run VMs\n";
    }
    return out;
}

void register_doctor(CLI::App& app, Context& ctx) {
    auto* cmd =
        app.add_subcommand("doctor", "Report what this host offers Vireo (read this before filing a bug)");
    auto json = std::make_shared<bool>(false);
    auto options = std::make_shared<kvm::ProbeOptions>();
    cmd->add_flag("--json", *json, "Print the report as JSON");
    cmd->add_option("--kvm-device", options->kvm_device, "KVM device to probe")->capture_default_str();
    cmd->add_flag(
        "--no-speed", [options](int64_t) { options->measure_speed = false; },
        "Skip the guest speed measurement");
    cmd->callback([&ctx, json, options] {
        kvm::HostReport report = kvm::probe_host(*options);
        if (*json) {
            std::fputs((doctor_json(report).dump(2) + "\n").c_str(), stdout);
        } else {
            std::fputs(doctor_text(report).c_str(), stdout);
        }
        ctx.exit_code = report.vmm_ready() ? 0 : 1;
    });
}

}  // namespace vireo::cli
