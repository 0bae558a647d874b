// /metrics: the server's figures in the Prometheus text exposition format (version 0.0.4).
// Pure: render_metrics() formats what it is given; the HTTP layer gathers the inputs.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/alarms.h"
#include "server/ingest.h"
#include "store/store.h"

namespace cellguard::server {

struct HttpFigures {
  std::uint64_t requests = 0;
  std::uint64_t streams = 0;  // live streams open now
  std::uint64_t logins = 0, failed_logins = 0, rate_limited_logins = 0;
};

struct MetricsInput {
  IngestStats ingest;
  std::vector<EdgeStatus> edges;
  std::map<std::string, std::string> states;  // edge id -> normal | warning | dangerous | safe | unknown
  // The edges' own counters from their recordings: edge id -> channel ("can.bus_off_total") -> latest
  // value. Each channel becomes the counter family cellguard_edge_<channel with '_' for '.'>.
  std::map<std::string, std::map<std::string, double>> edge_counters;
  store::StoreStats store;
  std::optional<AlarmStats> alarms;
  HttpFigures http;
  WallTime now;  // ages (last seen) are measured to this
};

std::string render_metrics(const MetricsInput& in);

// A label value escaped as the format wants (backslash, double quote, newline).
std::string escape_label(const std::string& value);

}  // namespace cellguard::server
