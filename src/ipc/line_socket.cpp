#include "ipc/line_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace cellguard::ipc {
namespace {

using asio::local::stream_protocol;
constexpr std::size_t kMaxUnixPathBytes = sizeof(sockaddr_un::sun_path) - 1;

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(stream_protocol::socket socket, std::size_t max_line, std::shared_ptr<LineServer::Handler> handler,
          std::string overlong)
      : socket_(std::move(socket)), buffer_(max_line + 1), handler_(std::move(handler)), overlong_(std::move(overlong)) {}

  void start() { read(); }
  void close() {
    asio::error_code ignored;
    socket_.close(ignored);
  }

 private:
  void read() {
    asio::async_read_until(socket_, buffer_, '\n', [self = shared_from_this()](asio::error_code ec, std::size_t n) {
      if (ec == asio::error::not_found) {  // over the line limit: say so and hang up
        self->reply(self->overlong_ + "\n", false);
        return;
      }
      if (ec) return;
      std::string line(asio::buffers_begin(self->buffer_.data()), asio::buffers_begin(self->buffer_.data()) + n - 1);
      self->buffer_.consume(n);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      self->reply((*self->handler_)(line) + "\n", true);
    });
  }

  void reply(std::string text, bool keep_reading) {
    auto out = std::make_shared<std::string>(std::move(text));
    asio::async_write(socket_, asio::buffer(*out), [self = shared_from_this(), out, keep_reading](asio::error_code ec, std::size_t) {
      if (!ec && keep_reading) self->read();
    });
  }

  stream_protocol::socket socket_;
  asio::streambuf buffer_;
  std::shared_ptr<LineServer::Handler> handler_;
  std::string overlong_;
};

}  // namespace

struct LineServer::Impl {
  Impl(asio::io_context& io, LineServerOptions o, Handler h)
      : acceptor(io), options(std::move(o)), handler(std::make_shared<Handler>(std::move(h))) {}
  stream_protocol::acceptor acceptor;
  LineServerOptions options;
  std::shared_ptr<Handler> handler;
  std::vector<std::weak_ptr<Session>> sessions;
  bool closed = false;

  void accept() {
    acceptor.async_accept([this](asio::error_code ec, stream_protocol::socket socket) {
      if (ec || closed) return;
      std::erase_if(sessions, [](const std::weak_ptr<Session>& s) { return s.expired(); });
      if (sessions.size() < options.max_sessions) {
        auto session = std::make_shared<Session>(std::move(socket), options.max_line_bytes, handler, options.overlong_response);
        sessions.push_back(session);
        session->start();
      }
      accept();
    });
  }
};

LineServer::LineServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
LineServer::~LineServer() { close(); }

Result<std::unique_ptr<LineServer>> LineServer::start(asio::io_context& io, LineServerOptions options, Handler handler) {
  const std::string path = options.path;
  if (path.empty()) return Error(ErrorCode::invalid_argument, "control socket: no path");
  if (path.size() > kMaxUnixPathBytes)
    return Error(ErrorCode::invalid_argument, "control socket path longer than 107 bytes: " + path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return Error(ErrorCode::invalid_argument, "control socket " + path + ": exists and is not a socket");
    ::unlink(path.c_str());  // a stale socket of an earlier run
  }
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(handler));
  asio::error_code ec;
  impl->acceptor.open(stream_protocol(), ec);
  if (!ec) impl->acceptor.bind(stream_protocol::endpoint(path), ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(ErrorCode::io_error, "control socket " + path + ": " + ec.message());
  impl->accept();
  return std::unique_ptr<LineServer>(new LineServer(std::move(impl)));
}

void LineServer::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  asio::error_code ignored;
  impl_->acceptor.close(ignored);
  for (auto& weak : impl_->sessions)
    if (auto session = weak.lock()) session->close();
  ::unlink(impl_->options.path.c_str());
}

const std::string& LineServer::path() const { return impl_->options.path; }

Result<std::string> request_line(const std::string& path, std::string_view line, int timeout_ms) {
  if (path.size() > kMaxUnixPathBytes) return Error(ErrorCode::invalid_argument, "socket path too long: " + path);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error(ErrorCode::io_error, std::string("socket: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, path.data(), path.size());
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0)
    return Error(ErrorCode::io_error, path + ": " + std::strerror(errno));
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
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return Error(ErrorCode::io_error, path + ": no answer within " + std::to_string(timeout_ms) + " ms");
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
    if (response.size() > (16u << 20)) return Error(ErrorCode::parse_error, path + ": answer longer than 16 MiB");
  }
}

std::string default_socket_path(std::string_view name) {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  return std::string(runtime != nullptr && *runtime != '\0' ? runtime : "/tmp") + "/" + std::string(name);
}

}  // namespace cellguard::ipc
