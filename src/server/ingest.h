// The server's ingest: accepts the streams of many edges (uplink/protocol.h) over mutual TLS,
// stores their batches durably (store/store.h) and acknowledges them only after the commit.
//
// Per connection: TLS 1.3 handshake (pki/tls.h: unknown, expired and revoked certificates fail it),
// then a hello whose edge id must equal the certificate's name (an edge cannot claim another's id),
// the catalogue is registered, and the answer lists which of the edge's seqs the server already
// holds. Batches are checked (channels in the catalogue) and queued to one writer thread that
// commits many edges' batches per transaction every `commit_interval` (or sooner when much is
// waiting); after each commit every session gets its acks. Duplicates (resends) are acknowledged
// and not stored twice. If a commit fails (disk full, I/O error), nothing is acknowledged: the
// affected edges are told why and disconnected, and they resend after reconnecting.
// A second connection of the same edge replaces the first. Anything malformed closes the
// connection with a goodbye naming the reason, logged; nothing crashes the server.
//
// Threads: `io_threads` asio threads for the connections (a strand each), one writer thread for
// the store. Plaintext only when asked for and only on a loopback address.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::pki {
class TlsServerContext;
}
namespace cellguard::store {
class Store;
struct Batch;
}  // namespace cellguard::store
namespace spdlog {
class logger;
}

namespace cellguard::server {

struct IngestConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6699;                   // 0: any free port (tests)
  std::shared_ptr<pki::TlsServerContext> tls;  // null: plaintext (loopback only)
  std::string crl_path;                        // reloaded when it changes (after `pki revoke`)
  std::string server_id = "cellguard-server";
  const Clock* clock = &system_clock();  // the wall clock of EdgeStatus and keepalives; never null
  std::chrono::milliseconds keepalive{1000};
  std::chrono::milliseconds dead_after{5000};
  std::chrono::milliseconds handshake_timeout{5000};
  std::chrono::milliseconds commit_interval{50};
  std::size_t commit_samples = 400'000;   // commit sooner when this many samples wait
  std::size_t max_queued_batches = 1024;  // per connection, waiting for the writer
  int io_threads = 1;
  std::shared_ptr<spdlog::logger> log;  // null: spdlog's default logger
  // Called on the writer thread after each successful commit, once per edge with that edge's
  // batches of the transaction (in arrival order; a resend the store skipped as duplicate may be
  // among them). Must be quick and must not call back into the server (live caches, alarms).
  std::function<void(const std::string& edge_id, const std::vector<store::Batch>& batches)> on_committed;
};

// What the server knows of one edge (for status, metrics, the dashboard).
struct EdgeStatus {
  std::string edge_id;
  bool connected = false;
  std::string peer;  // remote address of the current (or last) connection
  std::string software_version;
  std::string config_sha256;
  WallTime connected_since;
  WallTime last_seen;  // last message received; the epoch: never
  std::uint64_t connections = 0;
  std::uint64_t batches = 0;     // committed
  std::uint64_t duplicates = 0;  // acknowledged resends
  std::uint64_t samples = 0;
  std::uint64_t backlog_batches = 0;  // the edge's own count, from its keepalives
  std::uint64_t lost_records = 0;     // the edge's backlog overflow, from its keepalives and batches
  std::uint64_t last_seq = 0;
  std::string last_error;  // why the last connection ended, if not cleanly
};

struct IngestStats {
  std::uint64_t connections = 0;  // accepted TCP connections
  std::uint64_t rejected = 0;     // failed handshake, bad hello, protocol errors
  std::uint64_t sessions = 0;     // now active
  std::uint64_t commits = 0;
  std::uint64_t commit_failures = 0;
  std::uint64_t batches = 0;
  std::uint64_t duplicates = 0;
  std::uint64_t samples = 0;
  std::uint64_t bytes_received = 0;
  double last_commit_ms = 0;
  std::string last_error;
};

class IngestServer {
 public:
  // Binds and starts accepting; `store` must outlive the server.
  static Result<std::unique_ptr<IngestServer>> start(IngestConfig config, store::Store& store);
  ~IngestServer();
  IngestServer(const IngestServer&) = delete;
  IngestServer& operator=(const IngestServer&) = delete;

  std::uint16_t port() const;
  std::vector<EdgeStatus> edges() const;
  IngestStats stats() const;
  // Stops accepting, closes the connections, commits and acknowledges what was queued, then returns.
  void stop();

  struct Impl;  // ingest.cpp only (public so the connection sessions there can name it)

 private:
  explicit IngestServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellguard::server
