// The internal error type: every failure carries a human-readable reason, and the public API maps it to a
// Godot-style error code plus PeerConnection::lastError(). Nothing in rtcpeer throws across its API.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace rtcpeer {

/// Why something failed. `code` is free for layers to use (e.g. a STUN error code); 0 means unspecified.
struct Failure {
  std::string reason;
  int code = 0;
};

inline Failure fail(std::string reason, int code = 0) { return Failure{std::move(reason), code}; }

/// Success, or a Failure with a reason.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Failure f) : failure_(std::move(f)), failed_(true) {}  // NOLINT: implicit by design

  [[nodiscard]] bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }
  [[nodiscard]] const std::string& reason() const noexcept { return failure_.reason; }
  [[nodiscard]] const Failure& failure() const noexcept { return failure_; }

 private:
  Failure failure_{};
  bool failed_ = false;
};

inline Status okStatus() { return Status(); }

/// A value or a Failure.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Failure failure) : v_(std::move(failure)) {}  // NOLINT: implicit by design

  [[nodiscard]] bool ok() const noexcept { return v_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(v_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  [[nodiscard]] const Failure& failure() const {
    assert(!ok());
    return std::get<1>(v_);
  }
  [[nodiscard]] const std::string& reason() const { return failure().reason; }
  [[nodiscard]] Status status() const { return ok() ? Status() : Status(failure()); }

 private:
  std::variant<T, Failure> v_;
};

}  // namespace rtcpeer
