// The HTTP API's parsing of what a client sends beside the path: query parameters (integers, time
// ranges, the export's options), the session cookie and the Host header. Pure functions, no I/O, so
// they are fuzzed (fuzz/http_query_fuzz.cpp) and every limit is computed here without overflow.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::server {

using QueryParams = std::multimap<std::string, std::string>;  // httplib::Params

inline constexpr std::int64_t kQuerySecondNs = 1'000'000'000;
// An export (csv and jsonl alike) spans at most this many intervals (CSV rows) ...
inline constexpr std::uint64_t kMaxExportRowTimes = 5'000'000;
// ... and at most this long (the store is read in 5-minute windows: ~105,000 of them) ...
inline constexpr std::uint64_t kMaxExportSpanNs = 366ull * 86400 * 1'000'000'000;
// ... and writes at most this many rows (CSV) or lines (JSON lines).
inline constexpr std::uint64_t kMaxExportRows = 20'000'000;

// The parameter as an int64; `fallback` when absent. The error names the parameter and its text.
Result<std::int64_t> int_param(const QueryParams& params, std::string_view name, std::int64_t fallback);

// to - from as an unsigned count (never overflows for from <= to).
std::uint64_t span_ns(std::int64_t from, std::int64_t to);
// a - b, clamped to the int64 range.
std::int64_t saturating_sub(std::int64_t a, std::int64_t b);

// Times in queries are as the store keys them: ns since the Unix epoch (WallTime::ns()).
struct TimeRange {
  std::int64_t from = 0, to = 0;
};
// from/to with the defaults of the contract: the last `span` up to `now`; from <= to.
Result<TimeRange> range_params(const QueryParams& params, WallTime now, Duration span);

struct ExportQuery {
  TimeRange range;
  std::string format = "csv";  // or "jsonl"
  bool utc = false;
  std::int64_t interval_ns = kQuerySecondNs;
  std::uint64_t row_times = 0;  // intervals in the range, at most kMaxExportRowTimes
};
// The export's parameters (from, to, format, utc, interval_s) with its limits checked.
Result<ExportQuery> export_query(const QueryParams& params, WallTime now);

// The value of cookie `name` in a Cookie header; empty when absent.
std::string cookie_value(std::string_view header, std::string_view name);

// The host of a Host header ("example.org:8080" -> "example.org", "[::1]:80" -> "::1"), lower case;
// empty when it is not a plausible host (control bytes, spaces, a bad port).
std::string host_of(std::string_view host_header);
// Whether the Host header names an IP address, localhost or one of `allowed` (hosts, lower case,
// without port): a DNS name rebound to this server's address is refused.
bool host_allowed(std::string_view host_header, const std::vector<std::string>& allowed);

}  // namespace cellguard::server
