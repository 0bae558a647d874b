// The HTTP API against a running ingest fed by the edge's real sender: a real recording, real
// sockets on 127.0.0.1, a real SQLite store, cpp-httplib clients. Every endpoint, downsampling, the
// export download, the live stream within 1 s, the login, /metrics as Prometheus text.
#include "server/http_api.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "dbc/dbc.h"
#include "recorder/recorder.h"
#include "server/ingest.h"
#include "server/live.h"
#include "server/prometheus_test_util.h"
#include "server/server_test_util.h"
#include "store/store.h"
#include "uplink/sender.h"

namespace cellguard::server {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

// One module's voltage/current message and its first eight cells, as in the rig's DBC.
constexpr const char* kDbc = R"(VERSION ""
BU_: Module
BO_ 385 BMU01_pdo1: 8 Module
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Vector__XXX
 SG_ CMA_Voltage : 16|16@1+ (0.01,0) [0|655.35] "V" Vector__XXX
BO_ 897 BMU01_pdo3: 8 Module
 SG_ Cell_1_Voltage : 0|8@1+ (0.01,2.2) [2.2|4.75] "V" Vector__XXX
 SG_ Cell_2_Voltage : 8|8@1+ (0.01,2.2) [2.2|4.75] "V" Vector__XXX
 SG_ Cell_3_Voltage : 16|8@1+ (0.01,2.2) [2.2|4.75] "V" Vector__XXX
)";

using testing::now_ns;
using testing::wait_for;

json state_event(const char* from, const char* to, const char* level) {
  return {{"kind", "state"},
          {"from", from},
          {"to", to},
          {"reason",
           {{"rule", "limit_high"},
            {"level", level},
            {"quantity", "cell_voltage"},
            {"channel", "BMU01.Cell_3_Voltage"},
            {"module", 1},
            {"measured", 4.22},
            {"threshold", 4.2},
            {"text", "cell 3 of module 1 at 4.22 V"}}}};
}

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    dir_ = fs::temp_directory_path() /
           ("cellguard-http-test-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    recorder::RecorderConfig rc;
    rc.path = (dir_ / "edge.db").string();
    // Blocks only at flush(): one record_block() is exactly one block (one batch on the server).
    rc.commit_interval_ns = 3'600'000'000'000;
    rc.keep_undelivered_events = true;
    auto rec = recorder::Recorder::open(rc);
    ASSERT_TRUE(rec) << rec.error().message;
    recorder_ = std::move(*rec);
    ASSERT_TRUE(recorder_->set_meta("dbc", kDbc));
    for (const auto& [name, unit] :
         std::vector<std::pair<std::string, std::string>>{{"board.temp1_c", "degC"},
                                                          {"board.pressure", "bar"},
                                                          {"inverter.dc_link_power_kw", "kW"},
                                                          {"inverter.battery_voltage_v", "V"},
                                                          {"safety.state", ""}}) {
      auto ch = recorder_->channel(name, unit);
      ASSERT_TRUE(ch);
      channels_[name] = *ch;
    }
    store::SqliteStoreConfig sc;
    sc.path = (dir_ / "server" / "store.db").string();
    sc.synchronous = store::Synchronous::normal;
    auto st = store::open_sqlite_store(sc);
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
    live_ = std::make_unique<LiveCache>(*store_);
    IngestConfig ic;
    ic.port = 0;
    ic.keepalive = 200ms;
    ic.dead_after = 2s;
    ic.on_committed = [this](const std::string& edge, const std::vector<store::Batch>& batches) {
      live_->on_committed(edge, batches);
      std::lock_guard lock(hooked_mutex_);
      for (const auto& b : batches) hooked_.insert(b.seq);
    };
    auto s = IngestServer::start(ic, *store_);
    ASSERT_TRUE(s) << s.error().message;
    ingest_ = std::move(*s);
  }
  void TearDown() override {
    sender_.reset();
    http_.reset();
    ingest_.reset();
    live_.reset();
    store_.reset();
    recorder_.reset();
    fs::remove_all(dir_);
  }

  void start_http(HttpApiConfig c = {}) {
    c.port = 0;
    auto h = HttpApi::start(std::move(c), *store_, *ingest_, *live_, nullptr);
    ASSERT_TRUE(h) << h.error().message;
    http_ = std::move(*h);
  }

  void start_sender() {
    uplink::SenderConfig c;
    c.recording_path = (dir_ / "edge.db").string();
    c.host = "127.0.0.1";
    c.port = ingest_->port();
    c.hello.edge_id = "rig-01";
    c.hello.software_version = "0.1.0-test";
    c.keepalive = 200ms;
    c.dead_after = 2s;
    c.backoff_initial = 20ms;
    c.backoff_max = 200ms;
    c.poll = 10ms;
    c.persist_every = 20ms;
    c.hints.module_of = [](const dbc::Message& m) {
      return m.name.rfind("BMU01_", 0) == 0 ? uplink::ModuleOfMessage{1, "BMU01_"}
                                            : uplink::ModuleOfMessage{};
    };
    c.hints.rig_columns = {{"board.temp1_c", "Ardu_Temp1"}, {"inverter.dc_link_power_kw", "modbus_Power"}};
    auto s = uplink::Sender::start(std::move(c));
    ASSERT_TRUE(s) << s.error().message;
    sender_ = std::move(*s);
  }

  // One block: both module messages, the board and inverter samples; the i-th values are known.
  void record_block(const std::string& event = "") {
    const int i = next_++;
    const std::int64_t t = now_ns();
    can::Frame pdo1;
    pdo1.timestamp_ns = t;
    pdo1.id = 385;
    pdo1.size = 8;
    const int current = -100 + i, voltage = 4800 + i;
    pdo1.data[0] = static_cast<std::uint8_t>(current & 0xff);
    pdo1.data[1] = static_cast<std::uint8_t>((current >> 8) & 0xff);
    pdo1.data[2] = static_cast<std::uint8_t>(voltage & 0xff);
    pdo1.data[3] = static_cast<std::uint8_t>((voltage >> 8) & 0xff);
    recorder_->record_frame(pdo1);
    can::Frame pdo3;
    pdo3.timestamp_ns = t;
    pdo3.id = 897;
    pdo3.size = 8;
    pdo3.data[0] = 170;
    pdo3.data[1] = 171;
    pdo3.data[2] = static_cast<std::uint8_t>(172 + i % 50);
    recorder_->record_frame(pdo3);
    recorder_->record_sample(t, channels_["board.temp1_c"], 20.0 + 0.5 * i);
    recorder_->record_sample(t, channels_["board.pressure"], 1.01);
    recorder_->record_sample(t, channels_["inverter.dc_link_power_kw"], -2.5 + i);
    recorder_->record_sample(t, channels_["inverter.battery_voltage_v"], 330.0);
    if (!event.empty()) {
      const json e = json::parse(event);
      recorder_->record_event(t, e.value("kind", "event"), event);
      if (e.value("kind", "") == "state") {
        static const std::map<std::string, double> codes{
            {"normal", 0}, {"warning", 1}, {"dangerous", 2}, {"safe", 3}};
        recorder_->record_sample(t, channels_["safety.state"], codes.at(e["to"].get<std::string>()));
      }
    }
    ASSERT_TRUE(recorder_->flush());
    last_t_ = t;
  }
  // Batches through the whole ingest: stored, counted, and in the live cache (the hook runs last).
  // (Distinct seqs: a resend passes the hook again.)
  std::uint64_t stored() {
    std::lock_guard lock(hooked_mutex_);
    return hooked_.size();
  }

  httplib::Client client() {
    httplib::Client c("127.0.0.1", http_->port());
    c.set_read_timeout(10, 0);
    return c;
  }
  json get_json(const std::string& path, int expect = 200) {
    auto c = client();
    auto r = c.Get(path);
    EXPECT_TRUE(r) << path;
    if (!r) return {};
    EXPECT_EQ(r->status, expect) << path << ": " << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << path;
    return json::parse(r->body, nullptr, false);
  }

  fs::path dir_;
  std::unique_ptr<recorder::Recorder> recorder_;
  std::map<std::string, std::uint32_t> channels_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<LiveCache> live_;
  std::unique_ptr<IngestServer> ingest_;
  ManualClock clock_;  // for tests that inject it; outlives http_
  std::unique_ptr<HttpApi> http_;
  std::unique_ptr<uplink::Sender> sender_;
  int next_ = 0;
  std::int64_t last_t_ = 0;
  std::mutex hooked_mutex_;
  std::set<std::uint64_t> hooked_;
};

TEST_F(HttpApiTest, EdgesListTheConnectedEdgeWithItsStateAndReasons) {
  start_http();
  record_block(state_event("normal", "warning", "warning").dump());
  record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 2; }));
  const json edges = get_json("/api/v1/edges");
  ASSERT_EQ(edges["edges"].size(), 1u) << edges.dump();
  const json& e = edges["edges"][0];
  EXPECT_EQ(e["id"], "rig-01");
  EXPECT_EQ(e["connected"], true);
  EXPECT_EQ(e["software_version"], "0.1.0-test");
  EXPECT_EQ(e["state"], "warning");
  EXPECT_GT(e["state_since_ns"].get<std::int64_t>(), 0);
  ASSERT_EQ(e["reasons"].size(), 1u);
  EXPECT_EQ(e["reasons"][0]["rule"], "limit_high");
  EXPECT_EQ(e["reasons"][0]["measured"], 4.22);
  EXPECT_EQ(e["batches"], 2);
  EXPECT_EQ(e["modules"], 1);
  EXPECT_NE(e["peer"].get<std::string>().find("127.0.0.1:"), std::string::npos);
  for (const char* k : {"last_seen_ns", "connected_since_ns", "config_sha256", "backlog_batches",
                        "lost_records", "samples", "last_error"})
    EXPECT_TRUE(e.contains(k)) << k;
}

TEST_F(HttpApiTest, NowIsTheInjectedClocksWallTime) {
  clock_.set_wall(WallTime::from_ns(1'796'119'200'000'000'000));  // 2026-12-01T10:00:00Z
  HttpApiConfig c;
  c.clock = &clock_;
  start_http(std::move(c));
  EXPECT_EQ(get_json("/api/v1/edges")["server_time_ns"].get<std::int64_t>(), 1'796'119'200'000'000'000);
  clock_.advance(1500ms);
  EXPECT_EQ(get_json("/api/v1/edges")["server_time_ns"].get<std::int64_t>(), 1'796'119'201'500'000'000);
}

TEST_F(HttpApiTest, TheEdgeDetailListsItsChannels) {
  start_http();
  record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 1; }));
  const json e = get_json("/api/v1/edges/rig-01");
  EXPECT_EQ(e["id"], "rig-01");
  bool found = false;
  for (const auto& c : e["channels"])
    if (c["name"] == "BMU01_pdo3.Cell_2_Voltage") {
      found = true;
      EXPECT_EQ(c["unit"], "V");
      EXPECT_EQ(c["module"], 1);
      EXPECT_EQ(c["rig_column"], "BMU01_Cell_2_Voltage");
    }
  EXPECT_TRUE(found) << e["channels"].dump();
  EXPECT_EQ(get_json("/api/v1/edges/rig-99", 404)["error"], "unknown edge \"rig-99\"");
}

TEST_F(HttpApiTest, LatestModulesBoardAndInverterShowTheNewestValues) {
  start_http();
  for (int i = 0; i < 3; ++i) record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 3; }));
  const json latest = get_json("/api/v1/edges/rig-01/latest");
  EXPECT_EQ(latest["t"], last_t_);
  const json& v = latest["values"];
  EXPECT_EQ(v["BMU01_pdo1.CMA_Current"]["v"], (-100 + 2) * 0.1);
  EXPECT_EQ(v["BMU01_pdo1.CMA_Current"]["unit"], "A");
  EXPECT_EQ(v["BMU01_pdo1.CMA_Current"]["module"], 1);
  EXPECT_EQ(v["BMU01_pdo1.CMA_Current"]["t"], last_t_);
  EXPECT_EQ(v["board.temp1_c"]["v"], 21.0);

  const json modules = get_json("/api/v1/edges/rig-01/modules");
  ASSERT_EQ(modules["modules"].size(), 1u);
  const json& m = modules["modules"][0];
  EXPECT_EQ(m["module"], 1);
  EXPECT_EQ(m["voltage_v"], 4802 * 0.01);
  EXPECT_EQ(m["current_a"], -98 * 0.1);
  ASSERT_EQ(m["cells_v"].size(), 14u);
  EXPECT_EQ(m["cells_v"][0], 170 * 0.01 + 2.2);
  EXPECT_EQ(m["cells_v"][2], 174 * 0.01 + 2.2);
  EXPECT_TRUE(m["cells_v"][3].is_null());
  EXPECT_EQ(m["temps_c"].size(), 7u);
  EXPECT_TRUE(m["soc_pct"].is_null());
  EXPECT_GE(m["age_ms"].get<std::int64_t>(), 0);

  const json board = get_json("/api/v1/edges/rig-01/board");
  EXPECT_EQ(board["temp1_c"], 21.0);
  EXPECT_EQ(board["pressure"], 1.01);
  EXPECT_TRUE(board["temp2_c"].is_null());
  const json inverter = get_json("/api/v1/edges/rig-01/inverter");
  EXPECT_EQ(inverter["dc_link_power_kw"], -0.5);
  EXPECT_EQ(inverter["battery_voltage_v"], 330.0);
  EXPECT_EQ(inverter["t"], last_t_);
  EXPECT_TRUE(inverter["events"].is_array());
}

TEST_F(HttpApiTest, SeriesAreRawForFewPointsAndDownsampledForMany) {
  start_http();
  for (int i = 0; i < 40; ++i) record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 40; }));
  const json raw =
      get_json("/api/v1/edges/rig-01/series?channel=board.temp1_c&from=0&to=" + std::to_string(now_ns()));
  EXPECT_EQ(raw["channel"], "board.temp1_c");
  EXPECT_EQ(raw["unit"], "degC");
  EXPECT_EQ(raw["downsampled"], false);
  ASSERT_EQ(raw["points"].size(), 40u);
  EXPECT_EQ(raw["points"][0][1], 20.0);
  EXPECT_EQ(raw["points"][39][1], 20.0 + 0.5 * 39);
  EXPECT_EQ(raw["points"][39][0], last_t_);
  // Default range (the last hour) sees them too.
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/series?channel=board.temp1_c")["points"].size(), 40u);
  const json down = get_json("/api/v1/edges/rig-01/series?channel=board.temp1_c&points=5&from=0&to=" +
                             std::to_string(now_ns()));
  EXPECT_EQ(down["downsampled"], true);
  EXPECT_GT(down["bucket_ns"].get<std::int64_t>(), 0);
  ASSERT_LE(down["buckets"].size(), 5u);
  std::uint64_t count = 0;
  double lo = 1e9, hi = -1e9;
  for (const auto& b : down["buckets"]) {
    ASSERT_EQ(b.size(), 5u);  // [t, min, max, mean, count]
    count += b[4].get<std::uint64_t>();
    lo = std::min(lo, b[1].get<double>());
    hi = std::max(hi, b[2].get<double>());
    EXPECT_LE(b[1].get<double>(), b[3].get<double>());
    EXPECT_LE(b[3].get<double>(), b[2].get<double>());
  }
  EXPECT_EQ(count, 40u);
  EXPECT_EQ(lo, 20.0);
  EXPECT_EQ(hi, 20.0 + 0.5 * 39);
}

TEST_F(HttpApiTest, BadQueriesAreClientErrorsWithAReason) {
  start_http();
  record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 1; }));
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/series", 400)["error"], "parameter channel is required");
  EXPECT_NE(
      get_json("/api/v1/edges/rig-01/series?channel=nope", 404)["error"].get<std::string>().find("nope"),
      std::string::npos);
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/series?channel=board.temp1_c&points=0", 400)["error"],
            "points must be between 1 and 10000");
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/series?channel=board.temp1_c&from=abc", 400)["error"],
            "parameter from=\"abc\" is not an integer");
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/events?from=10&to=5", 400)["error"], "from must not be after to");
  EXPECT_EQ(get_json("/api/v1/edges/nobody/series?channel=x", 404)["error"],
            "store: unknown edge \"nobody\"");
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/export?format=xml", 400)["error"], "format must be csv or jsonl");
  EXPECT_TRUE(get_json("/api/v1/nothing", 404).contains("error"));
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/export?from=0&to=1000", 404)["error"],
            "no data of \"rig-01\" in the range");
}

TEST_F(HttpApiTest, EventsAreListedInTimeOrderFilteredByKind) {
  start_http();
  record_block(state_event("normal", "warning", "warning").dump());
  record_block(R"({"kind":"action","action":"fan_on","reason":{"level":"warning"}})");
  record_block(state_event("warning", "dangerous", "dangerous").dump());
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 3; }));
  const json all = get_json("/api/v1/edges/rig-01/events");
  ASSERT_EQ(all["events"].size(), 3u);
  EXPECT_EQ(all["events"][0]["kind"], "state");
  EXPECT_EQ(all["events"][0]["event"]["to"], "warning");
  EXPECT_EQ(all["events"][1]["event"]["action"], "fan_on");
  EXPECT_LE(all["events"][0]["t"].get<std::int64_t>(), all["events"][1]["t"].get<std::int64_t>());
  EXPECT_EQ(all["truncated"], false);
  const json states = get_json("/api/v1/edges/rig-01/events?kind=state");
  ASSERT_EQ(states["events"].size(), 2u);
  EXPECT_EQ(states["events"][1]["event"]["to"], "dangerous");
  const json first = get_json("/api/v1/edges/rig-01/events?limit=1");
  ASSERT_EQ(first["events"].size(), 1u);
  EXPECT_EQ(first["truncated"], true);
  EXPECT_EQ(get_json("/api/v1/edges/rig-01")["state"], "dangerous");
}

TEST_F(HttpApiTest, TheExportIsADownloadInTheRigLayout) {
  start_http();
  for (int i = 0; i < 5; ++i) {
    record_block(i == 2 ? state_event("normal", "warning", "warning").dump() : "");
    std::this_thread::sleep_for(5ms);
  }
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 5; }));
  auto c = client();
  const std::string range =
      "from=" + std::to_string(last_t_ - 60'000'000'000) + "&to=" + std::to_string(last_t_ + 2'000'000'000);
  // The rig's columns by default; the converted board values and CurrentState when asked.
  auto rig_layout = c.Get("/api/v1/edges/rig-01/export?" + range + "&interval_s=1&utc=1");
  ASSERT_TRUE(rig_layout);
  ASSERT_EQ(rig_layout->status, 200) << rig_layout->body;
  const std::string rig_header = rig_layout->body.substr(0, rig_layout->body.find('\n') + 1);
  EXPECT_NE(rig_header.find(",modbus_Voltage,pcan_isCMATempVio,"), std::string::npos) << rig_header;
  EXPECT_NE(rig_header.find(",pcan_isModbusPowerViolated,warning,dangerous\r\n"), std::string::npos)
      << rig_header;
  EXPECT_EQ(get_json("/api/v1/edges/rig-01/export?" + range + "&board=celsius", 400)["error"],
            "board must be raw or converted");
  auto csv = c.Get("/api/v1/edges/rig-01/export?" + range + "&interval_s=1&utc=1&board=converted&extra=1");
  ASSERT_TRUE(csv);
  ASSERT_EQ(csv->status, 200) << csv->body;
  EXPECT_EQ(csv->get_header_value("Content-Type"), "text/csv; charset=utf-8");
  EXPECT_NE(csv->get_header_value("Content-Disposition").find("attachment; filename=\"rig-01-"),
            std::string::npos);
  std::istringstream lines(csv->body);
  std::string header, row;
  std::getline(lines, header);
  EXPECT_EQ(header.rfind("date,time,", 0), 0u) << header;
  EXPECT_NE(header.find("BMU01_CMA_Voltage"), std::string::npos) << header;
  EXPECT_NE(header.find("Ardu_Temp1"), std::string::npos) << header;
  EXPECT_NE(header.find("CurrentState"), std::string::npos) << header;
  int rows = 0;
  std::string last;
  while (std::getline(lines, row)) {
    ++rows;
    last = row;
    EXPECT_NE(row.rfind("date,", 0), 0u);  // one header only
  }
  EXPECT_GE(rows, 1);
  EXPECT_EQ(std::to_string(rows), csv->get_header_value("X-Cellguard-Rows"));
  EXPECT_EQ(last.back(), '\r') << "CRLF line ends, as the rig's files";
  EXPECT_NE(last.find("22.0"), std::string::npos) << last;  // board.temp1_c of the last block

  auto jsonl = c.Get("/api/v1/edges/rig-01/export?" + range + "&format=jsonl");
  ASSERT_TRUE(jsonl);
  ASSERT_EQ(jsonl->status, 200) << jsonl->body;
  EXPECT_NE(jsonl->get_header_value("Content-Disposition").find(".jsonl\""), std::string::npos);
  std::istringstream jl(jsonl->body);
  int samples = 0, events = 0;
  while (std::getline(jl, row)) {
    const json j = json::parse(row, nullptr, false);
    ASSERT_TRUE(j.is_object()) << row;
    if (j.contains("event"))
      ++events;
    else
      ++samples;
  }
  EXPECT_EQ(events, 1);
  EXPECT_EQ(samples, 5 * (2 + 3 + 4) + 1);  // per block: 2 + 3 signals, 4 samples; one safety.state
}

// A live stream's events as they arrive: (event name, data) pairs.
class StreamReader {
 public:
  StreamReader(std::uint16_t port, const std::string& path) {
    thread_ = std::thread([this, port, path] {
      httplib::Client c("127.0.0.1", port);
      c.set_read_timeout(10, 0);
      c.Get(path, [this](const char* data, std::size_t n) {
        std::lock_guard lock(mutex_);
        buffer_.append(data, n);
        for (std::size_t end; (end = buffer_.find("\n\n")) != std::string::npos;) {
          const std::string block = buffer_.substr(0, end);
          buffer_.erase(0, end + 2);
          std::string event, payload;
          std::istringstream lines(block);
          for (std::string line; std::getline(lines, line);) {
            if (line.rfind("event: ", 0) == 0) event = line.substr(7);
            if (line.rfind("data: ", 0) == 0) payload = line.substr(6);
          }
          if (!event.empty())
            events_.push_back(
                {event, json::parse(payload, nullptr, false), std::chrono::steady_clock::now()});
        }
        cv_.notify_all();
        return !stop_;
      });
    });
  }
  ~StreamReader() {
    stop_ = true;
    thread_.join();
  }
  struct Item {
    std::string event;
    json data;
    std::chrono::steady_clock::time_point at;
  };
  // The first item after index `from` that satisfies `pred`, waiting up to `timeout`.
  std::optional<Item> wait(std::size_t from, const std::function<bool(const Item&)>& pred,
                           std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    std::optional<Item> found;
    cv_.wait_for(lock, timeout, [&] {
      for (std::size_t i = from; i < events_.size(); ++i)
        if (pred(events_[i])) {
          found = events_[i];
          return true;
        }
      return false;
    });
    return found;
  }
  std::size_t size() {
    std::lock_guard lock(mutex_);
    return events_.size();
  }

 private:
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::condition_variable cv_;
  std::string buffer_;
  std::vector<Item> events_;
};

TEST_F(HttpApiTest, TheStreamDeliversANewValueWithinOneSecond) {
  start_http();
  record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 1; }));
  StreamReader stream(http_->port(), "/api/v1/stream?edge=rig-01");
  ASSERT_TRUE(stream.wait(
      0, [](const auto& i) { return i.event == "edges"; }, 3s))
      << "no edges event";
  ASSERT_TRUE(stream.wait(
      0, [](const auto& i) { return i.event == "latest"; }, 3s))
      << "no latest event";
  for (int round = 0; round < 3; ++round) {
    const std::size_t seen = stream.size();
    const auto t0 = std::chrono::steady_clock::now();
    record_block(round == 1 ? state_event("normal", "warning", "warning").dump() : "");
    const double expected = 20.0 + 0.5 * (next_ - 1);
    auto item = stream.wait(
        seen,
        [&](const auto& i) {
          return i.event == "latest" && i.data["values"]["board.temp1_c"]["v"] == expected;
        },
        3s);
    ASSERT_TRUE(item) << "round " << round;
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(item->at - t0).count();
    EXPECT_LT(ms, 1000) << "round " << round;
    std::printf("stream: value %d recorded -> seen in the browser's stream after %lld ms\n", round,
                static_cast<long long>(ms));
    if (round == 1) {
      auto ev = stream.wait(
          seen, [](const auto& i) { return i.event == "event"; }, 1s);
      ASSERT_TRUE(ev);
      EXPECT_EQ(ev->data["kind"], "state");
      EXPECT_EQ(ev->data["edge"], "rig-01");
      EXPECT_EQ(ev->data["event"]["to"], "warning");
      auto edges = stream.wait(
          seen, [](const auto& i) { return i.event == "edges" && i.data["edges"][0]["state"] == "warning"; },
          2s);
      EXPECT_TRUE(edges) << "the edges event shows the new state";
    }
  }
}

TEST_F(HttpApiTest, HealthAndMetricsReportTheIngest) {
  start_http();
  for (int i = 0; i < 4; ++i) record_block();
  start_sender();
  ASSERT_TRUE(wait_for([&] { return stored() == 4; }));
  const json health = get_json("/api/v1/health");
  EXPECT_EQ(health["ok"], true);
  EXPECT_EQ(health["version"], "0.1.0");
  EXPECT_EQ(health["edges"], 1);
  EXPECT_EQ(health["connected"], 1);
  EXPECT_EQ(health["login_required"], false);
  EXPECT_GT(health["store"]["file_bytes"].get<std::uint64_t>(), 0u);
  EXPECT_GT(health["store"]["samples"].get<std::uint64_t>(), 0u);
  auto c = client();
  auto r = c.Get("/metrics");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(r->get_header_value("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  // Every line is a comment or `name{labels} value`; the values agree with the ingest.
  const auto parsed = testing::parse_prometheus(r->body);
  for (const auto& e : parsed.errors) ADD_FAILURE() << "not Prometheus text: " << e;
  const std::map<std::string, double>& values = parsed.samples;
  EXPECT_EQ(values.at("cellguard_ingest_batches_total"), static_cast<double>(ingest_->stats().batches));
  EXPECT_EQ(values.at("cellguard_ingest_batches_total"), 4);
  EXPECT_EQ(values.at("cellguard_edges_connected"), 1);
  EXPECT_EQ(values.at("cellguard_edge_connected{edge=\"rig-01\"}"), 1);
  EXPECT_EQ(values.at("cellguard_edge_state{edge=\"rig-01\",state=\"normal\"}"),
            1);  // no state report: the initial NORMAL
  EXPECT_GT(values.at("cellguard_ingest_samples_total"), 0);
  EXPECT_GT(values.at("cellguard_store_bytes"), 0);
  EXPECT_GE(values.at("cellguard_http_requests_total"), 2);
  for (const char* name : {"cellguard_ingest_duplicates_total", "cellguard_ingest_commits_total",
                           "cellguard_ingest_commit_failures_total", "cellguard_ingest_last_commit_seconds"})
    EXPECT_TRUE(values.count(name)) << name;
  for (const char* name : {"cellguard_edge_backlog_batches", "cellguard_edge_lost_records_total",
                           "cellguard_edge_samples_total", "cellguard_edge_last_seen_seconds"})
    EXPECT_TRUE(values.count(std::string(name) + "{edge=\"rig-01\"}")) << name;
}

TEST_F(HttpApiTest, ALoginIsNeededWhenRequiredAndOnlyThen) {
  HttpApiConfig c;
  c.require_login = true;
  auto hash = hash_password("s3cret", kMinPbkdf2Iterations);
  ASSERT_TRUE(hash);
  c.auth.users.push_back({"lab", *hash});
  c.auth.max_failures = 3;
  c.web_root = (dir_ / "web").string();
  fs::create_directories(c.web_root);
  std::ofstream(dir_ / "web" / "index.html") << "<html>login page</html>";
  start_http(c);
  EXPECT_TRUE(http_->login_required());
  auto cl = client();
  EXPECT_EQ(cl.Get("/api/v1/edges")->status, 401);
  EXPECT_EQ(cl.Get("/metrics")->status, 401);
  EXPECT_EQ(cl.Get("/api/v1/stream")->status, 401);
  EXPECT_EQ(cl.Get("/api/v1/health")->status, 200);
  EXPECT_EQ(cl.Get("/")->body, "<html>login page</html>");  // the login page's assets
  EXPECT_EQ(cl.Post("/api/v1/login", R"({"user":"lab","password":"nope"})", "application/json")->status, 401);
  EXPECT_EQ(cl.Post("/api/v1/login", "not json", "application/json")->status, 400);
  auto ok = cl.Post("/api/v1/login", R"({"user":"lab","password":"s3cret"})", "application/json");
  ASSERT_EQ(ok->status, 200) << ok->body;
  const std::string cookie = ok->get_header_value("Set-Cookie");
  EXPECT_NE(cookie.find("HttpOnly"), std::string::npos);
  EXPECT_NE(cookie.find("SameSite=Strict"), std::string::npos);
  const std::string session = cookie.substr(0, cookie.find(';'));
  httplib::Headers with{{"Cookie", "other=1; " + session}};
  EXPECT_EQ(cl.Get("/api/v1/edges", with)->status, 200);
  EXPECT_EQ(cl.Get("/metrics", with)->status, 200);
  EXPECT_EQ(json::parse(cl.Get("/api/v1/session", with)->body)["user"], "lab");
  EXPECT_EQ(cl.Get("/api/v1/edges", {{"Cookie", session + "0"}})->status, 401);
  EXPECT_EQ(cl.Post("/api/v1/logout", with, "", "application/json")->status, 200);
  EXPECT_EQ(cl.Get("/api/v1/edges", with)->status, 401);
  // The rate limit: three failures lock this client out, even with the right password.
  for (int i = 0; i < 3; ++i)
    cl.Post("/api/v1/login", R"({"user":"lab","password":"x"})", "application/json");
  auto locked = cl.Post("/api/v1/login", R"({"user":"lab","password":"s3cret"})", "application/json");
  EXPECT_EQ(locked->status, 429);
  EXPECT_FALSE(locked->get_header_value("Retry-After").empty());
}

TEST_F(HttpApiTest, OnLoopbackWithoutRequireLoginNoLoginIsAsked) {
  start_http();
  EXPECT_FALSE(http_->login_required());
  EXPECT_EQ(client().Get("/api/v1/edges")->status, 200);
}

TEST_F(HttpApiTest, ASecondServerOnAPortInUseIsRefused) {
  start_http();
  HttpApiConfig c;
  c.port = http_->port();
  auto second = HttpApi::start(c, *store_, *ingest_, *live_, nullptr);
  ASSERT_FALSE(second) << "two servers listen on " << c.port;
  EXPECT_NE(second.error().message.find("in use"), std::string::npos) << second.error().message;
}

TEST_F(HttpApiTest, BeyondLoopbackTheServerRefusesToRunWithoutUsers) {
  HttpApiConfig c;
  c.host = "0.0.0.0";
  auto h = HttpApi::start(c, *store_, *ingest_, *live_, nullptr);
  ASSERT_FALSE(h);
  EXPECT_NE(h.error().message.find("no [[users]]"), std::string::npos) << h.error().message;
}

TEST_F(HttpApiTest, TheDashboardsFilesAreServedAndOtherPathsGetIndexHtml) {
  HttpApiConfig c;
  c.web_root = (dir_ / "web").string();
  fs::create_directories(dir_ / "web" / "assets");
  std::ofstream(dir_ / "web" / "index.html") << "<html>dashboard</html>";
  std::ofstream(dir_ / "web" / "assets" / "app.js") << "console.log(1)";
  start_http(c);
  auto cl = client();
  auto js = cl.Get("/assets/app.js");
  ASSERT_TRUE(js);
  EXPECT_EQ(js->status, 200);
  EXPECT_EQ(js->body, "console.log(1)");
  EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos);
  EXPECT_EQ(cl.Get("/")->body, "<html>dashboard</html>");
  auto route = cl.Get("/edges/rig-01/history");
  ASSERT_TRUE(route);
  EXPECT_EQ(route->status, 200);
  EXPECT_EQ(route->body, "<html>dashboard</html>");
  EXPECT_EQ(cl.Get("/api/v1/unknown")->status, 404);
}

}  // namespace
}  // namespace cellguard::server
