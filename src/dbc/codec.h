// Decoding and encoding CAN payloads with a Database.
//
// A DatabaseCodec compiles every message once into an extraction plan (per signal: the bytes to
// read, shifts and masks chosen for its byte order, sign and float kind; per multiplexer branch:
// which signals are active). Decoding then does no lookups and no allocation: it writes into
// buffers the caller preallocates, indexed like Message::signals.
//
// Semantics follow the field's reference decoder (cantools), see shared/corpus/dbc/README.md:
//  - physical = raw * scale + offset; for integer signals whose scale and offset are integral the
//    result is an exact integer (PhysicalValue::is_integer), else a double;
//  - float32/float64 signals (SIG_VALTYPE_) give the IEEE value, then scale/offset;
//  - a multiplexed signal is decoded only when its multiplexer (itself decoded, recursively) holds
//    one of its values; a multiplexer value that selects nothing fails the whole frame;
//  - a payload shorter than the message fails; bytes beyond the message length are ignored.
//
// Thread safety: a compiled codec is immutable; any number of threads may decode concurrently.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "dbc/dbc.h"

namespace cellguard::dbc {

__extension__ using Int128 = __int128;

// A decoded physical value, exactly as the reference decoder gives it.
struct PhysicalValue {
  bool is_integer = false;
  Int128 integer = 0;  // valid if is_integer
  double real = 0;     // valid if !is_integer
  double as_double() const { return is_integer ? static_cast<double>(integer) : real; }
};

enum class DecodeStatus : std::uint8_t {
  ok,
  too_short,            // payload shorter than the message length
  invalid_multiplexer,  // a multiplexer holds a value that selects no branch
};

// One bit per signal, indexed like Message::signals: set if the signal was decoded (it is
// unmultiplexed, or its multiplexer selected it).
class PresenceMask {
 public:
  explicit PresenceMask(std::size_t signals = 0) : words_((signals + 63) / 64, 0) {}
  void resize(std::size_t signals) { words_.assign((signals + 63) / 64, 0); }
  bool test(std::size_t i) const { return (words_[i / 64] >> (i % 64)) & 1u; }
  std::uint64_t* words() { return words_.data(); }
  const std::uint64_t* words() const { return words_.data(); }

 private:
  std::vector<std::uint64_t> words_;
};

class MessageCodec {
 public:
  const Message& message() const { return *message_; }
  std::size_t signal_count() const;

  // Hot path. Decodes every active signal to its physical value as a double into out[i]
  // (out has signal_count() elements); inactive signals are left untouched and their bit cleared.
  DecodeStatus decode(std::span<const std::uint8_t> payload, double* out, PresenceMask& present) const;

  // Exact decoding: integers stay integers (may exceed 64 bits), as the reference gives them.
  DecodeStatus decode_exact(std::span<const std::uint8_t> payload, PhysicalValue* out,
                            PresenceMask& present) const;

  // Raw values: the signal's bits as an integer (sign-extended for signed signals, stored in the
  // two's complement bits of the uint64), float signals as their IEEE bit pattern.
  DecodeStatus decode_raw(std::span<const std::uint8_t> payload, std::uint64_t* raw,
                          PresenceMask& present) const;

  // Encodes the raw values of the signals marked in `present` into `payload` (at least the message
  // length); bits no encoded signal covers are left as they are.
  Result<void> encode_raw(const std::uint64_t* raw, const PresenceMask& present,
                          std::span<std::uint8_t> payload) const;
  // Encodes physical values (inverse scaling, rounded to the nearest raw value, clamped to the
  // signal's bit range) of the signals marked in `present`.
  Result<void> encode(const double* physical, const PresenceMask& present,
                      std::span<std::uint8_t> payload) const;

  // The value-table text for a signal's raw value, or empty if it has none.
  std::string_view choice(std::size_t signal_index, std::int64_t raw) const;

  // A sentence for a failed decode, e.g. "payload has 6 bytes, BMU01_pdo1 needs 8".
  std::string describe(DecodeStatus status, std::span<const std::uint8_t> payload) const;

  struct Plan;  // compiled extraction plan, private to codec.cpp
  MessageCodec(const Message& message, std::shared_ptr<const Plan> plan)
      : message_(&message), plan_(std::move(plan)) {}

 private:
  const Message* message_;
  std::shared_ptr<const Plan> plan_;
};

class DatabaseCodec {
 public:
  // Compiles every message of `db`; the codec owns its copy of the database.
  explicit DatabaseCodec(Database db);
  DatabaseCodec(const DatabaseCodec&) = delete;
  DatabaseCodec& operator=(const DatabaseCodec&) = delete;

  const Database& database() const { return db_; }
  // The codec for frames with this id (the last message defined with it), or nullptr.
  const MessageCodec* find(std::uint32_t id, bool extended) const;
  const MessageCodec* find(std::string_view message_name) const;

 private:
  Database db_;
  std::vector<MessageCodec> codecs_;  // parallel to db_.messages
  struct Index;
  std::shared_ptr<const Index> index_;
};

}  // namespace cellguard::dbc
