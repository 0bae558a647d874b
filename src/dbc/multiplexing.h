// Private to src/dbc: the rule that gives a simple-multiplexed signal ("mN") its multiplexer when
// no SG_MUL_VAL_ names one. The parser applies it and the writer relies on it to decide where an
// SG_MUL_VAL_ line is needed, so both must use this one definition.
#pragma once

#include <string_view>

#include "dbc/dbc.h"

namespace cellguard::dbc::detail {

// The message's top-level multiplexer: the first "M" signal that is not itself multiplexed ("mNM"),
// else the first "M" signal at all; empty if the message has none.
inline std::string_view simple_multiplexer_name(const Message& message) {
  const Signal* any = nullptr;
  for (const auto& s : message.signals) {
    if (!s.is_multiplexer) continue;
    if (!s.multiplex_value) return s.name;
    if (any == nullptr) any = &s;
  }
  return any != nullptr ? std::string_view(any->name) : std::string_view();
}

}  // namespace cellguard::dbc::detail
