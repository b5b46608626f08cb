// Test helpers that run ACPICA's iasl (package acpica-tools) in a scratch directory.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

namespace vireo::testing {

inline bool have_iasl() {
    return std::system("command -v iasl >/dev/null 2>&1") == 0;
}

// A temporary directory removed when the object goes away.
class ScratchDir {
  public:
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "vireo-acpi-XXXXXX").string();
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (mkdtemp(buf.data()) != nullptr) m_path = buf.data();
    }
    ~ScratchDir() {
        std::error_code ec;
        if (!m_path.empty()) std::filesystem::remove_all(m_path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    const std::filesystem::path& path() const { return m_path; }

    void write(const std::string& name, const std::vector<uint8_t>& bytes) const {
        std::ofstream out(m_path / name, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    void write_text(const std::string& name, const std::string& text) const {
        std::ofstream out(m_path / name);
        out << text;
    }
    std::optional<std::string> read_text(const std::string& name) const {
        std::ifstream in(m_path / name, std::ios::binary);
        if (!in) return std::nullopt;
        return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    }
    std::optional<std::vector<uint8_t>> read_bytes(const std::string& name) const {
        auto text = read_text(name);
        if (!text) return std::nullopt;
        return std::vector<uint8_t>(text->begin(), text->end());
    }

  private:
    std::filesystem::path m_path;
};

struct CommandResult {
    int status = -1;
    std::string output;  // stdout and stderr
};

// Runs `iasl ARGS` inside `dir`.
inline CommandResult run_iasl(const ScratchDir& dir, const std::string& args) {
    std::string cmd = "cd '" + dir.path().string() + "' && iasl " + args + " > iasl.log 2>&1";
    CommandResult r;
    int raw = std::system(cmd.c_str());
    r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
    r.output = dir.read_text("iasl.log").value_or("");
    return r;
}

}  // namespace vireo::testing
