// Status and Expected<T>: how every failure caused by the outside world (files,
// flags, requests) travels back to the caller. The library never aborts or
// exits because of bad input; broken internal invariants use OSPREY_CHECK.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace osprey {

enum class ErrorCode {
  kOk = 0,
  kInvalidArgument,  // a flag, parameter or request field is wrong
  kCorruptFile,      // a model file violates its format
  kUnsupported,      // valid, but something osprey does not implement
  kIo,               // the operating system refused (open, mmap, write)
  kOutOfRange,       // e.g. a prompt longer than the context
  kInternal,
};

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return {}; }
  bool ok() const { return code_ == ErrorCode::kOk; }
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  ErrorCode code_ = ErrorCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {ErrorCode::kInvalidArgument, std::move(m)}; }
inline Status CorruptFile(std::string m) { return {ErrorCode::kCorruptFile, std::move(m)}; }
inline Status Unsupported(std::string m) { return {ErrorCode::kUnsupported, std::move(m)}; }
inline Status IoError(std::string m) { return {ErrorCode::kIo, std::move(m)}; }
inline Status OutOfRange(std::string m) { return {ErrorCode::kOutOfRange, std::move(m)}; }

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}
  Expected(Status status) : v_(std::move(status)) {
    if (std::get<Status>(v_).ok()) v_ = Status(ErrorCode::kInternal, "Expected built from an ok Status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace osprey

#define OSPREY_CONCAT_INNER(a, b) a##b
#define OSPREY_CONCAT(a, b) OSPREY_CONCAT_INNER(a, b)

// Returns early from the enclosing function if `expr` is a failed Status.
#define OSPREY_TRY(expr)                            \
  do {                                              \
    ::osprey::Status osprey_status_ = (expr);       \
    if (!osprey_status_.ok()) return osprey_status_; \
  } while (0)

// `lhs = value of expr`, or return its Status from the enclosing function.
#define OSPREY_ASSIGN_OR_RETURN(lhs, expr) \
  OSPREY_ASSIGN_OR_RETURN_IMPL(OSPREY_CONCAT(osprey_expected_, __LINE__), lhs, expr)
#define OSPREY_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()

// A broken internal invariant: not the user's fault, so stop at once with file and line.
#define OSPREY_CHECK(cond)                                                               \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::fprintf(stderr, "osprey: internal check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                      \
    }                                                                                    \
  } while (0)
