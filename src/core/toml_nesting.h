// A guard in front of the TOML parser (toml++ recurses once per level of nesting, so a file with a
// 50,000-level dotted key overflows the stack): a scan of the text, without parsing it, for nesting
// deeper than a limit. Used by every loader of TOML from a file (edge and server configuration).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace cellguard {

// Far above any real configuration (the deepest the project writes is 4), far below a stack's end.
inline constexpr int kMaxTomlNesting = 64;

struct TomlNestingProblem {
  int line = 0;    // 1-based
  int column = 0;  // 1-based, in bytes
  std::string message;
};

// Counts as one level each table header segment ([a.b] is 2), each dotted-key segment (added to the
// table's), each array and inline table. Skips strings and comments. Returns the first place where
// the nesting exceeds `max_depth`, or nothing; malformed text is left to the parser to report.
std::optional<TomlNestingProblem> check_toml_nesting(std::string_view text, int max_depth = kMaxTomlNesting);

}  // namespace cellguard
