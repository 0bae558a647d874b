// Building one frame from "signal=value" assignments, as `cellguard encode` takes them.
//
// The reverse of decoding, with the checks a person typing values needs: every name must be a signal
// of the message (with a did-you-mean for typos), every value must fit the signal's raw bits and,
// unless told otherwise, its DBC range [minimum|maximum]; a multiplexed message needs the value of
// each multiplexer that selects signals, and a signal may only be given when its multiplexer
// selects it. Values are numbers (decimal, with exponent, or 0x hex for integer signals), value-table
// texts ("Mode=Charging"), or nan/inf/-inf for float signals. Integer signals with integral scale and
// offset are encoded exactly (64-bit values included); others are rounded to the nearest raw value
// (half to even, as the reference decoder's encoder does). Signals not given get raw 0, or their
// GenSigStartValue if the DBC defines one.
//
// Errors name the assignment (its position among the arguments and its text) and the cause.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "core/result.h"
#include "dbc/codec.h"

namespace cellguard::dbc {

struct EncodeOptions {
  bool check_limits = true;  // reject values outside the signal's [minimum|maximum] (unless [0|0])
};

struct EncodedFrame {
  std::uint32_t id = 0;
  bool extended = false;
  bool fd = false;  // the DBC marks the message as CAN FD
  std::vector<std::uint8_t> payload;
  std::vector<std::string> defaulted;  // active signals that were not given (raw 0 or start value)
};

// `assignments` are "NAME=VALUE" texts; `first_argument` is the number shown for the first one in
// errors ("argument 3 'X=1': ...").
Result<EncodedFrame> encode_assignments(const Database& db, const MessageCodec& message,
                                        std::span<const std::string> assignments,
                                        const EncodeOptions& options = {}, int first_argument = 1);

// The message a name or id ("BMU01_pdo1", "0x181", "385"; ids above 0x7FF are extended) selects; an
// error with a did-you-mean if there is none.
Result<const MessageCodec*> find_message_for_encoding(const DatabaseCodec& codec,
                                                      std::string_view name_or_id);

}  // namespace cellguard::dbc
