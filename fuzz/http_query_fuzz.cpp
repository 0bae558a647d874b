// libFuzzer target for what an HTTP client sends beside the path (server/http_query.h) and the
// events' JSON check at ingest (server/event_json.h). The input's lines: a query string (parsed by
// cpp-httplib as the server does), a Host header, a Cookie header; the rest is an event's JSON.
// Invariants: no crash or exception; an accepted export stays within its limits; a bounded event
// is always a JSON object within the size limit.
#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "server/event_json.h"
#include "server/http_query.h"

namespace {

std::string_view next_line(std::string_view& text) {
  const auto nl = text.find('\n');
  const std::string_view line = text.substr(0, nl);
  text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
  return line;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cellguard::server;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string query(next_line(text));
  const std::string_view host = next_line(text), cookie = next_line(text), event = text;

  constexpr auto kNow = cellguard::WallTime::from_ns(1'800'000'000'000'000'000);
  httplib::Params params;
  httplib::detail::parse_query_text(query, params);
  (void)int_param(params, "limit", 1000);
  if (auto r = range_params(params, kNow, cellguard::Duration(3600 * kQuerySecondNs)); r && r->from > r->to)
    std::abort();
  if (auto q = export_query(params, kNow)) {
    if (q->range.from > q->range.to || q->row_times == 0 || q->row_times > kMaxExportRowTimes ||
        q->interval_ns < 1'000'000 || span_ns(q->range.from, q->range.to) > kMaxExportSpanNs ||
        (q->format != "csv" && q->format != "jsonl"))
      std::abort();
  } else if (q.error().message.empty()) {
    std::abort();
  }
  const std::string h = host_of(host);
  for (char c : h)
    if (static_cast<unsigned char>(c) <= ' ' || (c >= 'A' && c <= 'Z')) std::abort();
  (void)host_allowed(host, {"rig.example.org"});
  (void)cookie_value(cookie, "cellguard_session");

  const std::string bounded = bounded_event_json(std::string(event));
  if (event_json_problem(bounded) || bounded.size() > kMaxEventJsonBytes) std::abort();
  if (!event_json_problem(event) && bounded != event) std::abort();
  if (bounded_event_kind(event).size() > kMaxEventKindBytes) std::abort();
  return 0;
}
