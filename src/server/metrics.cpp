// Prometheus text (metrics.h).
#include "server/metrics.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <utility>
#include <vector>

namespace cellguard::server {
namespace {

std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
    out_.append(name).append(" ").append(type).append("\n");
  }
  void sample(const std::string& name, double value, const std::string& labels = "") {
    out_.append(name);
    if (!labels.empty()) out_.append("{").append(labels).append("}");
    out_.append(" ").append(number(value)).append("\n");
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

std::string edge_label(const std::string& id) {
  std::string out = "edge=\"";
  out.append(escape_label(id)).append("\"");
  return out;
}

}  // namespace

std::string escape_label(const std::string& value) {
  std::string out;
  for (char c : value) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string render_metrics(const MetricsInput& in) {
  Writer w;
  const auto& s = in.ingest;
  auto counter = [&](const char* name, const char* help, double v) {
    w.family(name, "counter", help);
    w.sample(name, v);
  };
  auto gauge = [&](const char* name, const char* help, double v) {
    w.family(name, "gauge", help);
    w.sample(name, v);
  };
  counter("cellguard_ingest_samples_total", "Samples newly stored.", static_cast<double>(s.samples));
  counter("cellguard_ingest_batches_total", "Batches newly stored.", static_cast<double>(s.batches));
  counter("cellguard_ingest_duplicates_total", "Resent batches acknowledged and not stored again.",
          static_cast<double>(s.duplicates));
  counter("cellguard_ingest_commits_total", "Store transactions committed.", static_cast<double>(s.commits));
  counter("cellguard_ingest_commit_failures_total", "Store transactions that failed (nothing acknowledged).",
          static_cast<double>(s.commit_failures));
  gauge("cellguard_ingest_last_commit_seconds", "Duration of the last commit.", s.last_commit_ms / 1000.0);
  counter("cellguard_ingest_connections_total", "TCP connections accepted from edges.",
          static_cast<double>(s.connections));
  counter("cellguard_ingest_rejected_total", "Connections refused (handshake, hello, protocol errors).",
          static_cast<double>(s.rejected));
  counter("cellguard_ingest_bytes_received_total", "Bytes received from edges (after TLS).",
          static_cast<double>(s.bytes_received));
  std::size_t connected = 0;
  for (const auto& e : in.edges) connected += e.connected ? 1 : 0;
  gauge("cellguard_edges_connected", "Edges connected now.", static_cast<double>(connected));
  gauge("cellguard_edges_known", "Edges the server knows of.", static_cast<double>(in.edges.size()));

  w.family("cellguard_edge_connected", "gauge", "1 while the edge is connected.");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_connected", e.connected ? 1 : 0, edge_label(e.edge_id));
  w.family("cellguard_edge_backlog_batches", "gauge", "Batches the edge holds undelivered (its own count).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_backlog_batches", static_cast<double>(e.backlog_batches), edge_label(e.edge_id));
  w.family("cellguard_edge_lost_records_total", "counter",
           "Records the edge dropped before delivery (backlog overflow).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_lost_records_total", static_cast<double>(e.lost_records), edge_label(e.edge_id));
  w.family("cellguard_edge_state", "gauge", "1 for the edge's current safety state, 0 for the others.");
  static const char* kStates[] = {"normal", "warning", "dangerous", "safe", "unknown"};
  for (const auto& e : in.edges) {
    auto it = in.states.find(e.edge_id);
    const std::string current = it == in.states.end() ? "unknown" : it->second;
    for (const char* st : kStates) {
      std::string labels = edge_label(e.edge_id);
      labels.append(",state=\"").append(st).append("\"");
      w.sample("cellguard_edge_state", current == st ? 1 : 0, labels);
    }
  }
  std::map<std::string, std::vector<std::pair<std::string, double>>> by_counter;  // sorted: stable output
  for (const auto& [edge_id, counters] : in.edge_counters)
    for (const auto& [channel, value] : counters) by_counter[channel].emplace_back(edge_id, value);
  for (const auto& [channel, values] : by_counter) {
    std::string name = "cellguard_edge_" + channel;
    for (char& c : name)
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
    const std::string help = "The edge's own counter " + channel + " (its latest recorded value).";
    w.family(name.c_str(), "counter", help.c_str());
    for (const auto& [edge_id, value] : values) w.sample(name, value, edge_label(edge_id));
  }
  w.family("cellguard_edge_samples_total", "counter", "Samples committed for the edge (this server run).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_samples_total", static_cast<double>(e.samples), edge_label(e.edge_id));
  w.family("cellguard_edge_batches_total", "counter", "Batches committed for the edge (this server run).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_batches_total", static_cast<double>(e.batches), edge_label(e.edge_id));
  w.family("cellguard_edge_duplicates_total", "counter", "Resent batches of the edge (this server run).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_duplicates_total", static_cast<double>(e.duplicates), edge_label(e.edge_id));
  w.family("cellguard_edge_connections_total", "counter", "Successful hellos of the edge (this server run).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_connections_total", static_cast<double>(e.connections), edge_label(e.edge_id));
  w.family("cellguard_edge_last_seen_seconds", "gauge",
           "Seconds since the edge's last message (-1: never seen).");
  for (const auto& e : in.edges)
    w.sample("cellguard_edge_last_seen_seconds",
             e.last_seen > WallTime{} ? to_seconds(in.now - e.last_seen) : -1, edge_label(e.edge_id));

  gauge("cellguard_store_bytes", "Store size on disk (database and WAL).",
        static_cast<double>(in.store.file_bytes));
  gauge("cellguard_store_pending_batches", "Stored batches not yet compacted.",
        static_cast<double>(in.store.pending_batches));
  counter("cellguard_store_compactions_total", "Compaction transactions.",
          static_cast<double>(in.store.compactions));

  counter("cellguard_http_requests_total", "HTTP requests served.", static_cast<double>(in.http.requests));
  gauge("cellguard_http_streams", "Live event streams open now.", static_cast<double>(in.http.streams));
  counter("cellguard_http_logins_total", "Successful logins.", static_cast<double>(in.http.logins));
  counter("cellguard_http_failed_logins_total", "Failed logins.", static_cast<double>(in.http.failed_logins));
  counter("cellguard_http_rate_limited_logins_total", "Logins refused by the rate limit.",
          static_cast<double>(in.http.rate_limited_logins));

  if (in.alarms) {
    const AlarmStats& a = *in.alarms;
    gauge("cellguard_alarms_queued", "Alarms waiting for the webhook.", static_cast<double>(a.queued));
    counter("cellguard_alarms_total", "Alarms queued for the webhook.", static_cast<double>(a.offered));
    counter("cellguard_alarms_delivered_total", "Alarms the webhook accepted (2xx).",
            static_cast<double>(a.delivered));
    counter("cellguard_alarms_failed_attempts_total", "Webhook attempts that failed (retried).",
            static_cast<double>(a.failed_attempts));
    counter("cellguard_alarms_dropped_total", "Alarms dropped because the queue was full.",
            static_cast<double>(a.dropped));
    counter("cellguard_alarms_given_up_total", "Alarms given up after max_attempts.",
            static_cast<double>(a.given_up));
  }
  return w.take();
}

}  // namespace cellguard::server
