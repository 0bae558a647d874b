// Linux SocketCAN: a CAN_RAW socket bound to one interface, classic and FD frames, kernel receive
// timestamps (SO_TIMESTAMPNS), error frames (CAN_RAW_ERR_FILTER) and the kernel's count of frames
// dropped from the receive queue (SO_RXQ_OVFL, counters().rx_queue_overflows). Linux only, in this
// file only.
//
// Bus-off (an error frame with CAN_ERR_BUSOFF): the controller is restarted through rtnetlink
// (can_netlink.h), after 100 ms, then with a doubling back-off up to 10 s while it keeps going
// bus-off; the back-off starts over once a data frame arrives. With restart-ms configured on the
// interface the kernel restarts it itself and refuses ours (EBUSY, reported and counted). vcan never
// goes bus-off: the VM test covers receiving, sending and the counters, not the restart.
//
// References: Documentation/networking/can.rst (RAW socket options, FD MTU handling), and
// <linux/can.h>, <linux/can/raw.h>, <linux/can/error.h>.
//
// Hosts whose kernel has no PF_CAN fail in open with unsupported "SocketCAN unavailable: ...". The
// build and CI machines are such hosts; this file is exercised inside a QEMU VM with vcan
// (see shared/spec/vcan-vm.md).
#include <linux/can.h>
#include <linux/can/error.h>
#include <linux/can/raw.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/posix/stream_descriptor.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <mutex>

#include "can/bus_backends.h"
#include "can/can_netlink.h"

namespace cellguard::can::detail {
namespace {

// Frames queued by send() and not yet accepted by the kernel.
constexpr std::size_t kMaxQueuedFrames = 4096;
// Frames read per readiness event before giving other work on the loop a turn.
constexpr int kMaxReadsPerWakeup = 64;
// Bus-off restarts: first after this, doubling up to the maximum while bus-off repeats.
constexpr std::chrono::milliseconds kFirstRestartDelay{100};
constexpr std::chrono::milliseconds kMaxRestartDelay{10'000};

std::string errno_text(int error) { return std::strerror(error); }

// Owns a descriptor until it is handed to asio.
class UniqueFd {
 public:
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

class Endpoint : public std::enable_shared_from_this<Endpoint> {
 public:
  Endpoint(asio::io_context& io, std::string_view interface_name, int interface_index, bool fd_capable)
      : io_(io),
        descriptor_(io),
        restart_timer_(io),
        name_(interface_name),
        interface_index_(interface_index),
        fd_capable_(fd_capable) {}

  // Takes ownership of `fd` even on failure.
  Result<void> assign(int fd) {
    asio::error_code error;
    descriptor_.assign(fd, error);
    if (error) {
      ::close(fd);
      return Error(ErrorCode::io_error, describe() + ": cannot watch the socket: " + error.message());
    }
    return success();
  }

  void start() { wait_readable(); }

  Result<void> send(const Frame& frame) {
    if (frame.error) return Error(ErrorCode::unsupported, describe() + ": error frames cannot be sent");
    if (auto valid = validate_frame(frame); !valid) return valid.error();
    if (frame.fd && !fd_capable_) {
      return Error(ErrorCode::unsupported, describe() + ": interface is not CAN FD capable (MTU 16)");
    }
    bool post_flush = false;
    {
      std::lock_guard lock(mutex_);
      if (closed_.load()) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return Error(ErrorCode::io_error, describe() + ": bus is closed");
      }
      if (queue_.size() >= kMaxQueuedFrames) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return Error(ErrorCode::io_error, describe() + ": send queue full, frame dropped");
      }
      queue_.push_back(frame);
      counters_.frames_sent.fetch_add(1, std::memory_order_relaxed);
      if (!flush_posted_ && !waiting_writable_) post_flush = flush_posted_ = true;
    }
    if (post_flush) {
      asio::post(io_, [self = shared_from_this()] {
        {
          std::lock_guard lock(self->mutex_);
          self->flush_posted_ = false;
        }
        self->flush();
      });
    }
    return success();
  }

  void close() {
    {
      std::lock_guard lock(mutex_);
      if (closed_.exchange(true)) return;
      queue_.clear();
    }
    asio::error_code ignored;
    descriptor_.close(ignored);
    restart_timer_.cancel();
  }

  std::string describe() const { return "socketcan:" + std::string(name_.view()); }

  asio::io_context& io_;
  std::atomic<bool> closed_{false};
  AtomicCounters counters_;
  Bus::ReceiveHandler receive_handler_;
  Bus::ErrorHandler error_handler_;

 private:
  void wait_readable() {
    descriptor_.async_wait(asio::posix::stream_descriptor::wait_read, [self = shared_from_this()](
                                                                          const asio::error_code& error) {
      if (self->closed_.load()) return;
      if (error) {
        self->fail(Error(ErrorCode::io_error, self->describe() + ": wait failed: " + error.message()));
        return;
      }
      self->read_available();
    });
  }

  void read_available() {
    for (int i = 0; i < kMaxReadsPerWakeup && !closed_.load(); ++i) {
      canfd_frame raw{};
      iovec iov{&raw, sizeof raw};
      alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec)) + CMSG_SPACE(sizeof(std::uint32_t))];
      msghdr message{};
      message.msg_iov = &iov;
      message.msg_iovlen = 1;
      message.msg_control = control;
      message.msg_controllen = sizeof control;
      ssize_t bytes = ::recvmsg(descriptor_.native_handle(), &message, MSG_DONTWAIT);
      if (bytes < 0) {
        // Saved at once: the error handler below may change errno.
        const int error = errno;
        if (error == EAGAIN || error == EWOULDBLOCK || error == EINTR) break;
        // ENETDOWN: the interface went down; the socket stays usable once it is up again.
        report(Error(ErrorCode::io_error, describe() + ": receive failed: " + errno_text(error)));
        if (error != ENETDOWN) return fail(Error(ErrorCode::io_error, describe() + ": link lost"));
        break;
      }
      if ((bytes != CAN_MTU && bytes != CANFD_MTU) || (message.msg_flags & MSG_TRUNC) != 0) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        report(
            Error(ErrorCode::parse_error, describe() + ": unexpected frame size " + std::to_string(bytes)));
        continue;
      }
      std::int64_t timestamp_ns = 0;
      for (cmsghdr* c = CMSG_FIRSTHDR(&message); c != nullptr; c = CMSG_NXTHDR(&message, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec stamp{};
          std::memcpy(&stamp, CMSG_DATA(c), sizeof stamp);
          timestamp_ns = static_cast<std::int64_t>(stamp.tv_sec) * 1'000'000'000 + stamp.tv_nsec;
        } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
          // The socket's drop count so far (cumulative, socket(7)).
          std::uint32_t dropped = 0;
          std::memcpy(&dropped, CMSG_DATA(c), sizeof dropped);
          counters_.rx_queue_overflows.store(dropped, std::memory_order_relaxed);
        }
      }
      if (timestamp_ns == 0) timestamp_ns = wall_clock_ns();
      deliver(raw, bytes == CANFD_MTU, timestamp_ns);
    }
    if (!closed_.load()) wait_readable();
  }

  void deliver(const canfd_frame& raw, bool is_fd, std::int64_t timestamp_ns) {
    Frame frame;
    frame.timestamp_ns = timestamp_ns;
    frame.bus = name_;
    std::size_t max_length = is_fd ? CANFD_MAX_DLEN : CAN_MAX_DLEN;
    std::size_t length = raw.len < max_length ? raw.len : max_length;
    if ((raw.can_id & CAN_ERR_FLAG) != 0) {
      frame.error = true;
      frame.id = raw.can_id & CAN_ERR_MASK;
      frame.set_payload({raw.data, length});
      if ((frame.id & CAN_ERR_BUSOFF) != 0) {
        report(Error(ErrorCode::io_error, describe() + ": controller is bus-off"));
        schedule_restart();
      }
    } else {
      restart_delay_ = kFirstRestartDelay;  // the bus works: a later bus-off restarts quickly again
      frame.extended = (raw.can_id & CAN_EFF_FLAG) != 0;
      frame.id = raw.can_id & (frame.extended ? CAN_EFF_MASK : CAN_SFF_MASK);
      frame.fd = is_fd;
      if (is_fd) {
        frame.bitrate_switch = (raw.flags & CANFD_BRS) != 0;
        frame.error_state = (raw.flags & CANFD_ESI) != 0;
      }
      if (!is_fd && (raw.can_id & CAN_RTR_FLAG) != 0) {
        frame.remote = true;
        frame.size = static_cast<std::uint8_t>(length);
      } else {
        frame.set_payload({raw.data, length});
      }
    }
    counters_.frames_received.fetch_add(1, std::memory_order_relaxed);
    if (receive_handler_) receive_handler_(frame);
  }

  // Loop thread: hands queued frames to the kernel until it pushes back, then waits for writability.
  void flush() {
    while (!closed_.load()) {
      Frame frame;
      {
        std::lock_guard lock(mutex_);
        if (queue_.empty()) return;
        frame = queue_.front();
      }
      canfd_frame raw{};
      raw.can_id = frame.id | (frame.extended ? CAN_EFF_FLAG : 0u) | (frame.remote ? CAN_RTR_FLAG : 0u);
      raw.len = frame.size;
      if (frame.fd) {
        raw.flags = static_cast<std::uint8_t>((frame.bitrate_switch ? CANFD_BRS : 0) |
                                              (frame.error_state ? CANFD_ESI : 0));
      }
      if (!frame.remote) std::memcpy(raw.data, frame.data.data(), frame.size);
      std::size_t mtu = frame.fd ? CANFD_MTU : CAN_MTU;
      ssize_t written = ::send(descriptor_.native_handle(), &raw, mtu, MSG_DONTWAIT);
      const int error = written < 0 ? errno : 0;  // before the lock and the deque touch errno
      if (error == EAGAIN || error == EWOULDBLOCK || error == ENOBUFS) {
        // ENOBUFS: the interface's tx queue is full (can.rst); wait and retry the same frame.
        wait_writable();
        return;
      }
      if (error == EINTR) continue;
      {
        std::lock_guard lock(mutex_);
        if (!queue_.empty()) queue_.pop_front();
      }
      if (written != static_cast<ssize_t>(mtu)) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        report(Error(ErrorCode::io_error,
                     describe() + ": send failed: " + (written < 0 ? errno_text(error) : "short write")));
      }
    }
  }

  void wait_writable() {
    {
      std::lock_guard lock(mutex_);
      waiting_writable_ = true;
    }
    descriptor_.async_wait(asio::posix::stream_descriptor::wait_write,
                           [self = shared_from_this()](const asio::error_code& error) {
                             {
                               std::lock_guard lock(self->mutex_);
                               self->waiting_writable_ = false;
                             }
                             if (self->closed_.load() || error) return;
                             self->flush();
                           });
  }

  // Loop thread. One restart at a time; repeated bus-off frames while one is pending change nothing.
  void schedule_restart() {
    if (restart_pending_ || closed_.load()) return;
    restart_pending_ = true;
    restart_timer_.expires_after(restart_delay_);
    restart_delay_ = std::min(restart_delay_ * 2, kMaxRestartDelay);
    restart_timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
      self->restart_pending_ = false;
      if (error || self->closed_.load()) return;
      self->counters_.restarts_requested.fetch_add(1, std::memory_order_relaxed);
      if (auto restarted = restart_can_controller(self->interface_index_); !restarted) {
        self->counters_.restart_failures.fetch_add(1, std::memory_order_relaxed);
        self->report(Error(ErrorCode::io_error, self->describe() + ": " + restarted.error().message));
      }
    });
  }

  void report(const Error& error) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    if (error_handler_) error_handler_(error);
  }

  void fail(const Error& error) {
    report(error);
    close();
  }

  asio::posix::stream_descriptor descriptor_;
  asio::steady_timer restart_timer_;
  std::chrono::milliseconds restart_delay_ = kFirstRestartDelay;  // loop thread
  bool restart_pending_ = false;                                  // loop thread
  BusName name_;
  int interface_index_;
  bool fd_capable_;
  std::mutex mutex_;
  std::deque<Frame> queue_;        // guarded by mutex_
  bool flush_posted_ = false;      // guarded by mutex_
  bool waiting_writable_ = false;  // guarded by mutex_
};

class SocketcanBus final : public Bus {
 public:
  explicit SocketcanBus(std::shared_ptr<Endpoint> endpoint) : endpoint_(std::move(endpoint)) {}
  ~SocketcanBus() override { close(); }

  Result<void> send(const Frame& frame) override { return endpoint_->send(frame); }
  void on_receive(ReceiveHandler handler) override { endpoint_->receive_handler_ = std::move(handler); }
  void on_error(ErrorHandler handler) override { endpoint_->error_handler_ = std::move(handler); }
  void on_ready(ReadyHandler handler) override {
    asio::post(endpoint_->io_, [endpoint = endpoint_, handler = std::move(handler)] {
      if (!endpoint->closed_.load()) handler();
    });
  }
  void close() override { endpoint_->close(); }
  bool is_closed() const override { return endpoint_->closed_.load(); }
  std::string describe() const override { return endpoint_->describe(); }
  BusCounters counters() const override { return endpoint_->counters_.snapshot(); }

 private:
  std::shared_ptr<Endpoint> endpoint_;
};

}  // namespace

Result<std::unique_ptr<Bus>> open_socketcan_bus(asio::io_context& io, std::string_view interface_name) {
  std::string name(interface_name);
  std::string where = "socketcan:" + name;
  UniqueFd fd(::socket(PF_CAN, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, CAN_RAW));
  if (fd.get() < 0) {
    int error = errno;
    bool no_kernel_support = error == EAFNOSUPPORT || error == EPROTONOSUPPORT;
    return Error(no_kernel_support ? ErrorCode::unsupported : ErrorCode::io_error,
                 "SocketCAN unavailable: " + where +
                     ": socket(PF_CAN, SOCK_RAW, CAN_RAW): " + errno_text(error) +
                     (no_kernel_support ? " (this kernel has no CAN support; load can and can-raw)" : ""));
  }
  ifreq request{};
  if (name.size() >= sizeof request.ifr_name) {
    return Error(ErrorCode::invalid_argument, where + ": interface name too long");
  }
  std::memcpy(request.ifr_name, name.data(), name.size());
  if (::ioctl(fd.get(), SIOCGIFINDEX, &request) < 0) {
    return Error(ErrorCode::not_found, where + ": no such interface: " + errno_text(errno));
  }
  int interface_index = request.ifr_ifindex;

  // FD frames are only possible on an interface with the CAN FD MTU (can.rst, "RAW socket option
  // CAN_RAW_FD_FRAMES"); classic interfaces still receive classic frames with the option on.
  bool fd_capable = ::ioctl(fd.get(), SIOCGIFMTU, &request) == 0 && request.ifr_mtu == CANFD_MTU;
  const int on = 1;
  if (::setsockopt(fd.get(), SOL_CAN_RAW, CAN_RAW_FD_FRAMES, &on, sizeof on) < 0) fd_capable = false;
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) < 0) {
    return Error(ErrorCode::io_error, where + ": cannot enable SO_TIMESTAMPNS: " + errno_text(errno));
  }
  if (::setsockopt(fd.get(), SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on) < 0) {
    return Error(ErrorCode::io_error, where + ": cannot enable SO_RXQ_OVFL: " + errno_text(errno));
  }
  const can_err_mask_t error_mask = CAN_ERR_MASK;
  if (::setsockopt(fd.get(), SOL_CAN_RAW, CAN_RAW_ERR_FILTER, &error_mask, sizeof error_mask) < 0) {
    return Error(ErrorCode::io_error, where + ": cannot enable error frames: " + errno_text(errno));
  }
  sockaddr_can address{};
  address.can_family = AF_CAN;
  address.can_ifindex = interface_index;
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) < 0) {
    return Error(ErrorCode::io_error, where + ": bind failed: " + errno_text(errno));
  }
  auto endpoint = std::make_shared<Endpoint>(io, name, interface_index, fd_capable);
  if (auto assigned = endpoint->assign(fd.release()); !assigned) return assigned.error();
  endpoint->start();
  return std::unique_ptr<Bus>(std::make_unique<SocketcanBus>(std::move(endpoint)));
}

}  // namespace cellguard::can::detail
