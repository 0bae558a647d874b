// Private to src/dbc: the rule that gives a simple-multiplexed signal ("mN") its multiplexer when
// no SG_MUL_VAL_ names one. The parser applies it and the writer relies on it to decide where an
// SG_MUL_VAL_ line is needed, so both must use this one definition.
#pragma once

#include <string_view>

#include "dbc/dbc.h"

namespace cellguard::dbc::detail {

// The message's simple multiplexer, as the reference decoder (cantools) decides it: the one signal
// flagged "M" or "mNM"; none if the message has no such signal or several (then only SG_MUL_VAL_
// lines give signals a multiplexer, and "mN" signals without one are plain signals).
inline std::string_view simple_multiplexer_name(const Message& message) {
  const Signal* found = nullptr;
  for (const auto& s : message.signals) {
    if (!s.is_multiplexer) continue;
    if (found != nullptr) return {};
    found = &s;
  }
  return found != nullptr ? std::string_view(found->name) : std::string_view();
}

}  // namespace cellguard::dbc::detail
