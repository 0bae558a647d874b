// The server's ingest (ingest.h): asio coroutines per connection, one writer thread for the store.
#include "server/ingest.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <unordered_set>

#include "core/thread_annotations.h"
#include "pki/tls.h"
#include "server/event_json.h"
#include "store/store.h"
#include "uplink/protocol.h"

namespace cellguard::server {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::experimental::as_tuple(use_awaitable);
namespace up = cellguard::uplink;

// Edge ids become file names and labels: a conservative alphabet.
bool valid_edge_id(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  for (char c : id)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  return true;
}

store::Batch to_store(up::Batch&& b) {
  store::Batch out;
  out.seq = b.seq;
  out.lost_records = b.lost_records;
  out.series.reserve(b.series.size());
  for (up::Series& s : b.series)
    out.series.push_back({std::move(s.channels), std::move(s.times_ns), std::move(s.values)});
  out.events.reserve(b.events.size());
  // Checked once here, trusted (spliced, never re-parsed) after it: event_json.h.
  for (up::Event& e : b.events)
    out.events.push_back({e.time_ns, bounded_event_kind(e.kind), bounded_event_json(std::move(e.json))});
  return out;
}

}  // namespace

// What the writer thread needs of a session: where to send acks, and how to drop it.
class SessionBase {
 public:
  virtual ~SessionBase() = default;
  virtual void acknowledge(std::vector<up::SeqRange> ranges) = 0;  // any thread
  virtual void kick(std::string reason) = 0;                       // any thread
  std::atomic<std::size_t> queued{0};                              // batches waiting for the writer
  std::string certificate_serial;    // after the handshake (TLS); guarded by the server's state_mutex
  std::atomic<bool> revoked{false};  // its certificate was revoked: nothing more is stored or acknowledged
};

struct IngestServer::Impl : std::enable_shared_from_this<Impl> {
  IngestConfig config;
  store::Store* store = nullptr;
  std::shared_ptr<spdlog::logger> log;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::vector<std::thread> threads;
  std::atomic<bool> stopping{false};

  mutable Mutex state_mutex;  // edges, sessions, stats (and each session's certificate_serial)
  std::map<std::string, EdgeStatus, std::less<>> edges GUARDED_BY(state_mutex);
  std::map<std::string, std::weak_ptr<SessionBase>, std::less<>> sessions GUARDED_BY(state_mutex);
  std::unordered_set<std::shared_ptr<SessionBase>> all_sessions GUARDED_BY(state_mutex);
  IngestStats stats GUARDED_BY(state_mutex);

  // Writer queue.
  struct Pending {
    std::shared_ptr<SessionBase> session;
    std::string edge_id;
    store::Batch batch;
    std::size_t samples = 0;
  };
  Mutex queue_mutex;
  CondVar queue_cv;
  std::deque<Pending> queue GUARDED_BY(queue_mutex);
  std::size_t queued_samples GUARDED_BY(queue_mutex) = 0;
  bool writer_stop GUARDED_BY(queue_mutex) = false;
  std::thread writer;

  template <typename F>
  void with_edge(const std::string& id, F&& f) {
    MutexLock lock(state_mutex);
    auto& e = edges[id];
    e.edge_id = id;
    f(e);
  }
  void count(std::uint64_t IngestStats::*field, std::uint64_t n = 1) {
    MutexLock lock(state_mutex);
    stats.*field += n;
  }

  void enqueue(Pending p) {
    {
      MutexLock lock(queue_mutex);
      queued_samples += p.samples;
      queue.push_back(std::move(p));
    }
    queue_cv.notify_one();
  }

  void run_writer();
  void commit(std::deque<Pending>& batch);
  awaitable<void> accept_loop();
  awaitable<void> crl_watch();
  void close_revoked();
  template <typename Stream>
  void start_session(std::shared_ptr<Stream> stream, tcp::socket* socket, std::string peer);
};

// One connection. All its state is touched on its strand only (the socket's executor).
template <typename Stream>
class Session final : public SessionBase, public std::enable_shared_from_this<Session<Stream>> {
 public:
  Session(IngestServer::Impl& server, std::shared_ptr<Stream> stream, tcp::socket& socket, std::string peer)
      : server_(server),
        stream_(std::move(stream)),
        socket_(socket),
        peer_(std::move(peer)),
        watchdog_(socket.get_executor()),
        keepalive_(socket.get_executor()),
        write_wake_(socket.get_executor()) {}

  awaitable<void> run();

  void acknowledge(std::vector<up::SeqRange> ranges) override {
    if (revoked) return;
    asio::post(socket_.get_executor(),
               [self = this->shared_from_this(), ranges = std::move(ranges)]() mutable {
                 self->send(up::Ack{std::move(ranges)});
               });
  }
  void kick(std::string reason) override {
    asio::post(socket_.get_executor(),
               [self = this->shared_from_this(), reason = std::move(reason)]() mutable {
                 self->fail(std::move(reason), true);
               });
  }

 private:
  void send(const up::Message& message) {
    if (closed_) return;
    std::vector<std::uint8_t> frame;
    if (auto ok = up::encode_frame(message, frame); !ok) {
      fail(ok.error().message, false);
      return;
    }
    outbox_.push_back(std::move(frame));
    last_sent_ = Clock::now();
    write_wake_.cancel();
  }

  // Ends the connection: a goodbye with the reason when `tell` (best effort), then the socket closes.
  void fail(const std::string& reason, bool tell) {
    if (closed_) return;
    if (why_.empty()) why_ = reason;
    if (tell) {
      send(up::Goodbye{reason});
      closing_ = true;  // the writer closes after flushing the goodbye
      write_wake_.cancel();
      // Do not wait long for a peer that does not read.
      watchdog_.expires_after(std::chrono::milliseconds(500));
      watchdog_.async_wait([self = this->shared_from_this()](asio::error_code ec) {
        if (!ec) self->close_now();
      });
      return;
    }
    close_now();
  }

  void close_now() {
    if (closed_) return;
    closed_ = true;
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    watchdog_.cancel();
    keepalive_.cancel();
    write_wake_.cancel();
  }

  awaitable<void> writer_loop() {
    auto self = this->shared_from_this();
    while (!closed_) {
      if (outbox_.empty()) {
        if (closing_) {
          close_now();
          break;
        }
        write_wake_.expires_after(std::chrono::hours(1));
        co_await write_wake_.async_wait(kNoThrow);
        continue;
      }
      std::vector<std::uint8_t> frame = std::move(outbox_.front());
      outbox_.pop_front();
      auto [ec, n] = co_await asio::async_write(*stream_, asio::buffer(frame), kNoThrow);
      if (ec) {
        if (why_.empty()) why_ = "write: " + ec.message();
        close_now();
        break;
      }
    }
  }

  awaitable<void> watchdog_loop() {
    auto self = this->shared_from_this();
    while (!closed_ && !closing_) {
      watchdog_.expires_at(deadline_);
      co_await watchdog_.async_wait(kNoThrow);
      if (closed_ || closing_) break;
      if (Clock::now() >= deadline_) {
        why_ = hello_done_
                   ? "no data for " + std::to_string(server_.config.dead_after.count()) + " ms (dead link)"
                   : "no TLS handshake or hello within the timeout";
        close_now();
        break;
      }
    }
  }

  awaitable<void> keepalive_loop() {
    auto self = this->shared_from_this();
    while (!closed_) {
      keepalive_.expires_after(server_.config.keepalive);
      auto [ec] = co_await keepalive_.async_wait(kNoThrow);
      if (ec || closed_) break;
      if (Clock::now() - last_sent_ >= server_.config.keepalive)
        send(up::Keepalive{server_.config.clock->wall_now().ns(), 0, 0});
    }
  }

  awaitable<std::optional<up::Message>> read_message() {
    for (;;) {
      auto next = decoder_.next();
      if (!next) {
        fail(next.error().message, true);
        co_return std::nullopt;
      }
      if (next->has_value()) {
        deadline_ = Clock::now() + server_.config.dead_after;
        co_return std::move(**next);
      }
      auto [ec, n] = co_await stream_->async_read_some(asio::buffer(buffer_), kNoThrow);
      if (ec) {
        if (why_.empty() && ec != asio::error::eof && ec != asio::ssl::error::stream_truncated)
          why_ = "read: " + ec.message();
        close_now();
        co_return std::nullopt;
      }
      server_.count(&IngestStats::bytes_received, n);
      decoder_.feed(std::span<const std::uint8_t>(buffer_.data(), n));
    }
  }

  awaitable<bool> handshake();
  bool on_hello(const up::Hello& hello);
  void on_batch(up::Batch&& batch);

  IngestServer::Impl& server_;
  std::shared_ptr<Stream> stream_;
  tcp::socket& socket_;
  std::string peer_;
  std::string certificate_name_;
  asio::steady_timer watchdog_, keepalive_, write_wake_;
  Clock::time_point deadline_{}, last_sent_{};
  std::deque<std::vector<std::uint8_t>> outbox_;
  up::FrameDecoder decoder_;
  std::array<std::uint8_t, 65536> buffer_{};
  std::string edge_id_;
  std::unordered_set<std::uint32_t> channels_;
  bool hello_done_ = false, closing_ = false, closed_ = false;
  std::string why_;
};

template <typename Stream>
awaitable<bool> Session<Stream>::handshake() {
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    co_return true;
  } else {
    auto [ec] = co_await stream_->async_handshake(asio::ssl::stream_base::server, kNoThrow);
    if (ec) {
      why_ = "TLS handshake: " + pki::handshake_failure_reason(stream_->native_handle(), ec);
      close_now();
      co_return false;
    }
    auto identity = pki::peer_identity(stream_->native_handle());
    if (!identity) {
      why_ = "TLS: " + identity.error().message;
      close_now();
      co_return false;
    }
    certificate_name_ = identity->name;
    {
      MutexLock lock(server_.state_mutex);
      certificate_serial = identity->serial;
    }
    co_return true;
  }
}

template <typename Stream>
bool Session<Stream>::on_hello(const up::Hello& hello) {
  if (hello.protocol_version != up::kProtocolVersion) {
    fail("protocol version " + std::to_string(hello.protocol_version) +
             " is not supported (this server speaks " + std::to_string(up::kProtocolVersion) + ")",
         true);
    return false;
  }
  if (!valid_edge_id(hello.edge_id)) {
    fail("edge id \"" + hello.edge_id + "\" is not valid (1-64 of A-Z a-z 0-9 - _ .)", true);
    return false;
  }
  if constexpr (!std::is_same_v<Stream, tcp::socket>) {
    if (hello.edge_id != certificate_name_) {
      fail("edge id \"" + hello.edge_id + "\" does not match the certificate's name \"" + certificate_name_ +
               "\"",
           true);
      return false;
    }
  }
  store::EdgeInfo info;
  info.edge_id = hello.edge_id;
  info.software_version = hello.software_version;
  info.config_sha256 = hello.config_sha256;
  info.dbc_sha256 = hello.dbc_sha256;
  for (const up::ChannelInfo& c : hello.channels) {
    if (!channels_.insert(c.id).second) {
      fail("hello names channel id " + std::to_string(c.id) + " twice", true);
      return false;
    }
    info.channels.push_back({c.id, c.name, c.unit, static_cast<int>(c.module), c.rig_column, c.integral});
  }
  if (auto ok = server_.store->put_edge(info); !ok) {
    fail("server cannot register the edge: " + ok.error().message, true);
    return false;
  }
  auto stored = server_.store->stored_seqs(hello.edge_id);
  if (!stored) {
    fail("server cannot read what it holds: " + stored.error().message, true);
    return false;
  }
  up::HelloAck ack;
  ack.server_id = server_.config.server_id;
  ack.keepalive_ms = static_cast<std::uint32_t>(server_.config.keepalive.count());
  for (const store::SeqRange& r : *stored) {
    const std::uint64_t lo = std::max(r.first, hello.first_seq), hi = std::min(r.last, hello.last_seq);
    if (lo <= hi && hello.last_seq > 0) ack.stored.push_back({lo, hi});
  }
  edge_id_ = hello.edge_id;
  // One connection per edge: a newer one replaces the older (the edge reconnected).
  std::shared_ptr<SessionBase> previous;
  {
    MutexLock lock(server_.state_mutex);
    previous = server_.sessions[edge_id_].lock();
    server_.sessions[edge_id_] = this->shared_from_this();
    auto& e = server_.edges[edge_id_];
    e.edge_id = edge_id_;
    e.connected = true;
    e.peer = peer_;
    e.software_version = hello.software_version;
    e.config_sha256 = hello.config_sha256;
    e.connected_since = e.last_seen = server_.config.clock->wall_now();
    ++e.connections;
  }
  if (previous) previous->kick("replaced by a newer connection of the same edge");
  hello_done_ = true;
  send(ack);
  server_.log->info("edge {} connected from {} ({} channels, holds {}..{}, {} ranges already stored)",
                    edge_id_, peer_, hello.channels.size(), hello.first_seq, hello.last_seq,
                    ack.stored.size());
  return true;
}

template <typename Stream>
void Session<Stream>::on_batch(up::Batch&& batch) {
  if (revoked || closing_) return;  // being closed: nothing more is stored
  for (const up::Series& s : batch.series)
    for (std::uint32_t c : s.channels)
      if (channels_.count(c) == 0) {
        fail("batch " + std::to_string(batch.seq) + " uses channel id " + std::to_string(c) +
                 " not in the hello",
             true);
        return;
      }
  if (queued.load() >= server_.config.max_queued_batches) {
    fail("more than " + std::to_string(server_.config.max_queued_batches) + " batches waiting for storage",
         true);
    return;
  }
  const std::size_t samples = batch.sample_count();
  const std::uint64_t lost = batch.lost_records;
  server_.with_edge(edge_id_, [&](EdgeStatus& e) {
    e.last_seen = server_.config.clock->wall_now();
    e.lost_records = std::max(e.lost_records, lost);
  });
  ++queued;
  server_.enqueue({this->shared_from_this(), edge_id_, to_store(std::move(batch)), samples});
}

template <typename Stream>
awaitable<void> Session<Stream>::run() {
  auto self = this->shared_from_this();
  deadline_ = Clock::now() + server_.config.handshake_timeout;
  last_sent_ = Clock::now();
  asio::co_spawn(socket_.get_executor(), watchdog_loop(), asio::detached);
  if (co_await handshake()) {
    asio::co_spawn(socket_.get_executor(), writer_loop(), asio::detached);
    auto first = co_await read_message();
    if (first) {
      if (const auto* hello = std::get_if<up::Hello>(&*first)) {
        if (on_hello(*hello)) {
          asio::co_spawn(socket_.get_executor(), keepalive_loop(), asio::detached);
          while (!closed_ && !closing_) {
            auto message = co_await read_message();
            if (!message) break;
            if (auto* batch = std::get_if<up::Batch>(&*message)) {
              on_batch(std::move(*batch));
            } else if (const auto* k = std::get_if<up::Keepalive>(&*message)) {
              server_.with_edge(edge_id_, [&](EdgeStatus& e) {
                e.last_seen = server_.config.clock->wall_now();
                e.backlog_batches = k->backlog_batches;
                e.lost_records = std::max(e.lost_records, k->lost_records);
              });
            } else if (const auto* bye = std::get_if<up::Goodbye>(&*message)) {
              why_ = "edge said goodbye: " + bye->reason;
              close_now();
            } else {
              fail(std::string("unexpected ") + up::message_name(*message) + " after the hello", true);
            }
          }
        }
      } else {
        fail(std::string("expected a hello, got ") + up::message_name(*first), true);
      }
    }
  }
  // Ended: record why, forget the session unless a newer one took its place.
  const bool clean = why_.empty() || why_.rfind("edge said goodbye", 0) == 0;
  if (!hello_done_) server_.count(&IngestStats::rejected);
  {
    MutexLock lock(server_.state_mutex);
    if (!edge_id_.empty()) {
      auto it = server_.sessions.find(edge_id_);
      if (it != server_.sessions.end() && it->second.lock().get() == this) {
        server_.sessions.erase(it);
        server_.edges[edge_id_].connected = false;
      }
      if (!clean) server_.edges[edge_id_].last_error = why_;
    }
    --server_.stats.sessions;
    server_.all_sessions.erase(self);
  }
  if (!hello_done_) {
    server_.log->warn("connection from {} rejected: {}", peer_,
                      why_.empty() ? "closed before the hello" : why_);
  } else {
    server_.log->info("edge {} from {} disconnected{}{}", edge_id_, peer_, why_.empty() ? "" : ": ", why_);
  }
}

template <typename Stream>
void IngestServer::Impl::start_session(std::shared_ptr<Stream> stream, tcp::socket* socket,
                                       std::string peer) {
  auto session = std::make_shared<Session<Stream>>(*this, std::move(stream), *socket, std::move(peer));
  {
    MutexLock lock(state_mutex);
    ++stats.connections;
    ++stats.sessions;
    all_sessions.insert(session);
  }
  asio::co_spawn(socket->get_executor(), session->run(), asio::detached);
}

awaitable<void> IngestServer::Impl::accept_loop() {
  while (!stopping) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), kNoThrow);
    if (ec) {
      if (stopping || ec == asio::error::operation_aborted) break;
      log->warn("accept: {}", ec.message());
      continue;
    }
    asio::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    const auto remote = socket.remote_endpoint(ignored);
    std::string peer = remote.address().to_string() + ":" + std::to_string(remote.port());
    if (config.tls) {
      auto stream = std::make_shared<pki::TlsStream>(config.tls->make_stream(std::move(socket)));
      tcp::socket* raw = &stream->next_layer();
      start_session(std::move(stream), raw, std::move(peer));
    } else {
      auto stream = std::make_shared<tcp::socket>(std::move(socket));
      tcp::socket* raw = stream.get();
      start_session(std::move(stream), raw, std::move(peer));
    }
  }
}

// `cellguard pki revoke` rewrites crl.pem: new handshakes must see it without a restart.
awaitable<void> IngestServer::Impl::crl_watch() {
  asio::steady_timer timer(io);
  struct stat st {};
  auto mtime = [&]() -> std::int64_t {
    if (::stat(config.crl_path.c_str(), &st) != 0) return 0;
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  };
  std::int64_t seen = mtime();
  while (!stopping) {
    timer.expires_after(std::chrono::seconds(1));
    auto [ec] = co_await timer.async_wait(kNoThrow);
    if (ec || stopping) break;
    const std::int64_t now = mtime();
    if (now == seen) continue;
    seen = now;
    if (auto ok = config.tls->reload_crl(); !ok) {
      log->warn("CRL not reloaded: {}", ok.error().message);
      continue;
    }
    log->info("CRL reloaded from {}", config.crl_path);
    close_revoked();
  }
}

// A revocation also ends the live connections of the revoked certificates (the handshake only
// guards new ones).
void IngestServer::Impl::close_revoked() {
  const std::set<std::string> revoked = config.tls->revoked_serials();
  std::vector<std::pair<std::shared_ptr<SessionBase>, std::string>>
      cut;  // with its serial, read under the lock
  {
    MutexLock lock(state_mutex);
    for (const auto& s : all_sessions)
      if (!s->certificate_serial.empty() && revoked.count(s->certificate_serial))
        cut.emplace_back(s, s->certificate_serial);
  }
  for (const auto& [s, serial] : cut) {
    log->warn("closing the connection of certificate {}: revoked", serial);
    s->revoked = true;
    s->kick("certificate revoked");
  }
}

void IngestServer::Impl::run_writer() {
  std::deque<Pending> batch;
  for (;;) {
    {
      MutexLock lock(queue_mutex);
      while (!writer_stop && queue.empty()) queue_cv.wait(lock);
      if (queue.empty() && writer_stop) break;
      // Gather for one commit interval (or until enough waits), so one transaction serves many edges.
      const auto until = Clock::now() + config.commit_interval;
      while (!writer_stop && queued_samples < config.commit_samples) {
        if (queue_cv.wait_until(lock, until) == std::cv_status::timeout) break;
      }
      batch.swap(queue);
      queued_samples = 0;
    }
    commit(batch);
    batch.clear();
  }
}

void IngestServer::Impl::commit(std::deque<Pending>& batch) {
  std::map<std::string, std::size_t, std::less<>> index;
  std::vector<store::EdgeBatches> groups;
  for (Pending& p : batch) {
    auto [it, inserted] = index.try_emplace(p.edge_id, groups.size());
    if (inserted) groups.push_back({p.edge_id, {}});
    groups[it->second].batches.push_back(std::move(p.batch));
  }
  const auto start = Clock::now();
  auto result = store->put_batches(groups);
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!result) {
    const std::string why = "server cannot store: " + result.error().message;
    log->error("commit of {} batches failed: {}", batch.size(), result.error().message);
    std::unordered_set<SessionBase*> told;
    for (Pending& p : batch) {
      --p.session->queued;
      if (told.insert(p.session.get()).second) p.session->kick(why);
    }
    MutexLock lock(state_mutex);
    ++stats.commit_failures;
    stats.last_error = why;
    return;
  }
  // Acks per session, as ranges (a batch moved into its edge's group, in queue order); then the counters.
  struct Counts {
    std::uint64_t batches = 0, samples = 0, last_seq = 0;
  };
  std::map<SessionBase*, std::pair<std::shared_ptr<SessionBase>, up::SeqSet>> acks;
  std::map<std::string, Counts, std::less<>> per_edge;
  std::map<std::string, std::size_t, std::less<>> cursor;
  for (Pending& p : batch) {
    const store::Batch& b = groups[index[p.edge_id]].batches[cursor[p.edge_id]++];
    auto& entry = acks[p.session.get()];
    entry.first = p.session;
    entry.second.insert(b.seq);
    --p.session->queued;
    Counts& c = per_edge[p.edge_id];
    ++c.batches;
    c.samples += p.samples;
    c.last_seq = std::max(c.last_seq, b.seq);
  }
  for (auto& [raw, entry] : acks) entry.first->acknowledge(entry.second.ranges());
  {
    MutexLock lock(state_mutex);
    ++stats.commits;
    stats.batches += result->stored;
    stats.duplicates += result->duplicates;
    stats.samples += result->samples;
    stats.last_commit_ms = ms;
    for (const auto& [edge, c] : per_edge) {
      auto& e = edges[edge];
      e.batches += c.batches;
      e.samples += c.samples;
      e.last_seq = std::max(e.last_seq, c.last_seq);
    }
  }
  // After the counters, so what the hook's readers show never runs ahead of edges()/stats().
  if (config.on_committed)
    for (const store::EdgeBatches& g : groups) config.on_committed(g.edge_id, g.batches);
}

IngestServer::IngestServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
IngestServer::~IngestServer() { stop(); }

Result<std::unique_ptr<IngestServer>> IngestServer::start(IngestConfig config, store::Store& store) {
  auto impl = std::make_shared<Impl>();
  impl->log = config.log ? config.log : spdlog::default_logger();
  impl->config = std::move(config);
  impl->store = &store;
  const std::string where = impl->config.host + ":" + std::to_string(impl->config.port);
  asio::error_code ec;
  const auto address = asio::ip::make_address(impl->config.host, ec);
  if (ec)
    return Error(ErrorCode::invalid_argument,
                 "server: listen address \"" + impl->config.host + "\" is not an IP address");
  if (!impl->config.tls && !address.is_loopback())
    return Error(ErrorCode::invalid_argument,
                 "server: plaintext is allowed on a loopback address only, not " + where);
  const tcp::endpoint endpoint(address, impl->config.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(ErrorCode::io_error, "server: cannot listen on " + where + ": " + ec.message());
  Impl* raw = impl.get();
  raw->writer = std::thread([raw] { raw->run_writer(); });
  asio::co_spawn(raw->io, raw->accept_loop(), asio::detached);
  if (raw->config.tls && !raw->config.crl_path.empty())
    asio::co_spawn(raw->io, raw->crl_watch(), asio::detached);
  for (int i = 0; i < std::max(1, raw->config.io_threads); ++i)
    raw->threads.emplace_back([raw] { raw->io.run(); });
  return std::unique_ptr<IngestServer>(new IngestServer(std::move(impl)));
}

std::uint16_t IngestServer::port() const {
  asio::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

std::vector<EdgeStatus> IngestServer::edges() const {
  MutexLock lock(impl_->state_mutex);
  std::vector<EdgeStatus> out;
  for (const auto& [id, e] : impl_->edges) out.push_back(e);
  return out;
}

IngestStats IngestServer::stats() const {
  MutexLock lock(impl_->state_mutex);
  return impl_->stats;
}

void IngestServer::stop() {
  if (!impl_ || impl_->stopping.exchange(true)) return;
  Impl* raw = impl_.get();
  asio::post(raw->io, [raw] {
    asio::error_code ignored;
    raw->acceptor.close(ignored);
  });
  std::vector<std::shared_ptr<SessionBase>> sessions;
  {
    MutexLock lock(raw->state_mutex);
    sessions.assign(raw->all_sessions.begin(), raw->all_sessions.end());
  }
  for (auto& s : sessions) s->kick("server stopping");
  // The writer commits what is queued (its acks may still reach the edges), then ends.
  {
    MutexLock lock(raw->queue_mutex);
    raw->writer_stop = true;
  }
  raw->queue_cv.notify_all();
  if (raw->writer.joinable()) raw->writer.join();
  sessions.clear();
  // Sessions end within their goodbye grace (500 ms); then the loop has nothing left to run.
  for (int i = 0; i < 200; ++i) {
    {
      MutexLock lock(raw->state_mutex);
      if (raw->all_sessions.empty()) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  raw->io.stop();
  for (auto& t : raw->threads)
    if (t.joinable()) t.join();
}

}  // namespace cellguard::server
