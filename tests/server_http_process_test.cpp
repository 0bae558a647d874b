// The HTTP API of the whole system (issue 6 item 1): `cellguard sim`, `cellguard edge` and
// `cellguard server --http` as real processes (the uplink in plaintext over loopback). The API must
// show the edge connected with its modules, and live values that change; a cell drifting into the
// warning band shows up as the edge's state with its reason, and as a webhook alarm.
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "ipc/line_socket.h"
#include "store/store.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::wait_until;
using namespace std::chrono_literals;

using testing::binary;

class ServerHttpProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("cellguard-server-http-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    edge_.reset();
    sim_.reset();
    server_.reset();
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string edge_config(const std::string& server) {
    toml::table config =
        testing::rig_edge_config(sim_->ready_line(), dir_, 4, "rig-01", (dir_ / "board").string());
    auto* up = config["uplink"].as_table();
    up->insert_or_assign("server", server);
    up->insert_or_assign("plaintext", true);
    const std::string path = (dir_ / "edge.toml").string();
    std::ofstream(path) << config << "\n";
    return path;
  }

  fs::path dir_;
  std::unique_ptr<ChildProcess> server_, sim_, edge_;
};

// Webhook receiver: records the alarms POSTed to /hook.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex_);
      alarms_.push_back(json::parse(req.body, nullptr, false));
      res.status = 200;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::vector<json> alarms() {
    std::lock_guard lock(mutex_);
    return alarms_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  std::mutex mutex_;
  std::vector<json> alarms_;
  int port_ = 0;
};

// Issue 12 item 2: SIGTERM while a big export runs, a slow client sends its head a line at a time
// and a live stream is open: the process exits cleanly within 5 s (it hung joining threads).
TEST_F(ServerHttpProcessTest, SigtermDuringABigExportExitsWithinFiveSeconds) {
  const std::string data = (dir_ / "server-data").string();
  fs::create_directories(data);
  {
    store::SqliteStoreConfig sc;
    sc.path = store::sqlite_store_path(data);
    auto st = store::open_sqlite_store(sc);
    ASSERT_TRUE(st) << st.error().message;
    store::EdgeInfo info;
    info.edge_id = "rig-01";
    info.channels = {{1, "board.temp1_c", "degC", 0, "Ardu_Temp1"}};
    ASSERT_TRUE((*st)->put_edge(info));
  }
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "server", "--data", data, "--listen", "127.0.0.1:0", "--plaintext",
                               "--http", "127.0.0.1:0"},
      (dir_ / "server.log").string());
  ASSERT_TRUE(server_->ready()) << server_->log();
  const std::string http = server_->ready_line().value("http", "");
  const int port = std::stoi(http.substr(http.rfind(':') + 1));
  auto connect = [&] {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    return fd;
  };
  auto send = [](int fd, const std::string& s) { ::send(fd, s.data(), s.size(), MSG_NOSIGNAL); };
  // A year at one row an hour: within the limits, ~105,000 store windows to read.
  const auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const int exporter = connect(), slow = connect(), stream = connect();
  send(exporter, "GET /api/v1/edges/rig-01/export?format=jsonl&interval_s=1h&from=" +
                     std::to_string(now - 365LL * 86400 * 1'000'000'000) + "&to=" + std::to_string(now) +
                     " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  send(slow, "GET /api/v1/health HTTP/1.1\r\n");
  send(stream, "GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  std::this_thread::sleep_for(300ms);
  pollfd p{exporter, POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 0), 0) << "the export answered before the signal: not a running export";
  const auto start = std::chrono::steady_clock::now();
  const int code = server_->stop(5s);  // SIGKILL (exit 137) after 5 s
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(code, 0) << server_->log();
  EXPECT_LT(took, 5s);
  std::printf("SIGTERM to exit: %lld ms\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()));
  for (int fd : {exporter, slow, stream}) ::close(fd);
}

TEST_F(ServerHttpProcessTest, TheApiShowsTheConnectedEdgeWithModulesAndChangingValues) {
  Receiver receiver;
  const std::string config = (dir_ / "server.toml").string();
  std::ofstream(config) << "[alarms]\nwebhook_url = \"http://127.0.0.1:" << receiver.port()
                        << "/hook\"\nretry_initial_s = 0.1\n";
  server_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "server", "--data", (dir_ / "server-data").string(), "--listen",
                               "127.0.0.1:0", "--plaintext", "--http", "127.0.0.1:0", "--config", config},
      (dir_ / "server.log").string());
  ASSERT_TRUE(server_->ready()) << server_->log();
  const std::string listen = server_->ready_line()["listen"];
  const std::string http = server_->ready_line().value("http", "");
  ASSERT_FALSE(http.empty()) << server_->ready_line().dump();
  const int http_port = std::stoi(http.substr(http.rfind(':') + 1));
  EXPECT_EQ(http.substr(0, http.rfind(':')), "127.0.0.1");

  sim_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "sim", "--modules", "4", "--control", (dir_ / "sim.sock").string(),
                               "--board-link", (dir_ / "board").string(), "--inverter-tcp-port", "0"},
      (dir_ / "sim.log").string());
  ASSERT_TRUE(sim_->ready()) << sim_->log();
  edge_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{binary(), "edge", "--config", edge_config(listen)},
      (dir_ / "edge.log").string());
  ASSERT_TRUE(edge_->ready()) << edge_->log();

  httplib::Client client("127.0.0.1", http_port);
  client.set_read_timeout(10, 0);
  auto get = [&](const std::string& path) -> json {
    auto r = client.Get(path);
    if (!r || r->status != 200) return {};
    return json::parse(r->body, nullptr, false);
  };
  json edge;
  ASSERT_TRUE(wait_until(
      [&] {
        const json edges = get("/api/v1/edges");
        if (!edges.is_object() || edges["edges"].empty()) return false;
        edge = edges["edges"][0];
        return edge["connected"] == true && edge["modules"] == 4;
      },
      30s))
      << edge.dump() << "\n"
      << server_->log();
  EXPECT_EQ(edge["id"], "rig-01");
  EXPECT_EQ(edge["software_version"], "0.1.0");
  EXPECT_GT(edge["samples"].get<std::uint64_t>(), 0u);
  EXPECT_EQ(edge["state"], "normal") << edge.dump();  // the simulator's pack is healthy

  const json modules = get("/api/v1/edges/rig-01/modules");
  ASSERT_EQ(modules["modules"].size(), 4u) << modules.dump();
  for (const auto& m : modules["modules"]) {
    EXPECT_TRUE(m["voltage_v"].is_number()) << m.dump();
    EXPECT_TRUE(m["cells_v"][0].is_number()) << m.dump();
    EXPECT_LT(m["age_ms"].get<std::int64_t>(), 5000) << m.dump();
  }

  // Live values change: the newest time moves on, and some value differs.
  const json first = get("/api/v1/edges/rig-01/latest");
  ASSERT_TRUE(first.is_object());
  json later;
  ASSERT_TRUE(wait_until(
      [&] {
        later = get("/api/v1/edges/rig-01/latest");
        return later.is_object() && later["t"].get<std::int64_t>() > first["t"].get<std::int64_t>() &&
               later["values"] != first["values"];
      },
      10s));
  EXPECT_GT(later["values"].size(), 50u);
  json board;
  EXPECT_TRUE(wait_until(
      [&] {
        board = get("/api/v1/edges/rig-01/board");
        return board.is_object() && board["temp1_c"].is_number();
      },
      10s))
      << board.dump();

  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(metrics->body.find("cellguard_edge_connected{edge=\"rig-01\"} 1\n"), std::string::npos)
      << metrics->body;
  EXPECT_NE(metrics->body.find("cellguard_edges_connected 1\n"), std::string::npos);
  // The edge's CAN controller counters (issue 13 item 5) reach /metrics through its recording.
  for (const char* counter : {"cellguard_edge_can_bus_off_total{edge=\"rig-01\"} 0\n",
                              "cellguard_edge_can_error_passive_total{edge=\"rig-01\"} 0\n",
                              "cellguard_edge_can_restarts_total{edge=\"rig-01\"} 0\n",
                              "cellguard_edge_can_rx_queue_overflows_total{edge=\"rig-01\"} 0\n"})
    EXPECT_NE(metrics->body.find(counter), std::string::npos) << counter << metrics->body;

  // A cell of module 1 drifts into the warning band (>= 4.1 V, below 4.2 V): the edge's state
  // change reaches the API with its reason, and the webhook.
  auto answer = ipc::request_line((dir_ / "sim.sock").string(),
                                  json{{"cmd", "fault"},
                                       {"fault", "cell_drift"},
                                       {"module", 1},
                                       {"cell", 2},
                                       {"rate_v_per_s", 0.5},
                                       {"target_v", 4.15}}
                                      .dump(),
                                  10000);
  ASSERT_TRUE(answer) << answer.error().message;
  ASSERT_TRUE(wait_until(
      [&] {
        const json edges = get("/api/v1/edges");
        if (!edges.is_object() || edges["edges"].empty()) return false;
        edge = edges["edges"][0];
        return edge["state"] == "warning";
      },
      30s))
      << edge.dump() << "\n"
      << edge_->log();
  ASSERT_EQ(edge["reasons"].size(), 1u) << edge.dump();
  EXPECT_EQ(edge["reasons"][0]["level"], "warning");
  EXPECT_EQ(edge["reasons"][0]["module"], 1);
  EXPECT_GT(edge["state_since_ns"].get<std::int64_t>(), 0);
  json alarm;
  ASSERT_TRUE(wait_until(
      [&] {
        for (const auto& a : receiver.alarms())
          if (a.value("type", "") == "state_change" && a.value("to", "") == "warning") alarm = a;
        return alarm.is_object();
      },
      10s))
      << server_->log();
  EXPECT_EQ(alarm["edge"], "rig-01");
  EXPECT_EQ(alarm["from"], "normal");
  EXPECT_EQ(alarm["event"]["reason"]["module"], 1);
  const json events = get("/api/v1/edges/rig-01/events?kind=state");
  ASSERT_FALSE(events["events"].empty()) << events.dump();
  EXPECT_EQ(events["events"].back()["event"]["to"], "warning");

  edge_->stop();
  EXPECT_EQ(server_->stop(), 0) << server_->log();
}

}  // namespace
}  // namespace cellguard
