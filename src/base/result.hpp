// Result<T>: the value or the Error of anything that can fail with outside data or the OS.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace vireo {

// An error names the object and the cause ("disk.vhd: BAT entry 17 points past end of file ...").
// os_error() keeps the errno value when the cause came from the OS, 0 otherwise.
class Error {
  public:
    explicit Error(std::string message, int os_error = 0)
        : m_message(std::move(message)), m_os_error(os_error) {}

    const std::string& message() const { return m_message; }
    int os_error() const { return m_os_error; }

    // Prefixes the message with where it happened: "open /x.vhd: " + message.
    Error context(std::string_view where) const& {
        return Error(fmt::format("{}: {}", where, m_message), m_os_error);
    }
    Error context(std::string_view where) && {
        m_message = fmt::format("{}: {}", where, m_message);
        return std::move(*this);
    }

  private:
    std::string m_message;
    int m_os_error;
};

template <typename... Args>
[[nodiscard]] Error make_error(fmt::format_string<Args...> format, Args&&... args) {
    return Error(fmt::format(format, std::forward<Args>(args)...));
}

// "what: strerror(err)", keeping err.
[[nodiscard]] inline Error os_error(std::string_view what, int err = errno) {
    return Error(fmt::format("{}: {}", what, std::strerror(err)), err);
}

template <typename T>
class [[nodiscard]] Result {
  public:
    using value_type = T;

    Result(const T& value) : m_storage(std::in_place_index<0>, value) {}
    Result(T&& value) : m_storage(std::in_place_index<0>, std::move(value)) {}
    template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, T> &&
             !std::is_same_v<std::remove_cvref_t<U>, Error> &&
             !std::is_same_v<std::remove_cvref_t<U>, Result>) Result(U&& value)
        : m_storage(std::in_place_index<0>, std::forward<U>(value)) {}
    Result(Error error) : m_storage(std::in_place_index<1>, std::move(error)) {}

    bool ok() const { return m_storage.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(m_storage); }
    const T& value() const& { return std::get<0>(m_storage); }
    T&& value() && { return std::get<0>(std::move(m_storage)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T&& operator*() && { return std::move(*this).value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    const Error& error() const& { return std::get<1>(m_storage); }
    Error&& error() && { return std::get<1>(std::move(m_storage)); }

    T value_or(T fallback) const& { return ok() ? value() : std::move(fallback); }

  private:
    std::variant<T, Error> m_storage;
};

template <>
class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : m_error(std::move(error)), m_failed(true) {}

    bool ok() const { return !m_failed; }
    explicit operator bool() const { return ok(); }
    void value() const {}
    const Error& error() const& { return m_error; }
    Error&& error() && { return std::move(m_error); }

  private:
    Error m_error{std::string()};
    bool m_failed = false;
};

using Status = Result<void>;

inline Status ok_status() {
    return {};
}

}  // namespace vireo

#define VIREO_CONCAT_INNER(a, b) a##b
#define VIREO_CONCAT(a, b) VIREO_CONCAT_INNER(a, b)

// Returns the error of a failed Result/Status from the enclosing function.
#define VIREO_TRY(expr)                                  \
    do {                                                 \
        auto vireo_try_result_ = (expr);                 \
        if (!vireo_try_result_.ok()) [[unlikely]]        \
            return std::move(vireo_try_result_).error(); \
    } while (0)

// Like VIREO_TRY but prefixes the error with a context string.
#define VIREO_TRY_CTX(expr, ctx)                                      \
    do {                                                              \
        auto vireo_try_result_ = (expr);                              \
        if (!vireo_try_result_.ok()) [[unlikely]]                     \
            return std::move(vireo_try_result_).error().context(ctx); \
    } while (0)

// `VIREO_ASSIGN_OR_RETURN(auto x, f());` declares x from the value or returns the error.
#define VIREO_ASSIGN_OR_RETURN(lhs, expr) \
    VIREO_ASSIGN_OR_RETURN_IMPL(VIREO_CONCAT(vireo_aor_, __LINE__), lhs, expr)
#define VIREO_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
    auto tmp = (expr);                              \
    if (!tmp.ok()) [[unlikely]]                     \
        return std::move(tmp).error();              \
    lhs = std::move(tmp).value()
