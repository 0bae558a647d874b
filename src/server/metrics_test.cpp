// /metrics text: valid Prometheus exposition format, the contract's names, the values given.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace cellguard::server {
namespace {

// A small parser of the text format: families with HELP and TYPE before their samples, sample
// lines `name{labels} value`. Returns samples keyed "name{labels}"; fails the test on bad lines.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;
  static const std::regex sample(
      R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? (\S+)$)");
  static const std::regex type(
      R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
  static const std::regex help(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type)) {
      EXPECT_FALSE(types.count(m[1])) << "TYPE twice: " << line;
      types[m[1]] = m[2];
    } else if (std::regex_match(line, m, help)) {
    } else if (std::regex_match(line, m, sample)) {
      EXPECT_TRUE(types.count(m[1])) << "sample before its TYPE: " << line;
      const std::string key = std::string(m[1]) + std::string(m[2]);
      EXPECT_FALSE(samples.count(key)) << "duplicate sample: " << line;
      const std::string v = m[m.size() - 1];
      samples[key] = v == "+Inf" ? INFINITY : v == "-Inf" ? -INFINITY : std::stod(v);
    } else {
      ADD_FAILURE() << "not Prometheus text: \"" << line << "\"";
    }
  }
  return samples;
}

TEST(Metrics, TheTextParsesAndCarriesTheContractsNamesAndValues) {
  MetricsInput in;
  in.ingest.samples = 12345;
  in.ingest.batches = 40;
  in.ingest.duplicates = 2;
  in.ingest.commits = 17;
  in.ingest.commit_failures = 1;
  in.ingest.last_commit_ms = 2.5;
  EdgeStatus a;
  a.edge_id = "rig-01";
  a.connected = true;
  a.backlog_batches = 7;
  a.lost_records = 3;
  a.samples = 9000;
  a.last_seen_ns = 1'000'000'000'000;
  EdgeStatus b;
  b.edge_id = "odd\"id\\";
  in.edges = {a, b};
  in.states = {{"rig-01", "warning"}};
  in.store.file_bytes = 4096;
  in.alarms = AlarmStats{};
  in.alarms->failed_attempts = 4;
  in.now_ns = 1'002'500'000'000;
  const auto s = parse_prometheus(render_metrics(in));
  EXPECT_EQ(s.at("cellguard_ingest_samples_total"), 12345);
  EXPECT_EQ(s.at("cellguard_ingest_batches_total"), 40);
  EXPECT_EQ(s.at("cellguard_ingest_duplicates_total"), 2);
  EXPECT_EQ(s.at("cellguard_ingest_commits_total"), 17);
  EXPECT_EQ(s.at("cellguard_ingest_commit_failures_total"), 1);
  EXPECT_DOUBLE_EQ(s.at("cellguard_ingest_last_commit_seconds"), 0.0025);
  EXPECT_EQ(s.at("cellguard_edges_connected"), 1);
  EXPECT_EQ(s.at("cellguard_edge_connected{edge=\"rig-01\"}"), 1);
  EXPECT_EQ(s.at("cellguard_edge_connected{edge=\"odd\\\"id\\\\\"}"), 0);
  EXPECT_EQ(s.at("cellguard_edge_backlog_batches{edge=\"rig-01\"}"), 7);
  EXPECT_EQ(s.at("cellguard_edge_lost_records_total{edge=\"rig-01\"}"), 3);
  EXPECT_EQ(s.at("cellguard_edge_state{edge=\"rig-01\",state=\"warning\"}"), 1);
  EXPECT_EQ(s.at("cellguard_edge_state{edge=\"rig-01\",state=\"normal\"}"), 0);
  EXPECT_EQ(s.at("cellguard_edge_state{edge=\"odd\\\"id\\\\\",state=\"unknown\"}"), 1);
  EXPECT_EQ(s.at("cellguard_edge_samples_total{edge=\"rig-01\"}"), 9000);
  EXPECT_DOUBLE_EQ(s.at("cellguard_edge_last_seen_seconds{edge=\"rig-01\"}"), 2.5);
  EXPECT_EQ(s.at("cellguard_store_bytes"), 4096);
  EXPECT_EQ(s.at("cellguard_alarms_failed_attempts_total"), 4);
}

TEST(Metrics, WithoutAlarmsThereAreNoAlarmFamilies) {
  const std::string text = render_metrics(MetricsInput{});
  EXPECT_EQ(text.find("cellguard_alarms_"), std::string::npos);
  parse_prometheus(text);
}

}  // namespace
}  // namespace cellguard::server
