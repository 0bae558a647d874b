#include "core/toml_nesting.h"

#include <vector>

namespace cellguard {

std::optional<TomlNestingProblem> check_toml_nesting(std::string_view text, int max_depth) {
  int line = 1;
  std::size_t line_start = 0;
  std::vector<char> open;   // '[' and '{' of values, innermost last; never deeper than max_depth
  bool key_context = true;  // reading a key (line start, after '{' or ',' in an inline table)
  bool in_header = false;   // inside [table] or [[array of tables]]
  int header_depth = 0;     // levels of the current table
  int key_segments = 0;     // segments of the key or header being read, after the first
  auto problem = [&](std::size_t at, int depth) {
    return TomlNestingProblem{
        line, static_cast<int>(at - line_start) + 1,
        "nesting " + std::to_string(depth) + " levels deep, more than " + std::to_string(max_depth) +
            " (tables, dotted keys, arrays and inline tables); the file was not parsed"};
  };
  auto depth_here = [&] {
    if (in_header) return key_segments + 1;
    return header_depth + static_cast<int>(open.size()) + (key_context ? key_segments + 1 : 0);
  };
  const std::size_t n = text.size();
  for (std::size_t i = 0; i < n; ++i) {
    const char c = text[i];
    switch (c) {
      case '\n':
        ++line;
        line_start = i + 1;
        if (open.empty()) {
          key_context = true;
          in_header = false;
          key_segments = 0;
        }
        break;
      case '#':
        while (i + 1 < n && text[i + 1] != '\n') ++i;
        break;
      case '"':
      case '\'': {
        const bool triple = i + 2 < n && text[i + 1] == c && text[i + 2] == c;
        const std::string_view close = triple ? text.substr(i, 3) : text.substr(i, 1);
        std::size_t j = i + close.size();
        while (j < n) {
          if (c == '"' && text[j] == '\\') {
            j += 2;
            continue;
          }
          if (text[j] == '\n') {
            if (!triple) break;  // an unterminated string: the parser says so
            ++line;
            line_start = j + 1;
          }
          if (text.compare(j, close.size(), close) == 0) break;
          ++j;
        }
        i = j < n && text[j] != '\n' ? j + close.size() - 1 : j - 1;
        break;
      }
      case '.':
        if (key_context || in_header) {
          ++key_segments;
          if (depth_here() > max_depth) return problem(i, depth_here());
        }
        break;
      case '=':
        if (key_context && !in_header) {
          key_context = false;
          key_segments = 0;
        }
        break;
      case '[':
        if (key_context && open.empty() && !in_header) {
          in_header = true;  // [table] or [[array]]: the second '[' is read here too
          if (i + 1 < n && text[i + 1] == '[') ++i;
          key_segments = 0;
          header_depth = 0;
        } else if (!key_context) {
          open.push_back('[');
          if (depth_here() > max_depth) return problem(i, depth_here());
        }
        break;
      case '{':
        if (!key_context) {
          open.push_back('{');
          if (depth_here() > max_depth) return problem(i, depth_here());
          key_context = true;
          key_segments = 0;
        }
        break;
      case ']':
        if (in_header) {
          header_depth = key_segments + 1;
          in_header = false;
          key_context = false;  // the rest of the line is a comment or an error
          key_segments = 0;
        } else if (!open.empty() && open.back() == '[') {
          open.pop_back();
        }
        break;
      case '}':
        if (!open.empty() && open.back() == '{') {
          open.pop_back();
          key_context = false;
          key_segments = 0;
        }
        break;
      case ',':
        if (!open.empty() && open.back() == '{') {
          key_context = true;
          key_segments = 0;
        }
        break;
      default:
        break;
    }
  }
  return std::nullopt;
}

}  // namespace cellguard
