// A socketcand server for an in-process bus, so that programs on other hosts or in other languages
// (python-can, Kayak, our own socketcand:// client) share the simulator's bus over TCP.
//
// It speaks the raw mode of linux-can/socketcand (see socketcand_protocol.h): `< hi >`, `< open
// CHANNEL >`, `< rawmode >`, then `< frame ... >` out and `< send ... >` in. A frame a client sends
// goes to the in-process bus and to every other client in raw mode, not back to its sender. BCM
// commands other than `send` are answered with `< error ... >`.
//
// Limits: elements longer than socketcand::kMaxElementBytes are skipped and answered with an error;
// a client that does not read fast enough loses frames (counted) once its queue holds
// max_client_queue_bytes, so it never slows the bus or the other clients.
//
// Wire details, for python-can 4.1 (Debian 12), the client most likely to connect: each frame
// element is followed by "\n" (socketcand sends none, but python-can 4.1 drops one byte after the
// last complete element of a read, and the newline is that byte; every socketcand client skips
// bytes between elements). Handshake replies are sent bare, because python-can compares them whole,
// and nothing follows the rawmode `< ok >` for SocketcandServerOptions::rawmode_grace.
//
// CAN FD (`fdframe`/`fdsend`) and remote frames (`rtr`/`sendrtr`, from protocol.md) are carried;
// python-can (4.1 and current) knows neither and skips such elements with a warning, and
// socketcand's raw mode (state_raw.c) carries FD but answers `sendrtr` with an error.
//
// Threading: as Bus (bus.h). Create, close and destroy on the loop thread or while it is stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "can/bus.h"

namespace cellguard::can {

struct SocketcandServerOptions {
  std::string inproc_bus;        // serve the in-process bus `inproc:<inproc_bus>`
  std::string channel = "can0";  // the bus name clients `< open >`
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;  // 0: an ephemeral port, see port()
  std::size_t max_client_queue_bytes = 256 * 1024;
  std::size_t max_clients = 64;
  // After the `< ok >` to `< rawmode >`, output to that client waits this long (frames are queued,
  // not lost): python-can reads that reply with a single recv and fails if a frame is glued to it.
  std::chrono::milliseconds rawmode_grace{50};
};

struct SocketcandServerCounters {
  std::uint64_t clients_accepted = 0;
  std::uint64_t clients_connected = 0;    // connected now
  std::uint64_t frames_from_clients = 0;  // valid send commands received
  std::uint64_t frames_to_clients = 0;    // frame elements queued to clients
  std::uint64_t frames_dropped = 0;       // frame elements not queued: client queue full
  std::uint64_t malformed_elements = 0;   // elements rejected (too long, unparsable, unknown)
};

class SocketcandServer {
 public:
  // Listens and accepts on `io`. Errors: invalid_argument for bad options, io_error if the address
  // cannot be bound.
  static Result<std::unique_ptr<SocketcandServer>> start(asio::io_context& io,
                                                         SocketcandServerOptions options);

  SocketcandServer(const SocketcandServer&) = delete;
  SocketcandServer& operator=(const SocketcandServer&) = delete;
  ~SocketcandServer();

  std::uint16_t port() const;
  // Stops accepting and closes every client connection. Idempotent.
  void close();
  SocketcandServerCounters counters() const;

  class Impl;

 private:
  explicit SocketcandServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace cellguard::can
