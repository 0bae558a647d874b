#include "ipc/service_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <asio.hpp>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace cellguard::ipc {

ServiceNotifier ServiceNotifier::from_values(std::string socket, std::int64_t watchdog_usec,
                                             long watchdog_pid) {
  ServiceNotifier notifier;
  // Only a path or an abstract name is the protocol's; anything else (e.g. "vsock:...", which
  // libsystemd also knows) is ignored rather than misread.
  if (!socket.empty() && (socket.front() == '/' || socket.front() == '@'))
    notifier.socket_ = std::move(socket);
  if (notifier.enabled() && watchdog_usec > 0 && (watchdog_pid == 0 || watchdog_pid == ::getpid()))
    notifier.watchdog_usec_ = watchdog_usec;
  return notifier;
}

ServiceNotifier ServiceNotifier::from_environment() {
  const char* socket = std::getenv("NOTIFY_SOCKET");
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  std::int64_t watchdog_usec = 0;
  long watchdog_pid = 0;
  if (usec != nullptr) watchdog_usec = std::strtoll(usec, nullptr, 10);
  if (pid != nullptr) {
    watchdog_pid = std::strtol(pid, nullptr, 10);
    if (watchdog_pid <= 0) watchdog_pid = -1;  // malformed: not ours
  }
  return from_values(socket != nullptr ? socket : "", watchdog_usec, watchdog_pid);
}

Result<void> ServiceNotifier::notify(std::string_view state) const {
  if (!enabled()) return success();
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_.size() >= sizeof address.sun_path)
    return Error(ErrorCode::invalid_argument, "NOTIFY_SOCKET " + socket_ + ": path too long");
  std::memcpy(address.sun_path, socket_.data(), socket_.size());
  if (socket_.front() == '@') address.sun_path[0] = '\0';  // the abstract namespace
  const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_.size());
  const int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return Error(ErrorCode::io_error, std::string("NOTIFY_SOCKET: socket: ") + std::strerror(errno));
  ssize_t sent = -1;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<const sockaddr*>(&address),
                    length);
  } while (sent < 0 && errno == EINTR);
  const int error = errno;
  ::close(fd);
  if (sent < 0) return Error(ErrorCode::io_error, "NOTIFY_SOCKET " + socket_ + ": " + std::strerror(error));
  return success();
}

struct LoopWatchdog::Impl : std::enable_shared_from_this<Impl> {
  Impl(asio::io_context& io, ServiceNotifier n) : timer(io), notifier(std::move(n)) {}

  void arm() {
    if (cancelled || notifier.watchdog_usec() <= 0) return;
    // Half the period, as sd_watchdog_enabled(3) advises: one late ping is not yet a kill.
    timer.expires_after(std::chrono::microseconds(notifier.watchdog_usec() / 2));
    timer.async_wait([weak = weak_from_this()](asio::error_code ec) {
      auto self = weak.lock();
      if (ec || !self || self->cancelled) return;
      if (self->notifier.notify("WATCHDOG=1")) ++self->pings;
      self->arm();
    });
  }

  asio::steady_timer timer;
  ServiceNotifier notifier;
  bool cancelled = false;
  bool started = false;
  std::uint64_t pings = 0;
};

LoopWatchdog::LoopWatchdog(asio::io_context& io, ServiceNotifier notifier)
    : impl_(std::make_shared<Impl>(io, std::move(notifier))) {}

LoopWatchdog::~LoopWatchdog() { cancel(); }

void LoopWatchdog::ready(std::string_view status) {
  if (!impl_->notifier.enabled() || impl_->cancelled) return;
  std::string state = "READY=1";
  if (!status.empty()) {
    state += "\nSTATUS=";
    state += status;
  }
  // A service manager that cannot be told is not a reason to stop guarding the battery: the result
  // is ignored (systemd then times the start-up out and says so in its journal).
  (void)impl_->notifier.notify(state);
  if (!impl_->started) {
    impl_->started = true;
    impl_->arm();
  }
}

void LoopWatchdog::stopping() {
  if (impl_->notifier.enabled()) (void)impl_->notifier.notify("STOPPING=1");
}

void LoopWatchdog::cancel() {
  impl_->cancelled = true;
  impl_->timer.cancel();
}

const ServiceNotifier& LoopWatchdog::notifier() const { return impl_->notifier; }
std::uint64_t LoopWatchdog::pings_sent() const { return impl_->pings; }

}  // namespace cellguard::ipc
