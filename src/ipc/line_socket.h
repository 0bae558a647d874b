// Local control sockets: one request line in, one response line out, over a Unix stream socket.
// The simulator's `sim ctl` and the edge's operator interface (`edge status|reset|schedule`) use it.
//
// LineServer runs on the caller's asio loop: it binds the path (replacing a stale socket file of
// ours, never another kind of file or another user's), accepts at most max_sessions clients, reads
// lines of at most max_line_bytes (a longer line gets an error response and the session is closed),
// hands each line with the peer's credentials to the handler on the loop thread and writes back the
// handler's response plus '\n'. Closing removes the file. request_line() is the blocking client for
// command-line tools.
//
// Who may talk to it (issue 12 item 6): the socket is created 0600 whatever the umask (0660 with a
// configured group), in a directory that is ours (or root's) and not writable by others (sticky
// directories such as /tmp excepted: nobody else can replace our file there). The default directory
// is private: $XDG_RUNTIME_DIR/cellguard, else /run/cellguard for root, else /tmp/cellguard-<uid>,
// created 0700 and refused when it belongs to someone else or others may write to it. A session
// without a complete line for idle_timeout_ms is closed. Past max_sessions only root and the
// socket's owner (our uid) get in (reserved_sessions more; past those, their oldest session is
// closed for them): idle clients can never lock the operator out. The client checks the file and
// the serving process (SO_PEERCRED) belong to root or to itself before it sends anything; the
// packaged services' system account "cellguard" (uid below 1000, made by root) counts as root's, so
// the operator reaches the edge that systemd runs as that user (docs/deploy.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "core/result.h"

namespace asio {
class io_context;
}  // namespace asio

namespace cellguard::ipc {

// Who is on the other end of a connection (SO_PEERCRED at accept time).
struct PeerCredentials {
  int pid = 0;
  std::uint32_t uid = 0;
  std::uint32_t gid = 0;
  std::string user;              // from the password database; the uid as text when it has no entry
  std::string describe() const;  // "pid 4711 uid 1000 (alice) gid 1000"
};

struct LineServerOptions {
  std::string path;
  std::size_t max_line_bytes = 4096;
  std::size_t max_sessions = 16;
  std::size_t reserved_sessions = 4;      // more, for root and our own uid only
  std::int64_t idle_timeout_ms = 10'000;  // without a complete line
  std::string group;  // non-empty: socket 0660 and directory 0750 with this group (it must exist)
  // Response for a line over the limit (a JSON error object by default).
  std::string overlong_response = R"({"ok":false,"error":"request longer than the line limit"})";
  std::string busy_response = R"({"ok":false,"error":"busy: too many clients connected"})";
};

class LineServer {
 public:
  using Handler = std::function<std::string(std::string_view line)>;
  using PeerHandler = std::function<std::string(std::string_view line, const PeerCredentials& peer)>;

  // Binds and listens. Errors name the path (too long for sun_path, exists and is not a socket,
  // belongs to another user, directory not private, unknown group, ...).
  static Result<std::unique_ptr<LineServer>> start(asio::io_context& io, LineServerOptions options,
                                                   PeerHandler handler);
  static Result<std::unique_ptr<LineServer>> start(asio::io_context& io, LineServerOptions options,
                                                   Handler handler);
  ~LineServer();  // close()
  LineServer(const LineServer&) = delete;
  LineServer& operator=(const LineServer&) = delete;

  void close();  // stops accepting, ends sessions, removes the socket file; idempotent
  const std::string& path() const;
  std::size_t session_count() const;  // open sessions (loop thread)

 private:
  struct Impl;
  explicit LineServer(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

// Connects to `path`, sends `line` + '\n', returns the response line (without '\n'). Blocking, with
// a timeout for connecting and answering. Refuses (before sending anything) a socket file, its
// directory or a serving process that belongs neither to root, nor to the caller's uid, nor to the
// system account "cellguard".
Result<std::string> request_line(const std::string& path, std::string_view line, int timeout_ms = 5000);

// The private directory for control sockets: $RUNTIME_DIRECTORY (systemd's RuntimeDirectory=, e.g.
// /run/cellguard for the packaged services), else $XDG_RUNTIME_DIR/cellguard, else /run/cellguard
// when running as root, else /tmp/cellguard-<uid>. Not created here (LineServer::start does).
std::string default_runtime_dir();
// default_runtime_dir() / `name`.
std::string default_socket_path(std::string_view name);

// Checks that `dir` may hold a control socket: a directory (not a symlink) owned by us or root and
// not writable by group or others unless sticky. `create`: a missing directory is made 0700 (0750
// with `group_gid` >= 0, then given that group) whatever the umask; one we create or own that is
// private must be owned by us and not writable by others, sticky or not.
Result<void> check_socket_dir(const std::string& dir, bool create_private, long group_gid = -1);

}  // namespace cellguard::ipc
