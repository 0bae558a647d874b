// Tests only: a strict reader of the Prometheus text format (0.0.4), without std::regex (whose
// inlined code GCC 12 warns about under the sanitizers).
#pragma once

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>

namespace cellguard::server::testing {

inline bool metric_name_char(char c, bool first) {
  return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':' ||
         (!first && std::isdigit(static_cast<unsigned char>(c)));
}

// Reads `name` at `pos`; empty if none.
inline std::string read_name(const std::string& s, std::size_t& pos, bool allow_colon = true) {
  const std::size_t start = pos;
  while (pos < s.size() && metric_name_char(s[pos], pos == start) && (allow_colon || s[pos] != ':')) ++pos;
  return s.substr(start, pos - start);
}

struct PrometheusText {
  std::map<std::string, double> samples;     // "name{labels}" as written -> value
  std::map<std::string, std::string> types;  // family -> counter | gauge | ...
  std::vector<std::string> errors;           // lines that are not valid
};

// One sample line: name, optional {label="value",...}, one space, a number. The key keeps the
// labels as written.
inline std::optional<std::pair<std::string, double>> parse_sample(const std::string& line,
                                                                  std::string& family) {
  std::size_t pos = 0;
  family = read_name(line, pos);
  if (family.empty()) return std::nullopt;
  if (pos < line.size() && line[pos] == '{') {
    ++pos;
    for (bool first = true;; first = false) {
      if (pos < line.size() && line[pos] == '}' && first) break;
      if (read_name(line, pos, false).empty()) return std::nullopt;
      if (line.compare(pos, 2, "=\"") != 0) return std::nullopt;
      pos += 2;
      while (pos < line.size() && line[pos] != '"') {
        if (line[pos] == '\\') {
          if (pos + 1 >= line.size() ||
              (line[pos + 1] != '\\' && line[pos + 1] != '"' && line[pos + 1] != 'n'))
            return std::nullopt;
          ++pos;
        }
        ++pos;
      }
      if (pos >= line.size()) return std::nullopt;
      ++pos;  // the closing quote
      if (pos < line.size() && line[pos] == ',') {
        ++pos;
        continue;
      }
      if (pos < line.size() && line[pos] == '}') break;
      return std::nullopt;
    }
    ++pos;  // '}'
  }
  const std::string key = line.substr(0, pos);
  if (pos >= line.size() || line[pos] != ' ') return std::nullopt;
  const std::string value = line.substr(pos + 1);
  if (value == "+Inf") return std::make_pair(key, INFINITY);
  if (value == "-Inf") return std::make_pair(key, -INFINITY);
  if (value == "NaN") return std::make_pair(key, NAN);
  char* end = nullptr;
  const double v = std::strtod(value.c_str(), &end);
  if (value.empty() || end != value.c_str() + value.size() ||
      std::isspace(static_cast<unsigned char>(value[0])))
    return std::nullopt;
  return std::make_pair(key, v);
}

inline PrometheusText parse_prometheus(const std::string& text) {
  PrometheusText out;
  std::istringstream in(text);
  std::string line;
  static const std::set<std::string> kTypes{"counter", "gauge", "histogram", "summary", "untyped"};
  while (std::getline(in, line)) {
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      std::size_t pos = 7;
      const std::string name = read_name(line, pos);
      if (name.empty() || pos >= line.size() || line[pos] != ' ' || pos + 1 >= line.size()) {
        out.errors.push_back(line);
        continue;
      }
      if (line[2] == 'T') {
        const std::string type = line.substr(pos + 1);
        if (!kTypes.count(type) || out.types.count(name)) out.errors.push_back(line);
        out.types[name] = type;
      }
      continue;
    }
    std::string family;
    auto sample = parse_sample(line, family);
    if (!sample || !out.types.count(family) || out.samples.count(sample->first)) {
      out.errors.push_back(line);
      continue;
    }
    out.samples[sample->first] = sample->second;
  }
  return out;
}

}  // namespace cellguard::server::testing
