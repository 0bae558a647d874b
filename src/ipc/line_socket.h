// Local control sockets: one request line in, one response line out, over a Unix stream socket.
// The simulator's `sim ctl` and the edge's operator interface (`edge status|reset|schedule`) use it.
//
// LineServer runs on the caller's asio loop: it binds the path (replacing a stale socket file, never
// another kind of file), accepts at most max_sessions clients, reads lines of at most max_line_bytes
// (a longer line gets an error response and the session is closed), hands each line to the handler
// on the loop thread and writes back the handler's response plus '\n'. Closing removes the file.
// request_line() is the blocking client for command-line tools.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::ipc {

struct LineServerOptions {
  std::string path;
  std::size_t max_line_bytes = 4096;
  std::size_t max_sessions = 16;
  // Response for a line over the limit (a JSON error object by default).
  std::string overlong_response = R"({"ok":false,"error":"request longer than the line limit"})";
};

class LineServer {
 public:
  using Handler = std::function<std::string(std::string_view line)>;

  // Binds and listens. Errors name the path (too long for sun_path, exists and is not a socket, ...).
  static Result<std::unique_ptr<LineServer>> start(asio::io_context& io, LineServerOptions options, Handler handler);
  ~LineServer();  // close()
  LineServer(const LineServer&) = delete;
  LineServer& operator=(const LineServer&) = delete;

  void close();  // stops accepting, ends sessions, removes the socket file; idempotent
  const std::string& path() const;

 private:
  struct Impl;
  explicit LineServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Connects to `path`, sends `line` + '\n', returns the response line (without '\n'). Blocking, with
// a timeout for connecting and answering.
Result<std::string> request_line(const std::string& path, std::string_view line, int timeout_ms = 5000);

// The default path of a control socket: $XDG_RUNTIME_DIR (or /tmp) / `name`.
std::string default_socket_path(std::string_view name);

}  // namespace cellguard::ipc
