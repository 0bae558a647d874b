// Texts for people carry wall-clock times, never the edge's monotonic clock (issue 13 item 6).
// One check for the supervisor's unit tests and the edge's process tests.
#pragma once

#include <cctype>
#include <cstddef>
#include <string>

namespace cellguard::testing {

// "since 14376.054 s" (a monotonic clock in a text): "since ", digits, optional fraction, " s" and
// then no letter. Hand-written rather than std::regex (GCC 12's regex warns under the sanitizers).
inline bool has_monotonic_since(const std::string& text) {
  for (std::size_t at = text.find("since "); at != std::string::npos; at = text.find("since ", at + 1)) {
    std::size_t i = at + 6;
    const std::size_t digits = i;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    if (i == digits) continue;
    if (i < text.size() && text[i] == '.') {
      ++i;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i;
    }
    if (text.compare(i, 2, " s") == 0 &&
        (i + 2 == text.size() || !std::isalpha(static_cast<unsigned char>(text[i + 2]))))
      return true;
  }
  return false;
}

}  // namespace cellguard::testing
