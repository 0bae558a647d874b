// Events' JSON checked at ingest (event_json.h).
#include "server/event_json.h"

#include <nlohmann/json.hpp>

namespace cellguard::server {
namespace {

using nlohmann::json;

// A SAX consumer that keeps only the depth: no values are stored.
struct DepthCheck {
  std::size_t depth = 0, max_seen = 0;
  bool too_deep = false, top_is_object = false, started = false;
  std::string error;

  bool open(bool object) {
    if (!started) top_is_object = object;
    started = true;
    max_seen = std::max(max_seen, ++depth);
    if (depth > kMaxEventJsonDepth) too_deep = true;
    return !too_deep;
  }
  bool value() {
    started = true;
    return true;
  }
  bool null() { return value(); }
  bool boolean(bool) { return value(); }
  bool number_integer(json::number_integer_t) { return value(); }
  bool number_unsigned(json::number_unsigned_t) { return value(); }
  bool number_float(json::number_float_t, const json::string_t&) { return value(); }
  bool string(json::string_t&) { return value(); }
  bool binary(json::binary_t&) { return value(); }
  bool start_object(std::size_t) { return open(true); }
  bool key(json::string_t&) { return true; }
  bool end_object() {
    --depth;
    return true;
  }
  bool start_array(std::size_t) { return open(false); }
  bool end_array() {
    --depth;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    error = e.what();
    return false;
  }
};

}  // namespace

std::optional<std::string> event_json_problem(std::string_view text) {
  if (text.size() > kMaxEventJsonBytes)
    return "larger than " + std::to_string(kMaxEventJsonBytes / 1024) + " KiB (" +
           std::to_string(text.size()) + " bytes)";
  DepthCheck check;
  const bool ok = json::sax_parse(text.begin(), text.end(), &check, json::input_format_t::json, true);
  if (check.too_deep) return "nested deeper than " + std::to_string(kMaxEventJsonDepth) + " levels";
  if (!ok)
    return "not JSON: " + (check.error.empty() ? std::string("malformed") : check.error.substr(0, 200));
  if (!check.top_is_object) return "not a JSON object";
  return std::nullopt;
}

std::string bounded_event_json(std::string text) {
  auto problem = event_json_problem(text);
  if (!problem) return text;
  return json{{"invalid_event", *problem}, {"bytes", text.size()}}.dump(-1, ' ', false,
                                                                        json::error_handler_t::replace);
}

std::string bounded_event_kind(std::string_view kind) {
  std::string out;
  for (char c : kind.substr(0, kMaxEventKindBytes)) {
    const bool ok = c >= 0x20 && c < 0x7f;
    out += ok ? c : '_';
  }
  return out.empty() ? "unknown" : out;
}

}  // namespace cellguard::server
