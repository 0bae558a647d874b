// The edge's uplink sender: streams the durable local recording to the server, losing nothing.
//
// It reads blocks from the recording (recorder/recorder.h, a separate read connection), turns each
// into one batch (batch_builder.h) with the block's seq and sends it over TLS (or plaintext to a
// loopback address, only when asked). The server acknowledges seqs after its own durable commit;
// only then are they marked delivered in the recording (which lets its bounds delete them). Nothing
// is ever discarded on the sender's side: unacknowledged batches are sent again after a reconnect
// and the server drops the duplicates.
//
// Order after (re)connecting: the hello tells the server which seqs the edge holds, the answer
// which of them the server already has. New blocks (live data) always go first; the backlog of
// undelivered older blocks drains behind them, oldest first, within a window of batches in flight.
// Links: exponential backoff with jitter between attempts (capped), keepalives both ways and a dead
// link declared when nothing arrives for `dead_after` (a stalled path is cut and reconnected).
//
// Threads: one of its own (an asio io_context); it never touches the edge's loop. start() returns
// once the thread runs; stop() (or the destructor) ends it, saving the delivered marks first.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "core/result.h"
#include "core/time.h"
#include "uplink/batch_builder.h"
#include "uplink/protocol.h"

namespace asio::ssl {
class context;
}

namespace cellguard::uplink {

struct SenderConfig {
  std::string recording_path;
  std::string host = "127.0.0.1";
  std::uint16_t port = 6699;
  // TLS client context (client certificate, CA, TLS 1.3; pki/tls.h builds one). Null: plaintext,
  // refused unless `host` resolves to loopback addresses only.
  std::shared_ptr<asio::ssl::context> tls;
  std::string tls_server_name;  // name or IP the server's certificate must carry; empty: host
  Hello hello;                  // edge_id, versions and hashes; channels and seqs are filled in
  CatalogueHints hints;
  const Clock* clock = &system_clock();  // the keepalives' wall time; never null
  std::chrono::milliseconds keepalive{1000};
  std::chrono::milliseconds dead_after{5000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
  std::chrono::milliseconds poll{50};            // how often the recording is checked for new blocks
  std::chrono::milliseconds persist_every{500};  // how often delivered marks are written
  std::size_t window = 64;                       // batches sent and not yet acknowledged
};

struct SenderStats {
  bool connected = false;
  std::uint64_t connects = 0;          // successful hellos
  std::uint64_t connect_failures = 0;  // connect, TLS or hello failures
  std::uint64_t disconnects = 0;
  std::uint64_t batches_sent = 0;  // including resends
  std::uint64_t batches_acked = 0;
  std::uint64_t live_sent = 0, backlog_sent = 0;
  std::uint64_t samples_sent = 0;
  std::uint64_t bytes_sent = 0;
  std::uint64_t backlog_batches = 0;  // blocks in the recording not yet delivered (true once connects > 0)
  std::uint64_t lost_records = 0;     // stripped by the recording's bounds before delivery
  std::uint64_t last_acked_seq = 0;
  std::string last_error;
};

class Sender {
 public:
  static Result<std::unique_ptr<Sender>> start(SenderConfig config);
  ~Sender();
  Sender(const Sender&) = delete;
  Sender& operator=(const Sender&) = delete;

  void stop();
  SenderStats stats() const;

 private:
  struct Impl;
  explicit Sender(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellguard::uplink
