// A CAN bus endpoint: send frames, receive the frames others send, hear about link errors.
//
// One seam, four transports, chosen by URL in open_bus():
//
//   inproc:NAME                     in-process bus: every endpoint opened on NAME with the same
//                                   io_context sees the frames the others send (not its own)
//   socketcand://HOST:PORT/CHANNEL  a socketcand server over TCP, raw mode (see socketcand.h)
//   socketcan:IFNAME                Linux SocketCAN raw socket, classic and FD (see socketcan.cpp)
//   replay:PATH[?speed=K&loop=1&bus=NAME&time=wall|log]
//                                   replays a recorded CAN log (see replay_bus.cpp)
//
// Log replay. PATH is a log in any format log.h reads (candump -L, candump console, ASC, TRC;
// detected); it cannot contain '?'. open_bus() opens the file and detects its format, so a missing
// or unrecognisable file is an open_bus() error naming the path; the log is then streamed (one
// frame read ahead, never the whole file in memory). Reading a file blocks the loop only for the
// chunk being read.
// - on_ready fires once, on the loop, before the first frame. Replay starts when the loop first runs
//   after open_bus(), whether or not handlers are installed (frames before on_receive are counted
//   as received and lost).
// - Frames reach on_receive on the loop thread at their log time offsets from the first frame
//   delivered (the first frame of the selected bus), divided by `speed` (default 1; a fraction
//   slows down; 0 = as fast as possible, in batches of 256 frames with the loop free for timers and
//   other handlers between them). All frames due at once are delivered in one batch. A time that
//   goes backwards in the log is delivered at once.
// - timestamp_ns: `time=wall` (default) sets the wall-clock time of delivery, ns since the Unix
//   epoch, like the other buses; `time=log` keeps the log's own time (for logs without a date, the
//   time since the log start; with loop=1 the times repeat each pass). `bus` keeps the log's bus
//   name or channel as written ("can0"; "1" for ASC/TRC channels; "" where the format has none).
// - `bus=NAME` delivers only frames whose bus name/channel equals NAME; others are skipped, not
//   counted.
// - send() validates the frame and counts it (frames_sent); it goes nowhere (a log cannot answer).
// - A malformed line is skipped and counted (frames_dropped); the first 5 are reported through
//   on_error (ErrorCode::parse_error, "replay: PATH:LINE: cause"). Replay goes on.
// - The end of the log: with loop=1 the log starts again at once (the first frame of the next pass
//   is due when the last one of this pass was). Otherwise, and when a pass delivered no frame, the
//   bus reports "replay: PATH: end of log after N frames" once through on_error with
//   ErrorCode::end_of_input and then stays open and idle (is_closed() false, send() still accepted):
//   a closed bus would be reopened by a caller's reconnect policy and replay the log again.
// - An I/O failure reading the file (or reopening it for the next pass) is reported through on_error
//   and closes the bus, like a lost link.
//
// Threading. One asio::io_context per process drives every bus, run by exactly one thread (the
// "loop thread"). Receive, error and ready handlers run on the loop thread. `send()` and
// `counters()` may be called from any thread; `send()` only queues, it never blocks the caller or the
// loop. Install handlers and call `close()` on the loop thread, or while the loop is not running.
//
// Lifetime. A Bus owns its socket; destroying it closes it. No handler runs after `close()` returned
// on the loop thread or the Bus was destroyed there.
//
// Errors. `send()` returns an Error for a frame that can never go out (invalid id or length, a kind
// the transport does not carry, a closed bus) or when its queue is full (the frame is dropped and
// counted). Failures after the fact (link lost, bus-off, malformed input from a peer) go to the
// error handler; a lost link also closes the bus. Reconnecting is the caller's policy, not the bus's.
// Malformed input (a socketcand element or log line that does not parse) is reported with
// ErrorCode::parse_error while the bus stays open: the link is fine, one element was bad. Texts in
// errors that quote a peer's bytes are escaped (core/text.h escape_untrusted), never raw.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "can/frame.h"
#include "core/result.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::can {

struct BusCounters {
  std::uint64_t frames_received = 0;     // frames handed to the receive handler
  std::uint64_t frames_sent = 0;         // frames accepted by send() and queued for the transport
  std::uint64_t frames_dropped = 0;      // frames lost: queue full, unparsable, or bus closed
  std::uint64_t errors = 0;              // errors reported to the error handler
  std::uint64_t malformed_elements = 0;  // protocol elements from a peer that did not parse (socketcand)
  // SocketCAN only (0 elsewhere):
  std::uint64_t rx_queue_overflows =
      0;  // frames the kernel dropped from the socket's receive queue (SO_RXQ_OVFL)
  std::uint64_t restarts_requested = 0;  // bus-off: controller restarts the bus asked for (rtnetlink)
  std::uint64_t restart_failures = 0;    // ... and the kernel refused (reason through on_error)
};

class Bus {
 public:
  using ReceiveHandler = std::function<void(const Frame&)>;
  using ErrorHandler = std::function<void(const Error&)>;
  using ReadyHandler = std::function<void()>;

  Bus() = default;
  Bus(const Bus&) = delete;
  Bus& operator=(const Bus&) = delete;
  virtual ~Bus() = default;

  // Queues `frame` for sending. The frame's `timestamp_ns` and `bus` are ignored.
  virtual Result<void> send(const Frame& frame) = 0;

  // Called on the loop thread for every frame received from others, with `timestamp_ns` set to the
  // receive time (ns since the Unix epoch; for socketcand the server's receive time) and `bus` set
  // to the bus name (inproc NAME, socketcand CHANNEL, SocketCAN IFNAME).
  virtual void on_receive(ReceiveHandler handler) = 0;
  // Called on the loop thread for every failure after the fact: link lost, bus-off, malformed input.
  virtual void on_error(ErrorHandler handler) = 0;
  // Called once on the loop thread when the bus carries frames (for socketcand: after the handshake;
  // frames sent before are queued). If the bus is already ready, the call is posted at once.
  virtual void on_ready(ReadyHandler handler) = 0;

  // Stops sending and receiving and releases the socket. Idempotent.
  virtual void close() = 0;
  virtual bool is_closed() const = 0;

  // "inproc:rig", "socketcand://127.0.0.1:29536/can0", "socketcan:vcan0", "replay:rig.log?speed=10"
  // (a replay bus gives its URL as opened).
  virtual std::string describe() const = 0;
  virtual BusCounters counters() const = 0;
};

// Opens the bus named by `url` (see the top of this file). Errors: invalid_argument for a malformed
// URL, unsupported for an unknown scheme or a host without SocketCAN, io_error when the OS refuses.
// A socketcand bus connects asynchronously: failures to connect arrive through on_error.
Result<std::unique_ptr<Bus>> open_bus(asio::io_context& io, std::string_view url);

// True if `frame` is something a bus can carry: id within 11/29 bits, a valid length for classic or
// FD, no remote FD frame, no FD flags on a classic frame. Error frames are not checked.
Result<void> validate_frame(const Frame& frame);

}  // namespace cellguard::can
