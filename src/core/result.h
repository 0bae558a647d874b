// Errors as values.
//
// Every fallible call in cellguard returns Result<T>: either a T or an Error that names what failed
// (a stable code for programs) and where and why (a message for people). Errors cross subsystem
// boundaries this way instead of as exceptions, so callers see in the type that a call can fail.
//
// Thread safety: plain values; safe to move between threads.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace cellguard {

// What went wrong, in broad classes a caller may branch on.
enum class ErrorCode {
  invalid_argument,  // the caller passed something unusable
  parse_error,       // malformed external input (a DBC file, a log line, a packet)
  decode_error,      // a frame does not fit its message (too short, invalid multiplexer value)
  io_error,          // the operating system refused (open, read, write)
  not_found,         // a named thing does not exist
  unsupported,       // valid input we do not handle
  end_of_input,      // a stream has no more items (not a failure)
};

std::string_view to_string(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::invalid_argument;
  std::string message;  // full sentence with location, e.g. "rig.dbc:12:5: expected ':'"

  Error() = default;
  Error(ErrorCode c, std::string m) : code(c), message(std::move(m)) {}
};

// Either a value or an Error. Access to the wrong alternative is a programming error (asserted).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : state_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return state_.index() == 0; }
  explicit operator bool() const { return ok(); }

  T& value() & {
    assert(ok());
    return std::get<0>(state_);
  }
  const T& value() const& {
    assert(ok());
    return std::get<0>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<0>(std::move(state_));
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  const Error& error() const {
    assert(!ok());
    return std::get<1>(state_);
  }

 private:
  std::variant<T, Error> state_;
};

// Result of an operation that yields nothing but may fail.
template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT

  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    assert(!ok_);
    return error_;
  }

 private:
  Error error_;
  bool ok_ = true;
};

inline Result<void> success() { return {}; }

}  // namespace cellguard
