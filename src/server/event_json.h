// The JSON of an edge's events, checked once at ingest and trusted after it: at most
// kMaxEventJsonBytes, nested at most kMaxEventJsonDepth deep, one object, valid UTF-8. An event
// that is not is stored as {"invalid_event": "<why>", "bytes": N} instead, so what the store holds
// can be spliced into responses without parsing it again (a 1 MB event of `[` cost ~25 MB per
// /events request when it was re-parsed each time). Pure; no I/O.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace cellguard::server {

inline constexpr std::size_t kMaxEventJsonBytes = 64 * 1024;
inline constexpr std::size_t kMaxEventJsonDepth = 32;
inline constexpr std::size_t kMaxEventKindBytes = 64;

// Why `text` is not an acceptable event (a sentence), or nothing when it is. No tree is built:
// a streaming check that stops at the first problem.
std::optional<std::string> event_json_problem(std::string_view text);

// `text` when acceptable, else the replacement object naming why.
std::string bounded_event_json(std::string text);

// An event kind for the store: at most kMaxEventKindBytes of printable ASCII, other bytes as '_'.
std::string bounded_event_kind(std::string_view kind);

}  // namespace cellguard::server
