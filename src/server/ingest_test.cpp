// The ingest against the edge's real sender: a real recording (SQLite), real sockets on 127.0.0.1
// (plaintext and mutual TLS with certificates from a real CA folder), a real SQLite store.
#include "server/ingest.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <thread>

#include "pki/pki.h"
#include "pki/tls.h"
#include "recorder/recorder.h"
#include "server/server_test_util.h"
#include "store/store.h"
#include "uplink/protocol.h"
#include "uplink/sender.h"

namespace cellguard::server {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

// A DBC with one module message of two signals, enough to exercise the integer coding.
constexpr const char* kDbc = R"(VERSION ""
BU_: Module
BO_ 385 BMU01_pdo1: 8 Module
 SG_ CMA_Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Vector__XXX
 SG_ Min_Cell_Voltage : 32|8@1+ (0.01,2.2) [2.2|4.75] "V" Vector__XXX
)";

using testing::now_ns;
using testing::wait_for;

std::uint64_t count(const std::vector<store::SeqRange>& ranges) {
  std::uint64_t n = 0;
  for (const auto& r : ranges) n += r.last - r.first + 1;
  return n;
}

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int n = 0;
    dir_ = fs::temp_directory_path() /
           ("cellguard-ingest-test-" + std::to_string(getpid()) + "-" + std::to_string(n++));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    recorder::RecorderConfig rc;
    rc.path = (dir_ / "edge.db").string();
    rc.commit_interval_ns = 60'000'000'000;  // only flush() cuts blocks: one record() call, one block
    rc.keep_undelivered_events = true;
    auto rec = recorder::Recorder::open(rc);
    ASSERT_TRUE(rec) << rec.error().message;
    recorder_ = std::move(*rec);
    ASSERT_TRUE(recorder_->set_meta("dbc", kDbc));
    auto ch = recorder_->channel("board.temp1_c", "degC");
    ASSERT_TRUE(ch);
    temp_channel_ = *ch;
    store::SqliteStoreConfig sc;
    sc.path = (dir_ / "server" / "store.db").string();
    sc.synchronous = store::Synchronous::normal;
    auto st = store::open_sqlite_store(sc);
    ASSERT_TRUE(st) << st.error().message;
    store_ = std::move(*st);
  }
  void TearDown() override {
    sender_.reset();
    server_.reset();
    store_.reset();
    recorder_.reset();
    fs::remove_all(dir_);
  }

  // Records `blocks` blocks: each a frame of BMU01_pdo1, a board sample and an event.
  void record(int blocks) {
    for (int i = 0; i < blocks; ++i) {
      can::Frame f;
      f.timestamp_ns = now_ns();
      f.id = 385;
      f.size = 8;
      const int raw = -100 + next_;
      f.data[0] = static_cast<std::uint8_t>(raw & 0xff);
      f.data[1] = static_cast<std::uint8_t>((raw >> 8) & 0xff);
      f.data[4] = static_cast<std::uint8_t>(170 + next_ % 5);
      recorder_->record_frame(f);
      recorder_->record_sample(f.timestamp_ns, temp_channel_, 20.0 + 0.1 * next_);
      recorder_->record_event(f.timestamp_ns, "state", R"({"to":"normal"})");
      ++next_;
      ASSERT_TRUE(recorder_->flush());
    }
  }

  void start_server(std::shared_ptr<pki::TlsServerContext> tls = nullptr, std::uint16_t port = 0,
                    std::string crl_path = "") {
    IngestConfig ic;
    ic.port = port;
    ic.tls = std::move(tls);
    ic.crl_path = std::move(crl_path);
    ic.keepalive = 200ms;
    ic.dead_after = 2s;
    auto s = IngestServer::start(ic, *store_);
    ASSERT_TRUE(s) << s.error().message;
    server_ = std::move(*s);
  }

  uplink::SenderConfig sender_config(const std::string& edge_id) {
    uplink::SenderConfig c;
    c.recording_path = (dir_ / "edge.db").string();
    c.host = "127.0.0.1";
    c.port = server_->port();
    c.hello.edge_id = edge_id;
    c.keepalive = 200ms;
    c.dead_after = 2s;
    c.backoff_initial = 20ms;
    c.backoff_max = 200ms;
    c.poll = 10ms;
    c.persist_every = 20ms;
    return c;
  }

  void start_sender(uplink::SenderConfig c) {
    auto s = uplink::Sender::start(std::move(c));
    ASSERT_TRUE(s) << s.error().message;
    sender_ = std::move(*s);
  }

  std::uint64_t stored(const std::string& edge) {
    auto r = store_->stored_seqs(edge);
    return r ? count(*r) : 0;
  }

  fs::path dir_;
  std::unique_ptr<recorder::Recorder> recorder_;
  std::uint32_t temp_channel_ = 0;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<IngestServer> server_;
  std::unique_ptr<uplink::Sender> sender_;
  int next_ = 0;
};

TEST_F(IngestTest, EveryRecordedBlockArrivesOnceWithItsValuesAndIsMarkedDelivered) {
  record(20);
  start_server();
  start_sender(sender_config("rig-01"));
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 20; })) << stored("rig-01");
  record(5);  // live, while connected
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 25; })) << stored("rig-01");
  auto ranges = store_->stored_seqs("rig-01");
  ASSERT_TRUE(ranges);
  EXPECT_EQ(*ranges, (std::vector<store::SeqRange>{{1, 25}}));
  // Values bit for bit: the scaled current and the cell voltage as the DBC codec decodes them.
  auto current = store_->series("rig-01", "BMU01_pdo1.CMA_Current", 0, now_ns() + 1'000'000'000, 1000);
  ASSERT_TRUE(current) << current.error().message;
  ASSERT_EQ(current->points.size(), 25u);
  EXPECT_EQ(current->points[0].value, static_cast<double>(-100) * 0.1);
  EXPECT_EQ(current->points[24].value, static_cast<double>(-76) * 0.1);
  auto temp = store_->series("rig-01", "board.temp1_c", 0, now_ns() + 1'000'000'000, 1000);
  ASSERT_TRUE(temp);
  ASSERT_EQ(temp->points.size(), 25u);
  EXPECT_EQ(temp->points[3].value, 20.0 + 0.1 * 3);
  auto events = store_->events("rig-01", 0, now_ns() + 1'000'000'000, 100);
  ASSERT_TRUE(events);
  EXPECT_EQ(events->size(), 25u);
  // The edge marks what the server acknowledged as delivered.
  auto reader = recorder::RecordingReader::open((dir_ / "edge.db").string());
  ASSERT_TRUE(reader);
  ASSERT_TRUE(wait_for([&] {
    auto pending = reader->undelivered(0, 100);
    return pending && pending->empty();
  }));
  const auto s = sender_->stats();
  EXPECT_TRUE(s.connected);
  EXPECT_GE(s.batches_acked, 25u);
  const auto edges = server_->edges();
  ASSERT_EQ(edges.size(), 1u);
  EXPECT_TRUE(edges[0].connected);
  EXPECT_EQ(edges[0].last_seq, 25u);
}

TEST_F(IngestTest, AServerRestartLosesAndDuplicatesNothing) {
  record(10);
  start_server();
  const std::uint16_t port = server_->port();
  start_sender(sender_config("rig-01"));
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 10; }));
  server_->stop();
  server_.reset();
  record(15);  // recorded while the server is down
  start_server(nullptr, port);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 25; })) << stored("rig-01");
  EXPECT_EQ(*store_->stored_seqs("rig-01"), (std::vector<store::SeqRange>{{1, 25}}));
  EXPECT_GE(sender_->stats().connects, 2u);
  auto series = store_->series("rig-01", "board.temp1_c", 0, now_ns() + 1'000'000'000, 1000);
  ASSERT_TRUE(series);
  EXPECT_EQ(series->points.size(), 25u);  // each sample once
}

TEST_F(IngestTest, ARestartedEdgeResendsNothingTheServerAlreadyHolds) {
  record(10);
  start_server();
  start_sender(sender_config("rig-01"));
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 10; }));
  sender_->stop();
  // Forget the delivered marks, as if the edge died before writing them: the hello's answer says.
  sender_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "edge.db").string().c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "DELETE FROM delivered", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  start_sender(sender_config("rig-01"));
  record(2);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 12; }));
  EXPECT_EQ(server_->stats().duplicates, 0u);
}

TEST_F(IngestTest, MutualTlsStreamsAndTheEdgeIdMustMatchTheCertificate) {
  const fs::path ca = dir_ / "pki";
  ASSERT_TRUE(pki::init_ca(ca));
  pki::IssueOptions server_cert;
  server_cert.kind = pki::CertKind::server;
  server_cert.name = "server";
  server_cert.subject_alt_names = {"127.0.0.1"};
  ASSERT_TRUE(pki::issue(ca, server_cert));
  for (const char* name : {"rig-01", "rig-02"}) {
    pki::IssueOptions edge;
    edge.name = name;
    ASSERT_TRUE(pki::issue(ca, edge));
  }
  auto tls = pki::TlsServerContext::create(pki::TlsFiles::from_ca_dir(ca, "server"));
  ASSERT_TRUE(tls) << tls.error().message;
  start_server(std::shared_ptr<pki::TlsServerContext>(std::move(*tls)));
  record(5);

  // rig-02's certificate claiming to be rig-01: refused, nothing stored.
  auto impostor = sender_config("rig-01");
  auto files = pki::TlsFiles::from_ca_dir(ca, "rig-02");
  files.crl.clear();
  auto context = pki::client_context(files, "127.0.0.1");
  ASSERT_TRUE(context) << context.error().message;
  impostor.tls = std::make_shared<asio::ssl::context>(std::move(*context));
  start_sender(impostor);
  ASSERT_TRUE(wait_for([&] { return server_->stats().rejected >= 1; }));
  ASSERT_TRUE(wait_for([&] {
    return sender_->stats().last_error.find("does not match") != std::string::npos;
  })) << sender_->stats().last_error;
  EXPECT_EQ(stored("rig-01"), 0u);
  sender_.reset();

  auto honest = sender_config("rig-01");
  files = pki::TlsFiles::from_ca_dir(ca, "rig-01");
  files.crl.clear();
  context = pki::client_context(files, "127.0.0.1");
  ASSERT_TRUE(context);
  honest.tls = std::make_shared<asio::ssl::context>(std::move(*context));
  start_sender(honest);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 5; })) << sender_->stats().last_error;
}

TEST_F(IngestTest, RevokingACertificateClosesItsLiveConnection) {
  const fs::path ca = dir_ / "pki";
  ASSERT_TRUE(pki::init_ca(ca));
  pki::IssueOptions server_cert;
  server_cert.kind = pki::CertKind::server;
  server_cert.name = "server";
  server_cert.subject_alt_names = {"127.0.0.1"};
  ASSERT_TRUE(pki::issue(ca, server_cert));
  pki::IssueOptions edge;
  edge.name = "rig-01";
  ASSERT_TRUE(pki::issue(ca, edge));
  const auto server_files = pki::TlsFiles::from_ca_dir(ca, "server");
  auto tls = pki::TlsServerContext::create(server_files);
  ASSERT_TRUE(tls) << tls.error().message;
  start_server(std::shared_ptr<pki::TlsServerContext>(std::move(*tls)), 0, server_files.crl.string());
  record(3);
  auto c = sender_config("rig-01");
  auto files = pki::TlsFiles::from_ca_dir(ca, "rig-01");
  files.crl.clear();
  auto context = pki::client_context(files, "127.0.0.1");
  ASSERT_TRUE(context);
  c.tls = std::make_shared<asio::ssl::context>(std::move(*context));
  start_sender(c);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 3; })) << sender_->stats().last_error;

  // Revoked while connected: the server closes the live connection at its next CRL check (1 s)
  // with the reason, and what the edge records afterwards is neither stored nor acknowledged.
  const auto revoked_at = std::chrono::steady_clock::now();
  ASSERT_TRUE(pki::revoke(ca, "rig-01"));
  ASSERT_TRUE(wait_for([&] { return sender_->stats().last_error.find("revoked") != std::string::npos; }, 5s))
      << sender_->stats().last_error;
  EXPECT_LT(std::chrono::steady_clock::now() - revoked_at, 4s);
  const auto rejected = server_->stats().rejected;
  record(2);
  ASSERT_TRUE(wait_for([&] { return server_->stats().rejected > rejected; }, 5s));  // its reconnection
  EXPECT_EQ(stored("rig-01"), 3u);
}

TEST_F(IngestTest, PlaintextIsRefusedBeyondLoopback) {
  IngestConfig ic;
  ic.host = "0.0.0.0";
  auto s = IngestServer::start(ic, *store_);
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("loopback"), std::string::npos) << s.error().message;
}

TEST_F(IngestTest, AMalformedStreamClosesThatConnectionOnlyWithAReason) {
  record(3);
  start_server();
  start_sender(sender_config("rig-01"));
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 3; }));
  // A raw client sending a frame with a huge length.
  asio::io_context io;
  asio::ip::tcp::socket raw(io);
  raw.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  const std::uint8_t junk[] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3};
  asio::write(raw, asio::buffer(junk));
  std::vector<std::uint8_t> got(1024);
  asio::error_code ec;
  std::size_t total = 0;
  for (;;) {
    const std::size_t n = raw.read_some(asio::buffer(got.data() + total, got.size() - total), ec);
    total += n;
    if (ec || total == got.size()) break;
  }
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  uplink::FrameDecoder decoder;
  decoder.feed(std::span<const std::uint8_t>(got.data(), total));
  auto bye = decoder.next();
  ASSERT_TRUE(bye && bye->has_value());
  ASSERT_TRUE(std::holds_alternative<uplink::Goodbye>(**bye));
  EXPECT_NE(std::get<uplink::Goodbye>(**bye).reason.find("frame length"), std::string::npos);
  // The edge's stream goes on.
  record(2);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 5; }));
}

TEST_F(IngestTest, ABacklogDrainsBehindLiveData) {
  record(300);
  start_server();
  start_sender(sender_config("rig-01"));
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 300; }));
  const auto s = sender_->stats();
  EXPECT_EQ(s.backlog_sent, 300u);
  record(3);
  ASSERT_TRUE(wait_for([&] { return stored("rig-01") == 303; }));
  EXPECT_GE(sender_->stats().live_sent, 3u);
}

}  // namespace
}  // namespace cellguard::server
