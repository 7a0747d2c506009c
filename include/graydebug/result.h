#pragma once

#include <utility>
#include <variant>

#include "graydebug/kube/api_error.h"

namespace graydebug {

// A value or a Kubernetes API error: what crosses the client's boundary instead of exceptions.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}               // NOLINT(google-explicit-constructor)
  Result(kube::ApiError error) : v_(std::move(error)) {}  // NOLINT(google-explicit-constructor)

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  // Precondition: ok().
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  const T* operator->() const { return &value(); }
  // The error; a default (kind kNone) error when ok().
  const kube::ApiError& error() const {
    static const kube::ApiError kNone;
    return ok() ? kNone : std::get<kube::ApiError>(v_);
  }

 private:
  std::variant<T, kube::ApiError> v_;
};

}  // namespace graydebug
