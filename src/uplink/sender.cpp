// The edge's uplink sender (sender.h): asio C++20 coroutines on a thread of its own.
#include "uplink/sender.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/ssl.hpp>
#include <deque>
#include <random>
#include <set>
#include <thread>

#include "core/thread_annotations.h"
#include "recorder/recorder.h"

namespace cellguard::uplink {
namespace {

using asio::awaitable;
using asio::use_awaitable;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::experimental::as_tuple(use_awaitable);

// The server certificate must name the address we dialled (an IP SAN or a DNS name).
void expect_server_name(SSL* ssl, const std::string& name) {
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  asio::error_code ec;
  (void)asio::ip::make_address(name, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str());
  } else {
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
    SSL_set_tlsext_host_name(ssl, name.c_str());
  }
}

}  // namespace

struct Sender::Impl : std::enable_shared_from_this<Impl> {
  SenderConfig config;
  asio::io_context io;
  std::thread thread;
  std::atomic<bool> stopping{false};
  mutable Mutex stats_mutex;
  SenderStats stats GUARDED_BY(stats_mutex);
  std::mt19937_64 rng{std::random_device{}()};

  std::optional<recorder::RecordingReader> reader;
  std::optional<BatchBuilder> builder;
  SeqSet acked;  // delivered: persisted marks, the server's stored ranges and its acks
  std::vector<std::pair<std::uint64_t, std::uint64_t>> unpersisted;
  Clock::time_point last_persist{};
  Clock::time_point last_lost_check{};
  std::function<void()> close_link;  // closes the current connection (stop())

  // One connection's state, shared by its reader and writer coroutines.
  struct Link {
    explicit Link(const asio::any_io_executor& ex) : wake(ex), watchdog(ex) {}
    asio::steady_timer wake;      // the writer waits on it; acks and errors cancel it
    asio::steady_timer watchdog;  // fires when nothing arrived for dead_after
    Clock::time_point deadline;
    FrameDecoder decoder;
    std::set<std::uint64_t> in_flight;
    bool broken = false;
    bool reader_running = false;
    std::string why;
    std::function<void()> close;
  };

  void set_error(std::string text) {
    MutexLock lock(stats_mutex);
    stats.last_error = std::move(text);
  }
  template <typename F>
  void update(F&& f) {
    MutexLock lock(stats_mutex);
    f(stats);
  }
  std::uint64_t connects() const {
    MutexLock lock(stats_mutex);
    return stats.connects;
  }

  Result<void> open_recording() {
    if (reader && builder) return success();
    auto r = recorder::RecordingReader::open(config.recording_path);
    if (!r) return r.error();
    auto dbc = r->meta("dbc");
    if (!dbc) return dbc.error();
    auto channels = r->channels();
    if (!channels) return channels.error();
    auto b = BatchBuilder::create(dbc->value_or(""), *channels, config.hints);
    if (!b) return b.error();
    auto delivered = r->delivered();
    if (!delivered) return delivered.error();
    for (const auto& [first, last] : *delivered) acked.insert(SeqRange{first, last});
    reader.emplace(std::move(*r));
    builder.emplace(std::move(*b));
    return success();
  }

  void persist(bool force) {
    if (!reader || unpersisted.empty()) return;
    const auto now = Clock::now();
    if (!force && now - last_persist < config.persist_every) return;
    last_persist = now;
    if (auto ok = reader->add_delivered(unpersisted); !ok) {
      set_error(ok.error().message);
      return;  // kept for the next try; resends are harmless
    }
    unpersisted.clear();
  }

  void note_acked(SeqRange range, Link& link) {
    acked.insert(range);
    unpersisted.emplace_back(range.first, range.last);
    std::uint64_t newly = 0;
    for (auto it = link.in_flight.lower_bound(range.first);
         it != link.in_flight.end() && *it <= range.last;) {
      it = link.in_flight.erase(it);
      ++newly;
    }
    update([&](SenderStats& s) {
      s.batches_acked += newly;
      s.last_acked_seq = std::max(s.last_acked_seq, range.last);
    });
  }

  void refresh_backlog() {
    auto first = reader->first_seq();
    auto last = reader->last_seq();
    if (!first || !last || *last == 0) return;
    std::uint64_t delivered = 0;
    for (const SeqRange& r : acked.ranges()) {
      const std::uint64_t lo = std::max(r.first, *first), hi = std::min(r.last, *last);
      if (lo <= hi) delivered += hi - lo + 1;
    }
    const std::uint64_t held = *last - *first + 1;
    std::uint64_t lost = 0;
    const auto now = Clock::now();
    const bool check_lost = now - last_lost_check > std::chrono::seconds(30);
    if (check_lost) {
      last_lost_check = now;
      if (auto l = reader->lost_records()) lost = *l;
    }
    if (*first > 1) acked.erase_below(*first);
    update([&](SenderStats& s) {
      s.backlog_batches = held > delivered ? held - delivered : 0;
      if (check_lost) s.lost_records = lost;
    });
  }

  std::chrono::milliseconds backoff(int attempt) {
    const auto cap = config.backoff_max.count();
    long long base = config.backoff_initial.count();
    for (int i = 0; i < attempt && base < cap; ++i) base *= 2;
    base = std::min<long long>(base, cap);
    // "Equal jitter": between half and all of the delay, so edges that lost the link together spread out.
    std::uniform_int_distribution<long long> pick(base / 2, base);
    return std::chrono::milliseconds(pick(rng));
  }

  awaitable<void> watchdog(std::shared_ptr<Link> link) {
    while (!link->broken) {
      link->watchdog.expires_at(link->deadline);
      co_await link->watchdog.async_wait(kNoThrow);
      if (link->broken) break;
      if (Clock::now() >= link->deadline) {
        link->why =
            "no data from the server for " + std::to_string(config.dead_after.count()) + " ms (dead link)";
        link->close();
        break;
      }
    }
  }

  template <typename Stream>
  awaitable<void> write(Stream& stream, const Message& message, Link& link) {
    std::vector<std::uint8_t> frame;
    if (auto ok = encode_frame(message, frame); !ok) {
      link.why = ok.error().message;
      link.broken = true;
      co_return;
    }
    auto [ec, n] = co_await asio::async_write(stream, asio::buffer(frame), kNoThrow);
    if (ec) {
      if (link.why.empty()) link.why = "write: " + ec.message();
      link.broken = true;
      co_return;
    }
    const std::size_t sent = n;  // a structured binding: clang 14 (make lint) cannot capture it
    update([sent](SenderStats& s) { s.bytes_sent += sent; });
  }

  // Reads one message (with the watchdog running); nullopt when the link broke.
  template <typename Stream>
  awaitable<std::optional<Message>> read_message(Stream& stream, Link& link) {
    std::array<std::uint8_t, 16384> buffer;
    for (;;) {
      auto next = link.decoder.next();
      if (!next) {
        link.why = "from the server: " + next.error().message;
        link.broken = true;
        co_return std::nullopt;
      }
      if (next->has_value()) {
        link.deadline = Clock::now() + config.dead_after;
        co_return std::move(**next);
      }
      auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), kNoThrow);
      if (ec) {
        if (link.why.empty()) link.why = "read: " + ec.message();
        link.broken = true;
        co_return std::nullopt;
      }
      link.decoder.feed(std::span<const std::uint8_t>(buffer.data(), n));
    }
  }

  template <typename Stream>
  awaitable<void> reader_loop(Stream& stream, std::shared_ptr<Link> link) {
    link->reader_running = true;
    while (!link->broken) {
      auto message = co_await read_message(stream, *link);
      if (!message) break;
      if (const auto* ack = std::get_if<Ack>(&*message)) {
        for (const SeqRange& r : ack->stored) note_acked(r, *link);
        link->wake.cancel();
      } else if (const auto* bye = std::get_if<Goodbye>(&*message)) {
        link->why = "server closed: " + bye->reason;
        break;
      }
      // Keepalives only refresh the deadline (read_message did).
    }
    link->broken = true;
    link->reader_running = false;
    link->wake.cancel();
  }

  template <typename Stream>
  awaitable<void> send_block(Stream& stream, const recorder::Block& block, bool live, Link& link) {
    Batch batch = builder->build(block);
    const std::size_t samples = batch.sample_count();
    link.in_flight.insert(block.seq);
    co_await write(stream, Message(std::move(batch)), link);
    update([&](SenderStats& s) {
      ++s.batches_sent;
      ++(live ? s.live_sent : s.backlog_sent);
      s.samples_sent += samples;
    });
  }

  // The session after the transport is up: hello, then live blocks first and the backlog behind.
  template <typename Stream>
  awaitable<void> session(Stream& stream, std::shared_ptr<Link> link) {
    Hello hello = config.hello;
    hello.protocol_version = kProtocolVersion;
    hello.channels = builder->catalogue();
    auto first = reader->first_seq();
    auto last = reader->last_seq();
    if (!first || !last) {
      link->why = !first ? first.error().message : last.error().message;
      co_return;
    }
    hello.first_seq = *first;
    hello.last_seq = *last;
    co_await write(stream, Message(hello), *link);
    if (link->broken) co_return;
    auto answer = co_await read_message(stream, *link);
    if (!answer) co_return;
    if (const auto* bye = std::get_if<Goodbye>(&*answer)) {
      link->why = "server refused: " + bye->reason;
      co_return;
    }
    const auto* ack = std::get_if<HelloAck>(&*answer);
    if (!ack) {
      link->why = std::string("server answered the hello with ") + message_name(*answer);
      co_return;
    }
    for (const SeqRange& r : ack->stored) note_acked(r, *link);
    persist(true);
    refresh_backlog();  // before `connects` moves: a reader that sees the connect sees a true backlog
    update([&](SenderStats& s) {
      ++s.connects;
      s.connected = true;
    });
    const auto keepalive = std::chrono::milliseconds(std::clamp<std::uint32_t>(
        ack->keepalive_ms, 100, static_cast<std::uint32_t>(config.keepalive.count()) * 10));
    asio::co_spawn(io, reader_loop(stream, link), asio::detached);

    std::uint64_t live_cursor = hello.last_seq;  // blocks after it are live
    std::uint64_t backlog_scan = 0;              // undelivered seqs above this are still to look at
    bool backlog_scanned = false;
    std::deque<std::uint64_t> backlog;
    auto last_sent = Clock::now();
    auto last_backlog_refresh = Clock::time_point{};
    while (!link->broken && !stopping) {
      while (!link->broken && link->in_flight.size() < config.window) {
        auto fresh = reader->read_after(live_cursor, 1);
        if (!fresh) {
          link->why = fresh.error().message;
          link->broken = true;
          break;
        }
        if (!fresh->empty()) {
          const recorder::Block& block = fresh->front();
          live_cursor = block.seq;
          if (!acked.contains(block.seq)) co_await send_block(stream, block, true, *link);
          last_sent = Clock::now();
          continue;
        }
        if (backlog.empty() && !backlog_scanned) {
          auto seqs = reader->undelivered(backlog_scan, 512);
          if (!seqs) {
            link->why = seqs.error().message;
            link->broken = true;
            break;
          }
          if (seqs->size() < 512) backlog_scanned = true;
          for (std::uint64_t seq : *seqs) {
            backlog_scan = seq;
            if (seq > hello.last_seq) {
              backlog_scanned = true;
              break;
            }
            if (!acked.contains(seq) && link->in_flight.count(seq) == 0) backlog.push_back(seq);
          }
        }
        if (backlog.empty()) break;
        const std::uint64_t seq = backlog.front();
        backlog.pop_front();
        if (acked.contains(seq)) continue;
        auto block = reader->read_block(seq);
        if (!block) {
          link->why = block.error().message;
          link->broken = true;
          break;
        }
        if (!block->has_value()) continue;  // deleted by the bounds meanwhile (delivered)
        co_await send_block(stream, **block, false, *link);
        last_sent = Clock::now();
      }
      const auto now = Clock::now();
      if (now - last_backlog_refresh > keepalive) {
        last_backlog_refresh = now;
        refresh_backlog();
      }
      if (!link->broken && now - last_sent >= keepalive) {
        Keepalive k;
        k.sent_ns = config.clock->wall_now().ns();
        {
          MutexLock lock(stats_mutex);
          k.backlog_batches = stats.backlog_batches;
          k.lost_records = stats.lost_records;
        }
        co_await write(stream, Message(k), *link);
        last_sent = Clock::now();
      }
      persist(false);
      if (link->broken) break;
      link->wake.expires_after(std::min<Clock::duration>(config.poll, keepalive));
      co_await link->wake.async_wait(kNoThrow);
    }
    if (stopping) link->why = "stopping";
  }

  // One connection attempt and its session; returns whether the hello succeeded.
  awaitable<bool> connect_and_serve() {
    tcp::resolver resolver(io);
    // Not a structured binding: the lambdas below capture it, which clang 14 (make lint) cannot.
    auto resolved = co_await resolver.async_resolve(config.host, std::to_string(config.port), kNoThrow);
    const asio::error_code rec = std::get<0>(resolved);
    const tcp::resolver::results_type endpoints = std::move(std::get<1>(resolved));
    if (rec) {
      set_error("cannot resolve " + config.host + ": " + rec.message());
      co_return false;
    }
    if (!config.tls) {
      for (const auto& e : endpoints) {
        if (!e.endpoint().address().is_loopback()) {
          set_error("plaintext uplink refused: " + config.host + " is not a loopback address");
          co_return false;
        }
      }
    }
    auto link = std::make_shared<Link>(io.get_executor());
    link->deadline = Clock::now() + config.connect_timeout;
    bool hello_done = false;
    const std::string where = config.host + ":" + std::to_string(config.port);
    auto run = [&](auto& stream, tcp::socket& socket) -> awaitable<void> {
      link->close = [&socket] {
        asio::error_code ignored;
        socket.shutdown(tcp::socket::shutdown_both, ignored);
        socket.close(ignored);
      };
      close_link = link->close;
      asio::co_spawn(io, watchdog(link), asio::detached);
      auto [cec, ep] = co_await asio::async_connect(socket, endpoints, kNoThrow);
      if (cec) {
        link->why = "connect to " + where + ": " + (link->why.empty() ? cec.message() : link->why);
        co_return;
      }
      socket.set_option(tcp::no_delay(true));
      if constexpr (!std::is_same_v<std::decay_t<decltype(stream)>, tcp::socket>) {
        expect_server_name(stream.native_handle(),
                           config.tls_server_name.empty() ? config.host : config.tls_server_name);
        auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, kNoThrow);
        if (hec) {
          link->why = "TLS handshake with " + where + ": " + hec.message();
          co_return;
        }
      }
      link->deadline = Clock::now() + config.dead_after;
      const auto before = connects();
      co_await session(stream, link);
      hello_done = connects() != before;
    };
    // Ends the link and waits until its reader coroutine let go of the stream.
    auto finish = [&]() -> awaitable<void> {
      link->broken = true;
      link->close();
      link->watchdog.cancel();
      while (link->reader_running) {
        link->wake.expires_after(std::chrono::milliseconds(5));
        co_await link->wake.async_wait(kNoThrow);
      }
    };
    if (config.tls) {
      asio::ssl::stream<tcp::socket> stream(io, *config.tls);
      co_await run(stream, stream.next_layer());
      co_await finish();
    } else {
      tcp::socket socket(io);
      co_await run(socket, socket);
      co_await finish();
    }
    close_link = nullptr;
    persist(true);
    if (!link->why.empty() && link->why != "stopping") set_error(link->why);
    update([&](SenderStats& s) {
      if (s.connected) ++s.disconnects;
      s.connected = false;
      if (!hello_done) ++s.connect_failures;
    });
    co_return hello_done;
  }

  asio::steady_timer pause{io};  // between connection attempts

  awaitable<void> main_loop() {
    int attempt = 0;
    while (!stopping) {
      bool ok = false;
      if (auto opened = open_recording(); !opened) {
        set_error(opened.error().message);
      } else {
        ok = co_await connect_and_serve();
      }
      if (stopping) break;
      attempt = ok ? 0 : attempt + 1;
      pause.expires_after(backoff(attempt));
      co_await pause.async_wait(kNoThrow);
    }
    persist(true);
  }
};

Sender::Sender(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Sender::~Sender() { stop(); }

Result<std::unique_ptr<Sender>> Sender::start(SenderConfig config) {
  if (config.recording_path.empty())
    return Error(ErrorCode::invalid_argument, "uplink: no recording to send from");
  if (config.hello.edge_id.empty()) return Error(ErrorCode::invalid_argument, "uplink: empty edge id");
  if (config.window == 0) config.window = 1;
  auto impl = std::make_shared<Impl>();
  impl->config = std::move(config);
  Impl* raw = impl.get();
  asio::co_spawn(raw->io, raw->main_loop(), asio::detached);
  raw->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<Sender>(new Sender(std::move(impl)));
}

void Sender::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  Impl* raw = impl_.get();
  asio::post(raw->io, [raw] {
    raw->stopping = true;
    raw->pause.cancel();
    if (raw->close_link) raw->close_link();
  });
  // The coroutines end once they see `stopping` or their closed socket; then the loop runs dry.
  raw->thread.join();
  raw->persist(true);
}

SenderStats Sender::stats() const {
  MutexLock lock(impl_->stats_mutex);
  return impl_->stats;
}

}  // namespace cellguard::uplink
