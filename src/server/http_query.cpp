// Query, cookie and Host parsing of the HTTP API (http_query.h).
#include "server/http_query.h"

#include <algorithm>
#include <asio/ip/address.hpp>
#include <charconv>
#include <limits>

#include "store/export.h"

namespace cellguard::server {
namespace {

const std::string* find(const QueryParams& params, std::string_view name) {
  auto it = params.find(std::string(name));
  return it == params.end() ? nullptr : &it->second;
}

// Quoted for a message, at most 40 bytes, control bytes as '?'.
std::string shown(std::string_view text) {
  std::string out = "\"";
  for (char c : text.substr(0, 40)) out += static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c;
  if (text.size() > 40) out += "...";
  return out + "\"";
}

}  // namespace

Result<std::int64_t> int_param(const QueryParams& params, std::string_view name, std::int64_t fallback) {
  const std::string* v = find(params, name);
  if (!v) return fallback;
  std::int64_t out = 0;
  auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec == std::errc::result_out_of_range)
    return Error(ErrorCode::invalid_argument,
                 "parameter " + std::string(name) + "=" + shown(*v) + " is out of the 64-bit range");
  if (ec != std::errc() || end != v->data() + v->size() || v->empty())
    return Error(ErrorCode::invalid_argument,
                 "parameter " + std::string(name) + "=" + shown(*v) + " is not an integer");
  return out;
}

std::uint64_t span_ns(std::int64_t from, std::int64_t to) {
  return static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(from);
}

std::int64_t saturating_sub(std::int64_t a, std::int64_t b) {
  std::int64_t out = 0;
  if (!__builtin_sub_overflow(a, b, &out)) return out;
  return b > 0 ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
}

Result<TimeRange> range_params(const QueryParams& params, WallTime now, Duration span) {
  auto to = int_param(params, "to", now.ns());
  if (!to) return to.error();
  auto from = int_param(params, "from", saturating_sub(*to, span.count()));
  if (!from) return from.error();
  if (*from > *to) return Error(ErrorCode::invalid_argument, "from must not be after to");
  return TimeRange{*from, *to};
}

Result<ExportQuery> export_query(const QueryParams& params, WallTime now) {
  ExportQuery q;
  auto range = range_params(params, now, std::chrono::hours(1));
  if (!range) return range.error();
  q.range = *range;
  if (const std::string* f = find(params, "format")) q.format = *f;
  if (q.format != "csv" && q.format != "jsonl")
    return Error(ErrorCode::invalid_argument, "format must be csv or jsonl");
  if (const std::string* u = find(params, "utc")) q.utc = *u != "0";
  if (const std::string* i = find(params, "interval_s")) {
    auto d = store::parse_duration(*i);
    if (!d || *d < 1'000'000)
      return Error(ErrorCode::invalid_argument, "interval_s must be a duration of at least 1 ms");
    q.interval_ns = *d;
  }
  const std::uint64_t span = span_ns(q.range.from, q.range.to);
  if (span > kMaxExportSpanNs)
    return Error(ErrorCode::invalid_argument, "the range is longer than " +
                                                  std::to_string(kMaxExportSpanNs / 86'400'000'000'000) +
                                                  " days: choose a shorter range");
  q.row_times = span / static_cast<std::uint64_t>(q.interval_ns) + 1;
  if (q.row_times > kMaxExportRowTimes)
    return Error(ErrorCode::invalid_argument,
                 "more than " + std::to_string(kMaxExportRowTimes / 1'000'000) +
                     " million rows: choose a shorter range or a longer interval_s");
  return q;
}

std::string cookie_value(std::string_view header, std::string_view name) {
  std::size_t pos = 0;
  while (pos < header.size()) {
    std::size_t end = header.find(';', pos);
    if (end == std::string_view::npos) end = header.size();
    std::string_view part = header.substr(pos, end - pos);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    if (part.size() > name.size() && part.substr(0, name.size()) == name && part[name.size()] == '=')
      return std::string(part.substr(name.size() + 1));
    pos = end + 1;
  }
  return {};
}

std::string host_of(std::string_view header) {
  if (header.empty() || header.size() > 255) return {};
  std::string_view host = header, port;
  if (header.front() == '[') {
    const auto close = header.find(']');
    if (close == std::string_view::npos) return {};
    host = header.substr(1, close - 1);
    const std::string_view rest = header.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return {};
      port = rest.substr(1);
      if (port.empty()) return {};
    }
  } else {
    const auto colon = header.find(':');
    if (colon != std::string_view::npos) {
      host = header.substr(0, colon);
      port = header.substr(colon + 1);
      if (port.empty()) return {};
    }
  }
  if (host.empty() || port.size() > 5) return {};
  for (char c : port)
    if (c < '0' || c > '9') return {};
  std::string out;
  for (char c : host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                    c == '-' || c == '_' || c == ':';
    if (!ok) return {};
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  if (!out.empty() && out.back() == '.') out.pop_back();  // "localhost." is "localhost"
  return out;
}

bool host_allowed(std::string_view header, const std::vector<std::string>& allowed) {
  const std::string host = host_of(header);
  if (host.empty()) return false;
  // An address literal cannot be a rebound DNS name; "localhost" resolves locally.
  asio::error_code ec;
  (void)asio::ip::make_address(host, ec);
  if (!ec || host == "localhost") return true;
  return std::find(allowed.begin(), allowed.end(), host) != allowed.end();
}

}  // namespace cellguard::server
