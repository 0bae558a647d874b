// The fault proxy: a TCP relay between clients (edges) and one target (the server) that injects
// network faults — cuts, resets, stalls, delays, blackholes, refused connections — at random times
// from a seeded plan (plan.h) or on request over a control socket. Bytes pass opaquely (TLS is never
// decrypted), so the peers see exactly what a bad network would do to them.
//
// Each accepted connection gets its own connection to the target and two relay pipes (up: client →
// target, down: target → client). A pipe reads a chunk, queues it with its due time (now + delay,
// never before the chunk ahead of it, so order holds) and writes it when due. Memory is bounded:
// without delay a pipe reads the next chunk only after the previous one is written (backpressure to
// the sender through TCP); with delay it holds at most max_delayed_bytes per direction.
//
// Faults (what the peers see):
//   cut        both sockets shut down for sending (FIN), then drained briefly and closed; queued bytes lost
//   reset      both sockets closed with SO_LINGER 0 (RST: ECONNRESET at the peers)
//   stall      a direction stops moving bytes for the duration; sockets stay open; queued bytes resume after
//   delay      every chunk from now on waits a latency drawn from a range; until changed or for a period
//   blackhole  for the period, new connections are accepted and never connected (their bytes are
//              discarded); the hit existing connections stall both ways for the period
//   refuse     for the period, new connections are closed at once; the hit existing connections are cut
// Random mode: faults from the plan hit all connections (Scope::all) or one (Scope::one, by the
// plan's pick), and every chunk gets a latency from the delay range. Pass mode: nothing is injected
// by the plan; setting pass (also again) ends every active stall, delay, blackhole and refuse period.
// Commands (inject(), the control socket) work in both modes.
//
// The log sink receives one JSON object per line (without '\n'): faults
// {"t":..,"event":"fault","kind":"stall","source":"plan","conns":[3],"ms":2500,"dir":"up"} and
// connection events ("open", "close" with how and byte counts, "refused", "blackholed").
//
// Control socket (JSON lines, ipc/line_socket.h): {"cmd":"cut"}, {"cmd":"reset","conn":3},
// {"cmd":"stall","ms":3000,"dir":"up"}, {"cmd":"delay","ms":50,"max_ms":150,"for_ms":10000},
// {"cmd":"blackhole","ms":5000}, {"cmd":"refuse","ms":5000}, {"cmd":"mode","mode":"pass"},
// {"cmd":"stats"}. Answers {"ok":true,...} or {"ok":false,"error":"..."}.
//
// Thread safety: a FaultProxy lives on one asio io_context; call every method on its thread
// (asio::post from others). The io_context must outlive the FaultProxy.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/result.h"
#include "faultproxy/plan.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::faultproxy {

enum class Mode { random, pass };
std::string_view to_string(Mode mode);
Result<Mode> parse_mode(std::string_view name);

enum class Scope { all, one };  // which connections a planned fault hits

struct ProxyOptions {
  std::string listen = "127.0.0.1:0";  // HOST:PORT, [V6]:PORT; port 0 picks a free one
  std::string target;                  // HOST:PORT of the server
  Mode mode = Mode::random;
  std::uint64_t seed = 1;
  PlanOptions plan;
  DurationRange delay{};  // random mode: latency of every chunk; zero: none
  Scope scope = Scope::all;
  std::string control_path;  // Unix socket for live control; empty: none
  std::size_t chunk_bytes = 16 * 1024;
  std::size_t max_delayed_bytes = 1 << 20;              // per direction of a connection
  std::size_t max_connections = 4096;                   // beyond this, new connections are refused
  Nanos drain_timeout = std::chrono::seconds(2);        // a cut socket is closed after this at the latest
  std::function<void(std::string_view json_line)> log;  // fault and connection events; may be empty
};

// A fault to carry out now (from the plan, a command or a test).
struct Fault {
  FaultKind kind = FaultKind::cut;
  Nanos duration{0};  // stall, blackhole, refuse: the period; delay: how long (0: until changed)
  Direction direction = Direction::both;    // stall
  DurationRange latency{};                  // delay: per-chunk latency (zero: delays off)
  std::optional<std::uint64_t> connection;  // one connection by id; none: all connections
};

struct ProxyStats {
  std::uint64_t accepted = 0;          // connections accepted on the listen socket
  std::uint64_t active = 0;            // open now (connecting, relaying, blackholed, closing)
  std::uint64_t relayed = 0;           // connected to the target
  std::uint64_t connect_failures = 0;  // the target refused or was unreachable (the client is reset)
  std::uint64_t refused = 0;           // closed at once (refuse period or max_connections)
  std::uint64_t blackholed = 0;
  std::uint64_t closed = 0;
  std::uint64_t bytes_up = 0;              // written to the target
  std::uint64_t bytes_down = 0;            // written to clients
  std::uint64_t buffered_bytes = 0;        // read and not yet written, all connections, now
  std::uint64_t max_pipe_buffered = 0;     // the most one pipe ever held
  std::uint64_t faults[kFaultKinds] = {};  // by FaultKind
  std::string mode;
};
std::string to_json(const ProxyStats& stats);

class FaultProxy {
 public:
  // Resolves and binds, connects nothing yet; starts accepting, the plan (random mode) and the
  // control socket. Errors name the option (listen, target, control) and the cause.
  static Result<std::unique_ptr<FaultProxy>> start(asio::io_context& io, ProxyOptions options);
  ~FaultProxy();  // close()
  FaultProxy(const FaultProxy&) = delete;
  FaultProxy& operator=(const FaultProxy&) = delete;

  std::string listen_address() const;  // "127.0.0.1:41234"
  std::uint16_t listen_port() const;
  const std::string& control_path() const;

  void inject(const Fault& fault);  // source "control" in the log
  void set_mode(Mode mode);
  Mode mode() const;
  ProxyStats stats() const;
  // One control request line → one answer line (what the control socket does), for tests and tools.
  std::string handle_control(std::string_view line);

  void close();  // stops accepting, closes every connection and the control socket; idempotent

 private:
  struct Impl;
  explicit FaultProxy(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// A parsed control request. Pure; bad input gives a located error, never a crash.
struct ControlRequest {
  enum class Verb { fault, mode, stats } verb = Verb::stats;
  Fault fault;
  Mode mode = Mode::pass;
};
Result<ControlRequest> parse_control_request(std::string_view line);

}  // namespace cellguard::faultproxy
