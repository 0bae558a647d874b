// Lossless delivery under faults (issue 5 item 5): `cellguard sim`, `cellguard edge`,
// `cellguard fault-proxy` and `cellguard server` as real processes over mutual TLS. The proxy cuts,
// resets, stalls and delays the connections at random (seeded); the server and the edge are killed
// with SIGKILL while streaming; the server's disk fills up; the edge's clock jumps.
//
// After each run the edge resumes (its own sender, in this process, on the edge's recording) until
// the server holds everything, and the per-edge sequence sets are compared: every block the edge
// recorded is on the server exactly once (0 lost, 0 duplicated), and the samples of one channel
// counted on both sides agree. The counts are printed.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <asio/ssl.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "ipc/line_socket.h"
#include "pki/pki.h"
#include "pki/tls.h"
#include "recorder/recorder.h"
#include "store/store.h"
#include "support/cellguard_process.h"
#include "support/child_process.h"
#include "support/rig_edge_config.h"
#include "support/small_fs.h"
#include "uplink/sender.h"

namespace cellguard {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::ChildProcess;
using testing::wait_until;
using namespace std::chrono_literals;

using testing::binary;
using testing::request;
using testing::source_dir;

struct Counts {
  std::uint64_t edge_blocks = 0, server_batches = 0, lost = 0, duplicated = 0, extra = 0;
  std::uint64_t edge_frames = 0, server_samples = 0;  // of BMU01_pdo1.CMA_Current
};

// The simulator, a server behind a fault proxy, and an edge streaming to it, in a temporary folder.
class Deployment {
 public:
  explicit Deployment(const std::string& name) {
    dir_ = fs::temp_directory_path() / ("cellguard-uplink-fault-" + std::to_string(::getpid()) + "-" + name);
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    pki_ = dir_ / "pki";
    EXPECT_TRUE(pki::init_ca(pki_));
    pki::IssueOptions server;
    server.kind = pki::CertKind::server;
    server.name = "server";
    server.subject_alt_names = {"127.0.0.1"};
    EXPECT_TRUE(pki::issue(pki_, server));
    pki::IssueOptions edge;
    edge.name = "rig-01";
    EXPECT_TRUE(pki::issue(pki_, edge));
    data_ = dir_ / "server-data";
  }
  ~Deployment() {
    edge_.reset();
    proxy_.reset();
    server_.reset();
    sim_.reset();
    if (!::testing::Test::HasFailure()) fs::remove_all(dir_);
  }

  const fs::path& dir() const { return dir_; }
  void set_data_dir(fs::path data) { data_ = std::move(data); }

  void start_sim() {
    sim_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary(), "sim", "--modules", "4", "--control", (dir_ / "sim.sock").string(),
                                 "--board-link", (dir_ / "board").string(), "--inverter-tcp-port", "0"},
        (dir_ / "sim.log").string());
    ASSERT_TRUE(sim_->ready()) << sim_->log();
  }

  void start_server() {
    const std::string listen = "127.0.0.1:" + std::to_string(server_port_);
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary(), "server", "--data", data_.string(), "--listen", listen,
                                 "--pki-dir", pki_.string(), "--name", "server"},
        (dir_ / "server.log").string());
    ASSERT_TRUE(server_->ready()) << server_->log();
    const std::string at = server_->ready_line()["listen"];
    server_port_ = static_cast<std::uint16_t>(std::stoi(at.substr(at.rfind(':') + 1)));
  }
  void kill_server() { server_->kill_hard(); }
  std::string server_log() const {
    std::ifstream in(dir_ / "server.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  void stop_server() { server_->stop(); }

  void start_proxy(std::uint64_t seed, const std::string& mode) {
    proxy_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{binary(),      "fault-proxy",
                                 "--listen",    "127.0.0.1:0",
                                 "--target",    "127.0.0.1:" + std::to_string(server_port_),
                                 "--seed",      std::to_string(seed),
                                 "--mode",      mode,
                                 "--cut-every", "1s..3s",
                                 "--stall",     "1s..7s",
                                 "--outage",    "0.5s..2s",
                                 "--delay",     "0..30ms",
                                 "--control",   (dir_ / "proxy.sock").string()},
        (dir_ / "proxy.log").string());
    ASSERT_TRUE(proxy_->ready()) << proxy_->log();
    const std::string at = proxy_->ready_line()["listen"];
    proxy_port_ = static_cast<std::uint16_t>(std::stoi(at.substr(at.rfind(':') + 1)));
  }
  json proxy(const json& req) { return request((dir_ / "proxy.sock").string(), req); }

  std::string write_edge_config() {
    toml::table config =
        testing::rig_edge_config(sim_->ready_line(), dir_, 4, "rig-01", (dir_ / "board").string());
    config["recording"].as_table()->insert_or_assign("path", recording().string());
    auto* up = config["uplink"].as_table();
    up->insert_or_assign("server", "127.0.0.1:" + std::to_string(proxy_port_));
    up->insert_or_assign("pki_dir", pki_.string());
    up->insert_or_assign("dead_after_s", 3);
    up->insert_or_assign("backoff_max_s", 2);
    const std::string path = (dir_ / "edge.toml").string();
    std::ofstream(path) << config << "\n";
    return path;
  }

  // `faketime_file`: run the edge under libfaketime with a wall-clock offset read from this file
  // (the steady clock stays real), so the test can make the edge's clock jump.
  void start_edge(const std::string& faketime_file = "") {
    const std::string config = write_edge_config();
    if (!faketime_file.empty()) {
      ::setenv("LD_PRELOAD", "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1", 1);
      ::setenv("FAKETIME_TIMESTAMP_FILE", faketime_file.c_str(), 1);
      ::setenv("FAKETIME_CACHE_DURATION", "1", 1);
      ::setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
      ::setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
    }
    edge_ = std::make_unique<ChildProcess>(std::vector<std::string>{binary(), "edge", "--config", config},
                                           (dir_ / "edge.log").string());
    if (!faketime_file.empty()) {
      for (const char* v : {"LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE", "FAKETIME_CACHE_DURATION",
                            "FAKETIME_DONT_FAKE_MONOTONIC", "ASAN_OPTIONS"})
        ::unsetenv(v);
    }
    ASSERT_TRUE(edge_->ready()) << edge_->log();
  }
  void kill_edge() { edge_->kill_hard(); }
  void stop_edge() { edge_->stop(); }
  json edge_status() { return request((dir_ / "edge.sock").string(), {{"cmd", "status"}}); }
  std::uint64_t edge_acked() {
    const json s = edge_status();
    return s.value("ok", false) ? s["status"]["uplink"].value("batches_acked", 0ull) : 0;
  }

  fs::path recording() const { return dir_ / "edge.sqlite"; }

  // The edge resumes after its run (its own sender on its recording, straight to the server) until
  // the server holds everything it recorded.
  void drain() {
    uplink::SenderConfig c;
    c.recording_path = recording().string();
    c.host = "127.0.0.1";
    c.port = server_port_;
    auto files = pki::TlsFiles::from_ca_dir(pki_, "rig-01");
    files.crl.clear();
    auto context = pki::client_context(files, "127.0.0.1");
    ASSERT_TRUE(context) << context.error().message;
    c.tls = std::make_shared<asio::ssl::context>(std::move(*context));
    c.hello.edge_id = "rig-01";
    auto sender = uplink::Sender::start(std::move(c));
    ASSERT_TRUE(sender) << sender.error().message;
    const bool drained = wait_until(
        [&] {
          const auto s = (*sender)->stats();
          return s.connected && s.connects > 0 && s.backlog_batches == 0;
        },
        120s);
    const auto s = (*sender)->stats();
    (*sender)->stop();
    ASSERT_TRUE(drained) << "backlog " << s.backlog_batches << ", last error: " << s.last_error;
  }

  // Compares what the edge recorded with what the server stored (servers stopped first).
  Counts compare() {
    Counts c;
    auto reader = recorder::RecordingReader::open(recording().string());
    EXPECT_TRUE(reader) << reader.error().message;
    if (!reader) return c;
    std::vector<std::uint64_t> edge_seqs;
    for (std::uint64_t after = 0;;) {
      auto blocks = reader->read_after(after, 500);
      EXPECT_TRUE(blocks);
      if (!blocks || blocks->empty()) break;
      for (const auto& b : *blocks) {
        edge_seqs.push_back(b.seq);
        for (const auto& f : b.frames) c.edge_frames += f.id == 0x181 ? 1 : 0;
        after = b.seq;
      }
    }
    c.edge_blocks = edge_seqs.size();
    store::SqliteStoreConfig sc;
    sc.path = store::sqlite_store_path(data_.string());
    auto st = store::open_sqlite_store(sc);
    EXPECT_TRUE(st) << st.error().message;
    if (!st) return c;
    auto ranges = (*st)->stored_seqs("rig-01");
    EXPECT_TRUE(ranges);
    std::vector<std::uint64_t> server_seqs;
    for (const auto& r : *ranges)
      for (std::uint64_t s = r.first; s <= r.last; ++s) server_seqs.push_back(s);
    c.server_batches = server_seqs.size();
    std::size_t i = 0, j = 0;
    while (i < edge_seqs.size() || j < server_seqs.size()) {
      if (j == server_seqs.size() || (i < edge_seqs.size() && edge_seqs[i] < server_seqs[j])) {
        ++c.lost;
        ++i;
      } else if (i == edge_seqs.size() || server_seqs[j] < edge_seqs[i]) {
        ++c.extra;
        ++j;
      } else {
        ++i;
        ++j;
      }
    }
    auto series = (*st)->series("rig-01", "BMU01_pdo1.CMA_Current", 0,
                                std::numeric_limits<std::int64_t>::max(), 100'000'000);
    EXPECT_TRUE(series) << series.error().message;
    if (series) c.server_samples = series->points.size();
    c.duplicated = c.server_samples > c.edge_frames ? c.server_samples - c.edge_frames : 0;
    return c;
  }

  void finish_and_check(const char* what) {
    drain();
    stop_server();
    const Counts c = compare();
    std::printf(
        "%s: edge recorded %llu batches, server stored %llu; lost %llu, duplicated %llu, not recorded %llu; "
        "BMU01_pdo1 frames %llu, server samples of BMU01_pdo1.CMA_Current %llu\n",
        what, static_cast<unsigned long long>(c.edge_blocks),
        static_cast<unsigned long long>(c.server_batches), static_cast<unsigned long long>(c.lost),
        static_cast<unsigned long long>(c.duplicated), static_cast<unsigned long long>(c.extra),
        static_cast<unsigned long long>(c.edge_frames), static_cast<unsigned long long>(c.server_samples));
    EXPECT_GT(c.edge_blocks, 0u);
    EXPECT_EQ(c.lost, 0u);
    EXPECT_EQ(c.extra, 0u);
    EXPECT_EQ(c.duplicated, 0u);
    EXPECT_EQ(c.server_samples, c.edge_frames);
  }

 private:
  fs::path dir_, pki_, data_;
  std::uint16_t server_port_ = 0, proxy_port_ = 0;
  std::unique_ptr<ChildProcess> sim_, server_, proxy_, edge_;
};

// Waits until the edge has at least `more` batches (about 200 ms each) acknowledged beyond `from`.
bool acked_beyond(Deployment& d, std::uint64_t from, std::chrono::milliseconds timeout = 60s,
                  std::uint64_t more = 10) {
  return wait_until([&] { return d.edge_acked() >= from + more; }, timeout);
}

TEST(UplinkFaults, RandomCutsResetsStallsAndDelaysLoseAndDuplicateNothing) {
  Deployment d("random");
  d.start_sim();
  d.start_server();
  d.start_proxy(20261201, "random");
  d.start_edge();
  ASSERT_TRUE(acked_beyond(d, 0)) << d.edge_status().dump();
  // ~25 s of random faults, reproducible with the seed.
  const auto until = std::chrono::steady_clock::now() + 25s;
  while (std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100ms);
  const json stats = d.proxy({{"cmd", "stats"}});
  std::printf("fault proxy: %s\n", stats.dump().c_str());
  d.proxy({{"cmd", "mode"}, {"mode", "pass"}});
  const std::uint64_t acked = d.edge_acked();
  ASSERT_TRUE(acked_beyond(d, acked)) << d.edge_status().dump();
  std::printf("edge uplink: %s\n", d.edge_status()["status"]["uplink"].dump().c_str());
  d.stop_edge();
  d.finish_and_check("random faults");
}

TEST(UplinkFaults, KillingTheServerAndTheEdgeWhileStreamingLosesNothing) {
  Deployment d("kill");
  d.start_sim();
  d.start_server();
  d.start_proxy(1, "pass");
  d.start_edge();
  ASSERT_TRUE(acked_beyond(d, 0));
  for (int round = 0; round < 2; ++round) {
    d.kill_server();
    std::this_thread::sleep_for(1500ms);  // the edge records while the server is gone
    d.start_server();
    const std::uint64_t acked = d.edge_acked();
    ASSERT_TRUE(acked_beyond(d, acked)) << d.edge_status().dump();
    d.kill_edge();
    d.start_edge();
    ASSERT_TRUE(acked_beyond(d, 0)) << d.edge_status().dump();
  }
  d.stop_edge();
  d.finish_and_check("kill -9 of server and edge");
}

TEST(UplinkFaults, AFullServerDiskLosesNothingOnceSpaceReturns) {
  testing::SmallFilesystem small(24u << 20);
  if (!small.mounted()) GTEST_SKIP() << small.reason();
  Deployment d("diskfull");
  d.set_data_dir(fs::path(small.path()) / "data");
  d.start_sim();
  d.start_server();
  d.start_proxy(1, "pass");
  d.start_edge();
  ASSERT_TRUE(acked_beyond(d, 0));
  // Fill the disk: commits fail, nothing is acknowledged, the edge keeps its backlog.
  const fs::path filler = fs::path(small.path()) / "filler";
  {
    std::ofstream out(filler, std::ios::binary);
    std::vector<char> block(1 << 16, 'x');
    while (out.write(block.data(), static_cast<std::streamsize>(block.size()))) {
    }
  }
  ASSERT_TRUE(
      wait_until([&] { return d.edge_status()["status"]["uplink"].value("disconnects", 0ull) > 0; }, 60s))
      << d.edge_status().dump();
  // The server said why: its commits failed for lack of space.
  ASSERT_TRUE(wait_until([&] { return d.server_log().find("commit of") != std::string::npos; }, 30s))
      << d.server_log();
  std::this_thread::sleep_for(2s);
  fs::remove(filler);
  const std::uint64_t acked = d.edge_acked();
  ASSERT_TRUE(acked_beyond(d, acked, 60s)) << d.edge_status().dump();
  d.stop_edge();
  d.finish_and_check("server disk full");
}

TEST(UplinkFaults, ClockJumpsOnTheEdgeLoseNothing) {
  if (!fs::exists("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"))
    GTEST_SKIP() << "libfaketime (Debian package faketime) is not installed";
  Deployment d("clock");
  const std::string offset = (d.dir() / "faketime").string();
  std::ofstream(offset) << "+0\n";
  d.start_sim();
  d.start_server();
  d.start_proxy(1, "pass");
  d.start_edge(offset);
  ASSERT_TRUE(acked_beyond(d, 0));
  for (const char* jump : {"+2h", "-1h", "+0"}) {
    std::ofstream(offset) << jump << "\n";
    std::this_thread::sleep_for(3s);
    const std::uint64_t acked = d.edge_acked();
    ASSERT_TRUE(acked_beyond(d, acked)) << "after a jump to " << jump << ": " << d.edge_status().dump();
  }
  d.stop_edge();
  d.finish_and_check("edge clock jumps");
}

}  // namespace
}  // namespace cellguard
