// /metrics text: valid Prometheus exposition format, the contract's names, the values given.
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <map>

#include "server/prometheus_test_util.h"

namespace cellguard::server {
namespace {

std::map<std::string, double> parse_prometheus(const std::string& text) {
  const auto parsed = testing::parse_prometheus(text);
  for (const auto& e : parsed.errors) ADD_FAILURE() << "not Prometheus text: \"" << e << "\"";
  return parsed.samples;
}

TEST(Metrics, TheReaderRejectsWhatIsNotPrometheusText) {
  for (const char* bad : {"# TYPE x counter\nx{a=\"1\" 2\n", "# TYPE x counter\nx 1 2\n", "x 1\n",
                          "# TYPE x counter\nx{a=1} 2\n", "# TYPE x counter\n# TYPE x gauge\n"})
    EXPECT_FALSE(testing::parse_prometheus(bad).errors.empty()) << bad;
  EXPECT_TRUE(
      testing::parse_prometheus("# HELP x y\n# TYPE x gauge\nx{a=\"q\\\"\",b=\"\"} -1.5e3\n").errors.empty());
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
  a.last_seen = WallTime::from_ns(1'000'000'000'000);
  EdgeStatus b;
  b.edge_id = "odd\"id\\";
  in.edges = {a, b};
  in.states = {{"rig-01", "warning"}};
  in.edge_counters = {{"rig-01", {{"can.bus_off_total", 2}, {"can.rx_queue_overflows_total", 17}}}};
  in.store.file_bytes = 4096;
  in.alarms = AlarmStats{};
  in.alarms->failed_attempts = 4;
  in.now = WallTime::from_ns(1'002'500'000'000);
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
  EXPECT_EQ(s.at("cellguard_edge_can_bus_off_total{edge=\"rig-01\"}"), 2);
  EXPECT_EQ(s.at("cellguard_edge_can_rx_queue_overflows_total{edge=\"rig-01\"}"), 17);
}

TEST(Metrics, WithoutAlarmsThereAreNoAlarmFamilies) {
  const std::string text = render_metrics(MetricsInput{});
  EXPECT_EQ(text.find("cellguard_alarms_"), std::string::npos);
  parse_prometheus(text);
}

}  // namespace
}  // namespace cellguard::server
