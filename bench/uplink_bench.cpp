// Uplink benchmarks (a harness, not Google Benchmark: each run is one long measurement).
//
//   uplink_bench drain [--minutes M] [--modules N]
//     Records M minutes of the full rig (N modules x 8 PDOs at 10 Hz, values from the DBC codec of
//     data/cellguard-rig.dbc, slowly drifting) into an edge recording, then starts an ingest server
//     (mutual TLS, SQLite store with synchronous=FULL) and the edge's sender, and measures how fast
//     the backlog drains: batches/s, samples/s and the factor over real time.
//
//   uplink_bench edges [--edges E] [--seconds S] [--modules N] [--server BINARY]
//     Starts `cellguard server` as a process and E concurrent TLS edges (one client thread, each
//     edge with its own certificate) that send one batch every 200 ms at the rig's rate (N modules'
//     PDOs at 10 Hz: 2 rows per PDO per batch), and measures acknowledged samples/s, ack latency
//     (p50/p99/max from send to ack) and the server's CPU and memory.
//
// Results: docs/benchmarks.md.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <asio/ssl.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "pki/pki.h"
#include "pki/tls.h"
#include "recorder/recorder.h"
#include "server/ingest.h"
#include "store/store.h"
#include "uplink/protocol.h"
#include "uplink/sender.h"

namespace fs = std::filesystem;
using namespace cellguard;
using SteadyClock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::string arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 2; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

std::int64_t wall_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

fs::path source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir != nullptr ? dir : CELLGUARD_BENCH_SOURCE_DIR;
}

// The rig's frames at one instant: every PDO of every module, values drifting slowly.
class RigFrames {
 public:
  explicit RigFrames(int modules) : modules_(modules) {
    auto text = read_file((source_dir() / "data/cellguard-rig.dbc").string());
    if (!text) throw std::runtime_error(text.error().message);
    dbc_text_ = *text;
    auto parsed = dbc::parse_dbc(dbc_text_);
    if (!parsed) throw std::runtime_error(parsed.error().message);
    codec_ = std::make_unique<dbc::DatabaseCodec>(std::move(parsed->database));
    for (const auto& m : codec_->database().messages) {
      if (m.name.rfind("BMU", 0) != 0 || m.name.find("_pdo") == std::string::npos) continue;
      const int node = std::stoi(m.name.substr(3, 2));
      if (node < 1 || node > modules) continue;
      pdos_.push_back(codec_->find(m.name));
    }
  }
  const std::string& dbc_text() const { return dbc_text_; }
  std::size_t frames_per_cycle() const { return pdos_.size(); }
  std::size_t signals_per_cycle() const {
    std::size_t n = 0;
    for (const auto* c : pdos_) n += c->signal_count();
    return n;
  }

  // Appends one cycle's frames at time t (cycle number k drives the drift).
  void cycle(std::int64_t t, std::uint64_t k, std::vector<can::Frame>& out) {
    for (std::size_t i = 0; i < pdos_.size(); ++i) {
      const dbc::MessageCodec* c = pdos_[i];
      const auto& signals = c->message().signals;
      std::vector<double> values(signals.size());
      dbc::PresenceMask present(signals.size());
      for (std::size_t s = 0; s < signals.size(); ++s) {
        const auto& sig = signals[s];
        const double span = sig.maximum - sig.minimum;
        // A slow sine per signal plus a little noise: realistic for cell voltages and temperatures.
        const double phase = static_cast<double>(k) / 3000.0 + static_cast<double>(i * 7 + s);
        values[s] = sig.minimum + span * (0.5 + 0.05 * std::sin(phase)) + (rng_() % 3) * sig.scale;
        present.words()[s / 64] |= 1ull << (s % 64);
      }
      can::Frame f;
      f.timestamp_ns = t + static_cast<std::int64_t>(i) * 20'000 + static_cast<std::int64_t>(rng_() % 5000);
      f.id = c->message().id;
      f.size = static_cast<std::uint8_t>(c->message().length);
      (void)c->encode(values.data(), present, std::span<std::uint8_t>(f.data.data(), f.size));
      out.push_back(f);
    }
  }

 private:
  int modules_;
  std::string dbc_text_;
  std::unique_ptr<dbc::DatabaseCodec> codec_;
  std::vector<const dbc::MessageCodec*> pdos_;
  std::mt19937_64 rng_{42};
};

struct Pki {
  fs::path dir;
  explicit Pki(fs::path d, int edges) : dir(std::move(d)) {
    if (!pki::init_ca(dir)) throw std::runtime_error("pki init");
    pki::IssueOptions s;
    s.kind = pki::CertKind::server;
    s.name = "server";
    s.subject_alt_names = {"127.0.0.1"};
    if (!pki::issue(dir, s)) throw std::runtime_error("pki issue server");
    for (int i = 0; i < edges; ++i) {
      pki::IssueOptions e;
      e.name = "edge-" + std::to_string(i);
      if (!pki::issue(dir, e)) throw std::runtime_error("pki issue edge");
    }
  }
  std::shared_ptr<asio::ssl::context> client(int i) const {
    auto files = pki::TlsFiles::from_ca_dir(dir, "edge-" + std::to_string(i));
    files.crl.clear();
    auto c = pki::client_context(files, "127.0.0.1");
    if (!c) throw std::runtime_error(c.error().message);
    return std::make_shared<asio::ssl::context>(std::move(*c));
  }
};

int drain(int argc, char** argv) {
  const double minutes = std::stod(arg(argc, argv, "--minutes", "10"));
  const int modules = std::stoi(arg(argc, argv, "--modules", "15"));
  const fs::path dir = fs::temp_directory_path() / ("cellguard-uplink-bench-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  RigFrames rig(modules);
  recorder::RecorderConfig rc;
  rc.path = (dir / "edge.db").string();
  rc.synchronous_full = false;  // generation speed; the drain is what is measured
  rc.max_age_ns = 0;
  auto rec = recorder::Recorder::open(rc);
  if (!rec) return std::fprintf(stderr, "%s\n", rec.error().message.c_str()), 1;
  (void)(*rec)->set_meta("dbc", rig.dbc_text());
  const std::uint64_t cycles = static_cast<std::uint64_t>(minutes * 60 * 10);
  const std::int64_t t0 = wall_ns() - static_cast<std::int64_t>(minutes * 60e9);
  std::vector<can::Frame> frames;
  for (std::uint64_t k = 0; k < cycles; ++k) {
    frames.clear();
    rig.cycle(t0 + static_cast<std::int64_t>(k) * 100'000'000, k, frames);
    for (const auto& f : frames) (*rec)->record_frame(f);
    if (k % 2 == 1) (void)(*rec)->flush();  // about one block per 200 ms of rig time, as live
  }
  (void)(*rec)->flush();
  const auto rs = (*rec)->stats();
  std::printf("recording: %.1f min of %d modules, %llu frames in %llu blocks, %.1f MiB\n", minutes, modules,
              static_cast<unsigned long long>(rs.records_committed),
              static_cast<unsigned long long>(rs.blocks_committed),
              static_cast<double>(rs.file_bytes) / 1048576.0);

  Pki ca(dir / "pki", 1);
  store::SqliteStoreConfig sc;
  sc.path = (dir / "server" / "store.db").string();
  auto st = store::open_sqlite_store(sc);
  if (!st) return std::fprintf(stderr, "%s\n", st.error().message.c_str()), 1;
  server::IngestConfig ic;
  ic.port = 0;
  auto tls = pki::TlsServerContext::create(pki::TlsFiles::from_ca_dir(ca.dir, "server"));
  if (!tls) return std::fprintf(stderr, "%s\n", tls.error().message.c_str()), 1;
  ic.tls = std::shared_ptr<pki::TlsServerContext>(std::move(*tls));
  auto srv = server::IngestServer::start(ic, **st);
  if (!srv) return std::fprintf(stderr, "%s\n", srv.error().message.c_str()), 1;

  uplink::SenderConfig c;
  c.recording_path = rc.path;
  c.port = (*srv)->port();
  c.tls = ca.client(0);
  c.hello.edge_id = "edge-0";
  const auto start = SteadyClock::now();
  auto sender = uplink::Sender::start(c);
  if (!sender) return std::fprintf(stderr, "%s\n", sender.error().message.c_str()), 1;
  while ((*sender)->stats().batches_acked < rs.blocks_committed) std::this_thread::sleep_for(5ms);
  const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
  const auto s = (*sender)->stats();
  (*sender)->stop();
  (*srv)->stop();
  const double samples = static_cast<double>(s.samples_sent);
  std::printf(
      "drain: %llu batches, %.0f samples, %.1f MiB sent in %.2f s: %.0f batches/s, %.0f samples/s, "
      "%.0fx real time\n",
      static_cast<unsigned long long>(s.batches_acked), samples,
      static_cast<double>(s.bytes_sent) / 1048576.0, seconds, static_cast<double>(s.batches_acked) / seconds,
      samples / seconds, minutes * 60 / seconds);
  std::printf("wire: %.2f bytes per sample\n", static_cast<double>(s.bytes_sent) / samples);
  fs::remove_all(dir);
  return 0;
}

// ---- many edges ----

struct ProcStat {
  double cpu_s = 0;
  double rss_mib = 0;
};
ProcStat proc_stat(pid_t pid) {
  ProcStat p;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  const auto close = text.rfind(')');
  if (close == std::string::npos) return p;
  std::vector<std::string> f;
  std::string cur;
  for (char ch : text.substr(close + 2)) {
    if (ch == ' ') {
      f.push_back(cur);
      cur.clear();
    } else {
      cur += ch;
    }
  }
  const double tick = static_cast<double>(::sysconf(_SC_CLK_TCK));
  if (f.size() > 22) {
    p.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / tick;
    p.rss_mib = std::stod(f[21]) * static_cast<double>(::sysconf(_SC_PAGESIZE)) / 1048576.0;
  }
  return p;
}

// One synthetic edge: hello, then a batch every 200 ms; records send times to measure ack latency.
struct FakeEdge : std::enable_shared_from_this<FakeEdge> {
  FakeEdge(asio::io_context& io, std::shared_ptr<asio::ssl::context> ctx, int edge_id,
           const uplink::Batch& batch_shape, std::vector<uplink::ChannelInfo> catalogue)
      : stream(io, *ctx),
        context(std::move(ctx)),
        timer(io),
        id(edge_id),
        shape(batch_shape),
        channels(std::move(catalogue)) {}
  asio::ssl::stream<asio::ip::tcp::socket> stream;
  std::shared_ptr<asio::ssl::context> context;
  asio::steady_timer timer;
  int id;
  const uplink::Batch& shape;
  std::vector<uplink::ChannelInfo> channels;
  std::uint64_t seq = 0;
  std::map<std::uint64_t, SteadyClock::time_point> sent;
  std::vector<double> latencies_ms;
  std::uint64_t acked = 0, samples_acked = 0, per_batch_samples = 0;
  bool failed = false;
  std::string error;
  std::array<std::uint8_t, 8192> buffer{};
  uplink::FrameDecoder decoder;
  std::deque<std::vector<std::uint8_t>> outbox;
  bool writing = false;
  SteadyClock::time_point stop_at;

  void send(const uplink::Message& m) {
    std::vector<std::uint8_t> frame;
    (void)uplink::encode_frame(m, frame);
    outbox.push_back(std::move(frame));
    if (!writing) write_next();
  }
  void write_next() {
    if (outbox.empty()) {
      writing = false;
      return;
    }
    writing = true;
    asio::async_write(stream, asio::buffer(outbox.front()),
                      [self = shared_from_this()](asio::error_code ec, std::size_t) {
                        self->outbox.pop_front();
                        if (ec) return self->fail("write: " + ec.message());
                        self->write_next();
                      });
  }
  void fail(std::string why) {
    if (!failed) error = std::move(why);
    failed = true;
  }
  void start(std::uint16_t port, SteadyClock::time_point until) {
    stop_at = until;
    per_batch_samples = shape.sample_count();
    stream.next_layer().async_connect(
        {asio::ip::make_address("127.0.0.1"), port}, [self = shared_from_this()](asio::error_code ec) {
          if (ec) return self->fail("connect: " + ec.message());
          self->stream.async_handshake(asio::ssl::stream_base::client, [self](asio::error_code hec) {
            if (hec) return self->fail("handshake: " + hec.message());
            uplink::Hello h;
            h.edge_id = "edge-" + std::to_string(self->id);
            h.channels = self->channels;
            self->send(h);
            self->read();
            self->tick();
          });
        });
  }
  void tick() {
    if (failed || SteadyClock::now() >= stop_at) return;
    uplink::Batch b = shape;
    b.seq = ++seq;
    const std::int64_t now = wall_ns();
    for (auto& s : b.series)
      for (std::size_t r = 0; r < s.times_ns.size(); ++r)
        s.times_ns[r] = now - static_cast<std::int64_t>(r) * 100'000'000;
    sent[b.seq] = SteadyClock::now();
    send(b);
    timer.expires_after(200ms);
    timer.async_wait([self = shared_from_this()](asio::error_code ec) {
      if (!ec) self->tick();
    });
  }
  void read() {
    stream.async_read_some(asio::buffer(buffer),
                           [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                             if (ec) return self->fail("read: " + ec.message());
                             self->decoder.feed(std::span<const std::uint8_t>(self->buffer.data(), n));
                             for (;;) {
                               auto m = self->decoder.next();
                               if (!m) return self->fail(m.error().message);
                               if (!m->has_value()) break;
                               if (const auto* ack = std::get_if<uplink::Ack>(&**m)) {
                                 const auto now = SteadyClock::now();
                                 for (const auto& r : ack->stored)
                                   for (std::uint64_t s = r.first; s <= r.last; ++s) {
                                     auto it = self->sent.find(s);
                                     if (it == self->sent.end()) continue;
                                     self->latencies_ms.push_back(
                                         std::chrono::duration<double, std::milli>(now - it->second).count());
                                     self->sent.erase(it);
                                     ++self->acked;
                                     self->samples_acked += self->per_batch_samples;
                                   }
                               } else if (const auto* bye = std::get_if<uplink::Goodbye>(&**m)) {
                                 return self->fail("goodbye: " + bye->reason);
                               }
                             }
                             self->read();
                           });
  }
};

int edges(int argc, char** argv) {
  const int count = std::stoi(arg(argc, argv, "--edges", "500"));
  const double seconds = std::stod(arg(argc, argv, "--seconds", "30"));
  const int modules = std::stoi(arg(argc, argv, "--modules", "8"));
  const std::string server_binary = arg(argc, argv, "--server", CELLGUARD_BENCH_BINARY);
  const fs::path dir = fs::temp_directory_path() / ("cellguard-uplink-edges-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::printf("issuing %d edge certificates...\n", count);
  Pki ca(dir / "pki", count);

  // The batch shape: 200 ms of the rig = 2 cycles of every PDO, one series per PDO.
  RigFrames rig(modules);
  std::vector<uplink::ChannelInfo> channels;
  uplink::Batch shape;
  std::uint32_t next_id = 1;
  std::vector<can::Frame> frames;
  rig.cycle(wall_ns(), 0, frames);
  rig.cycle(wall_ns(), 1, frames);
  std::map<std::uint32_t, std::size_t> series_of;
  auto parsed = dbc::parse_dbc(rig.dbc_text());
  dbc::DatabaseCodec codec(std::move(parsed->database));
  for (const auto& f : frames) {
    const dbc::MessageCodec* c = codec.find(f.id, false);
    auto [it, inserted] = series_of.try_emplace(f.id, shape.series.size());
    if (inserted) {
      uplink::Series s;
      for (const auto& sig : c->message().signals) {
        channels.push_back({next_id, c->message().name + "." + sig.name, sig.unit, 0, "", false});
        s.channels.push_back(next_id++);
        s.scaling.push_back({sig.scale, sig.offset});
      }
      shape.series.push_back(std::move(s));
    }
    uplink::Series& s = shape.series[it->second];
    std::vector<double> values(c->signal_count());
    dbc::PresenceMask present(values.size());
    c->decode(f.payload(), values.data(), present);
    s.times_ns.push_back(f.timestamp_ns);
    s.values.insert(s.values.end(), values.begin(), values.end());
  }
  std::printf("per edge: %zu samples per batch, %zu samples/s\n", shape.sample_count(),
              shape.sample_count() * 5);

  std::vector<std::string> args = {server_binary, "server",      "--data",    (dir / "data").string(),
                                   "--listen",    "127.0.0.1:0", "--pki-dir", (dir / "pki").string(),
                                   "--name",      "server"};
  int out[2];
  if (::pipe(out) != 0) return 1;
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    std::vector<char*> av;
    for (auto& a : args) av.push_back(a.data());
    av.push_back(nullptr);
    ::execv(av[0], av.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string line;
  char ch;
  while (::read(out[0], &ch, 1) == 1 && ch != '\n') line += ch;
  const auto ready = nlohmann::json::parse(line, nullptr, false);
  if (!ready.is_object()) return std::fprintf(stderr, "server did not start: %s\n", line.c_str()), 1;
  const std::string listen = ready["listen"];
  const auto port = static_cast<std::uint16_t>(std::stoi(listen.substr(listen.rfind(':') + 1)));

  asio::io_context io;
  std::vector<std::shared_ptr<FakeEdge>> fleet;
  const auto warmup = SteadyClock::now() + 5s;
  const auto until = warmup + std::chrono::milliseconds(static_cast<long long>(seconds * 1000));
  for (int i = 0; i < count; ++i) {
    auto e = std::make_shared<FakeEdge>(io, ca.client(i), i, shape, channels);
    e->start(port, until);
    fleet.push_back(e);
  }
  std::thread client([&] { io.run(); });
  std::this_thread::sleep_until(warmup);
  std::uint64_t acked0 = 0;
  for (auto& e : fleet)
    acked0 += e->samples_acked;  // racy read: a rough baseline, the totals below are exact
  const ProcStat before = proc_stat(pid);
  std::this_thread::sleep_until(until);
  const ProcStat after = proc_stat(pid);
  std::this_thread::sleep_for(2s);  // the last acks
  io.stop();
  client.join();
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::vector<double> lat;
  std::uint64_t samples = 0, failed = 0, acked = 0, sent = 0;
  std::string first_error;
  for (auto& e : fleet) {
    lat.insert(lat.end(), e->latencies_ms.begin(), e->latencies_ms.end());
    samples += e->samples_acked;
    acked += e->acked;
    sent += e->seq;
    if (e->failed) {
      ++failed;
      if (first_error.empty()) first_error = e->error;
    }
  }
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double p) {
    return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<std::size_t>(p * lat.size()))];
  };
  const double rate = static_cast<double>(samples - acked0) / seconds;
  std::printf("%d edges x %d modules for %.0f s: %llu batches sent, %llu acknowledged, %d failed%s%s\n",
              count, modules, seconds, static_cast<unsigned long long>(sent),
              static_cast<unsigned long long>(acked), static_cast<int>(failed),
              first_error.empty() ? "" : ": ", first_error.c_str());
  std::printf("acknowledged samples/s (after warm-up): %.0f (offered %zu)\n", rate,
              static_cast<std::size_t>(count) * shape.sample_count() * 5);
  std::printf("ack latency ms: p50 %.1f, p99 %.1f, max %.1f\n", pct(0.5), pct(0.99),
              lat.empty() ? 0.0 : lat.back());
  std::printf("server: %.0f %% of one core, RSS %.0f MiB\n", 100.0 * (after.cpu_s - before.cpu_s) / seconds,
              after.rss_mib);
  fs::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  try {
    if (mode == "drain") return drain(argc, argv);
    if (mode == "edges") return edges(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "uplink_bench: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr,
               "usage: uplink_bench drain [--minutes M] [--modules N]\n"
               "       uplink_bench edges [--edges E] [--seconds S] [--modules N] [--server BINARY]\n");
  return 2;
}
