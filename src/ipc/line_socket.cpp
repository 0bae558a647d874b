#include "ipc/line_socket.h"

#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

namespace cellguard::ipc {
namespace {

using asio::local::stream_protocol;
constexpr std::size_t kMaxUnixPathBytes = sizeof(sockaddr_un::sun_path) - 1;
constexpr const char* kServiceAccount = "cellguard";

std::string user_name(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(4096);
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr)
    return found->pw_name;
  return std::to_string(uid);
}

std::string owner_text(uid_t uid) { return "uid " + std::to_string(uid) + " (" + user_name(uid) + ")"; }

// The packaged services' system account (packaging/: "cellguard", made by the package's postinst,
// so by root, in the system range below 1000). The edge runs as it under systemd; an operator's
// `cellguard edge status` (root, or a member of its group) must trust that edge's socket as it
// trusts one of root's: only root can create or take over a system account.
bool is_service_account(uid_t uid) {
  if (uid == 0 || uid >= 1000) return false;
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(4096);
  return ::getpwnam_r(kServiceAccount, &entry, buffer.data(), buffer.size(), &found) == 0 &&
         found != nullptr && found->pw_uid == uid;
}

// Root, our own uid and the services' system account: the operator of this process.
bool is_operator(uid_t uid) { return uid == 0 || uid == ::geteuid() || is_service_account(uid); }

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, PeerCredentials peer, const LineServerOptions& options,
          std::shared_ptr<LineServer::PeerHandler> handler)
      : socket_(std::move(socket)),
        idle_timer_(socket_.get_executor()),
        peer_(std::move(peer)),
        buffer_(options.max_line_bytes + 1),
        handler_(std::move(handler)),
        overlong_(options.overlong_response),
        idle_timeout_(std::chrono::milliseconds(options.idle_timeout_ms)) {}

  void start() { read(); }
  void close() {
    asio::error_code ignored;
    idle_timer_.cancel();
    socket_.close(ignored);
  }
  bool is_open() const { return socket_.is_open(); }
  const PeerCredentials& peer() const { return peer_; }

 private:
  void read() {
    // A client that does not complete a line in time loses its slot.
    idle_timer_.expires_after(idle_timeout_);
    idle_timer_.async_wait([weak = weak_from_this()](asio::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
    asio::async_read_until(socket_, buffer_, '\n',
                           [self = shared_from_this()](asio::error_code ec, std::size_t n) {
                             self->idle_timer_.cancel();
                             if (ec == asio::error::not_found) {  // over the line limit: say so and hang up
                               self->reply(self->overlong_ + "\n", false);
                               return;
                             }
                             if (ec) {
                               self->close();
                               return;
                             }
                             std::string line(asio::buffers_begin(self->buffer_.data()),
                                              asio::buffers_begin(self->buffer_.data()) + n - 1);
                             self->buffer_.consume(n);
                             if (!line.empty() && line.back() == '\r') line.pop_back();
                             self->reply((*self->handler_)(line, self->peer_) + "\n", true);
                           });
  }

  void reply(std::string text, bool keep_reading) {
    auto out = std::make_shared<std::string>(std::move(text));
    // A client that does not read its answer in time loses its slot too.
    idle_timer_.expires_after(idle_timeout_);
    idle_timer_.async_wait([weak = weak_from_this()](asio::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->close();
    });
    asio::async_write(socket_, asio::buffer(*out),
                      [self = shared_from_this(), out, keep_reading](asio::error_code ec, std::size_t) {
                        self->idle_timer_.cancel();
                        if (!ec && keep_reading) {
                          self->read();
                        } else {
                          self->close();
                        }
                      });
  }

  stream_protocol::socket socket_;
  asio::steady_timer idle_timer_;
  PeerCredentials peer_;
  asio::streambuf buffer_;
  std::shared_ptr<LineServer::PeerHandler> handler_;
  std::string overlong_;
  std::chrono::milliseconds idle_timeout_;
};

}  // namespace

struct LineServer::Impl {
  Impl(asio::io_context& io, LineServerOptions o, PeerHandler h)
      : acceptor(io),
        retry_timer(io),
        options(std::move(o)),
        handler(std::make_shared<PeerHandler>(std::move(h))) {}
  stream_protocol::acceptor acceptor;
  asio::steady_timer retry_timer;
  LineServerOptions options;
  std::shared_ptr<PeerHandler> handler;
  std::deque<std::weak_ptr<Session>> sessions;  // oldest first
  bool closed = false;

  std::size_t prune() {
    std::erase_if(sessions, [](const std::weak_ptr<Session>& w) {
      auto s = w.lock();
      return !s || !s->is_open();
    });
    return sessions.size();
  }

  void accept() {
    acceptor.async_accept([this](asio::error_code ec, stream_protocol::socket socket) {
      if (closed || ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors and the like: try again shortly rather than stop serving.
        retry_timer.expires_after(std::chrono::milliseconds(100));
        retry_timer.async_wait([this](asio::error_code e) {
          if (!e && !closed) accept();
        });
        return;
      }
      admit(std::move(socket));
      accept();
    });
  }

  void admit(stream_protocol::socket socket) {
    PeerCredentials peer;
    ucred cred{};
    socklen_t length = sizeof cred;
    if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return;  // closes
    peer.pid = cred.pid;
    peer.uid = cred.uid;
    peer.gid = cred.gid;
    peer.user = user_name(cred.uid);
    const std::size_t open = prune();
    const bool privileged = is_operator(cred.uid);
    if (open >= options.max_sessions && !privileged) {
      // Told, not left hanging; the write is best effort on a fresh socket (non-blocking, small).
      const std::string busy = options.busy_response + "\n";
      socket.non_blocking(true);
      asio::error_code ignored;
      socket.write_some(asio::buffer(busy), ignored);
      return;
    }
    if (open >= options.max_sessions + options.reserved_sessions) {
      // Even the reserved slots are taken (by root or us): the oldest session makes room.
      if (auto oldest = sessions.front().lock()) oldest->close();
      sessions.pop_front();
    }
    auto session = std::make_shared<Session>(std::move(socket), std::move(peer), options, handler);
    sessions.push_back(session);
    session->start();
  }
};

LineServer::LineServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
LineServer::~LineServer() { close(); }

Result<std::unique_ptr<LineServer>> LineServer::start(asio::io_context& io, LineServerOptions options,
                                                      Handler handler) {
  return start(io, std::move(options),
               PeerHandler([h = std::move(handler)](std::string_view line, const PeerCredentials&) {
                 return h(line);
               }));
}

Result<std::unique_ptr<LineServer>> LineServer::start(asio::io_context& io, LineServerOptions options,
                                                      PeerHandler handler) {
  const std::string path = options.path;
  if (path.empty()) return Error(ErrorCode::invalid_argument, "control socket: no path");
  if (path.size() > kMaxUnixPathBytes)
    return Error(ErrorCode::invalid_argument, "control socket path longer than 107 bytes: " + path);
  long gid = -1;
  if (!options.group.empty()) {
    group entry{};
    group* found = nullptr;
    std::vector<char> buffer(16384);
    if (::getgrnam_r(options.group.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 ||
        found == nullptr)
      return Error(ErrorCode::invalid_argument,
                   "control socket " + path + ": group '" + options.group + "' does not exist");
    gid = static_cast<long>(found->gr_gid);
  }
  const std::string dir = parent_dir(path);
  if (auto ok = check_socket_dir(dir, dir == default_runtime_dir(), gid); !ok)
    return Error(ok.error().code, "control socket " + path + ": " + ok.error().message);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Error(ErrorCode::invalid_argument, "control socket " + path + ": exists and is not a socket");
    if (st.st_uid != ::geteuid())
      return Error(ErrorCode::io_error, "control socket " + path + ": exists and belongs to " +
                                            owner_text(st.st_uid) + ", not to us");
    ::unlink(path.c_str());  // a stale socket of an earlier run
  }
  const mode_t mode = gid >= 0 ? 0660 : 0600;
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(handler));
  asio::error_code ec;
  impl->acceptor.open(stream_protocol(), ec);
  // Linux creates the socket file with the socket inode's mode minus the umask: set before bind,
  // no moment exists in which the file is open to others whatever the umask.
  if (!ec && ::fchmod(impl->acceptor.native_handle(), mode) != 0)
    ec = asio::error_code(errno, asio::system_category());
  if (!ec) impl->acceptor.bind(stream_protocol::endpoint(path), ec);
  if (!ec && gid >= 0 && ::chown(path.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(gid)) != 0)
    ec = asio::error_code(errno, asio::system_category());
  if (!ec && ::chmod(path.c_str(), mode) != 0) ec = asio::error_code(errno, asio::system_category());
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    if (impl->acceptor.is_open()) ::unlink(path.c_str());
    return Error(ErrorCode::io_error, "control socket " + path + ": " + ec.message());
  }
  impl->accept();
  return std::unique_ptr<LineServer>(new LineServer(std::move(impl)));
}

void LineServer::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  asio::error_code ignored;
  impl_->acceptor.close(ignored);
  impl_->retry_timer.cancel();
  for (auto& weak : impl_->sessions)
    if (auto session = weak.lock()) session->close();
  ::unlink(impl_->options.path.c_str());
}

std::size_t LineServer::session_count() const { return impl_->prune(); }

const std::string& LineServer::path() const { return impl_->options.path; }

Result<std::string> request_line(const std::string& path, std::string_view line, int timeout_ms) {
  if (path.size() > kMaxUnixPathBytes)
    return Error(ErrorCode::invalid_argument, "socket path too long: " + path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorCode::io_error, std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Whom we are about to tell our request: the file, its directory and (after connecting, so a
  // file swapped in meanwhile does not matter) the process serving it must be root's or ours.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return Error(ErrorCode::invalid_argument, path + ": not a socket");
    if (!is_operator(st.st_uid))
      return Error(ErrorCode::io_error, path + ": belongs to " + owner_text(st.st_uid) +
                                            ", neither root nor you: refusing to talk to it");
  }
  if (auto dir_ok = check_socket_dir(parent_dir(path), false); !dir_ok)
    return Error(dir_ok.error().code, path + ": " + dir_ok.error().message + ": refusing to talk to it");
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    return Error(ErrorCode::io_error, path + ": " + std::strerror(errno));
  ucred server{};
  socklen_t cred_length = sizeof server;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &server, &cred_length) != 0)
    return Error(ErrorCode::io_error, path + ": cannot tell who serves it: " + std::strerror(errno));
  if (!is_operator(server.uid))
    return Error(ErrorCode::io_error, path + ": served by " + owner_text(server.uid) + " (pid " +
                                          std::to_string(server.pid) +
                                          "), neither root nor you: refusing to talk to it");
  std::string request(line);
  request += '\n';
  for (std::size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Error(ErrorCode::io_error, path + ": send: " + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string response;
  char buffer[4096];
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return Error(ErrorCode::io_error, path + ": no answer within " + std::to_string(timeout_ms) + " ms");
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error(ErrorCode::io_error, path + ": " + std::strerror(errno));
    if (n == 0) return Error(ErrorCode::io_error, path + ": closed without an answer");
    response.append(buffer, static_cast<std::size_t>(n));
    if (const auto end = response.find('\n'); end != std::string::npos) {
      response.resize(end);
      return response;
    }
    if (response.size() > (16u << 20))
      return Error(ErrorCode::parse_error, path + ": answer longer than 16 MiB");
  }
}

std::string PeerCredentials::describe() const {
  return "pid " + std::to_string(pid) + " uid " + std::to_string(uid) + " (" + user + ") gid " +
         std::to_string(gid);
}

std::string default_runtime_dir() {
  // Under systemd with RuntimeDirectory=: the service's own directory (the first, if several). It is
  // what `cellguard edge status` finds without flags (/run/cellguard for the packaged units).
  if (const char* service = std::getenv("RUNTIME_DIRECTORY"); service != nullptr && *service == '/') {
    std::string dir(service);
    return dir.substr(0, dir.find(':'));
  }
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime != nullptr && *runtime == '/') return std::string(runtime) + "/cellguard";
  // root: the system's runtime directory, where a service manager puts it (a minimal system, such as
  // the test VM's initramfs, may have no /run: then the verified per-user directory below).
  struct stat run {};
  if (::geteuid() == 0 && ::stat("/run", &run) == 0 && S_ISDIR(run.st_mode)) return "/run/cellguard";
  // Predictable, so it is verified (ours, 0700) before use: a squatter gets a refusal, not our requests.
  return "/tmp/cellguard-" + std::to_string(::geteuid());
}

std::string default_socket_path(std::string_view name) {
  return default_runtime_dir() + "/" + std::string(name);
}

Result<void> check_socket_dir(const std::string& dir, bool create_private, long group_gid) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || !create_private)
      return Error(ErrorCode::io_error, "directory " + dir + ": " + std::strerror(errno));
    const mode_t mode = group_gid >= 0 ? 0750 : 0700;
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
      return Error(ErrorCode::io_error, "cannot create the directory " + dir + ": " + std::strerror(errno));
    if (::lstat(dir.c_str(), &st) != 0)
      return Error(ErrorCode::io_error, "directory " + dir + ": " + std::strerror(errno));
    if (S_ISDIR(st.st_mode) && st.st_uid == ::geteuid()) {
      if (group_gid >= 0 && ::chown(dir.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(group_gid)) != 0)
        return Error(ErrorCode::io_error,
                     "directory " + dir + ": cannot give it the group: " + std::strerror(errno));
      ::chmod(dir.c_str(), mode);  // exact, whatever the umask
      ::lstat(dir.c_str(), &st);
    }
  }
  if (!S_ISDIR(st.st_mode))
    return Error(ErrorCode::invalid_argument, dir + " is not a directory (or is a symbolic link)");
  const bool ours = st.st_uid == ::geteuid();
  if (create_private ? !ours : !is_operator(st.st_uid))
    return Error(ErrorCode::io_error, "directory " + dir + " belongs to " + owner_text(st.st_uid) +
                                          ", not to " +
                                          (create_private ? std::string("us") : std::string("root or us")));
  const bool writable_by_others = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
  if (writable_by_others && (create_private || (st.st_mode & S_ISVTX) == 0))
    return Error(
        ErrorCode::io_error, "directory " + dir + " is writable by others (mode " + [&] {
          char text[8];
          std::snprintf(text, sizeof text, "%04o", st.st_mode & 07777);
          return std::string(text);
        }() + ")");
  if (create_private && group_gid >= 0 && st.st_gid != static_cast<gid_t>(group_gid)) {
    if (::chown(dir.c_str(), static_cast<uid_t>(-1), static_cast<gid_t>(group_gid)) != 0 ||
        ::chmod(dir.c_str(), 0750) != 0)
      return Error(ErrorCode::io_error,
                   "directory " + dir + ": cannot give it the group: " + std::strerror(errno));
  }
  return success();
}

}  // namespace cellguard::ipc
