#include "sim/device_pty.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace cellguard::sim {

namespace {

Error os_error(const std::string& what) {
  return Error(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

bool termios_speed(int baud, speed_t& speed) {
  switch (baud) {
    case 1200:
      speed = B1200;
      return true;
    case 2400:
      speed = B2400;
      return true;
    case 4800:
      speed = B4800;
      return true;
    case 9600:
      speed = B9600;
      return true;
    case 19200:
      speed = B19200;
      return true;
    case 38400:
      speed = B38400;
      return true;
    case 57600:
      speed = B57600;
      return true;
    case 115200:
      speed = B115200;
      return true;
    default:
      return false;
  }
}

}  // namespace

Result<Pty> Pty::open(int baud, Mode mode) {
  speed_t speed = B9600;
  if (!termios_speed(baud, speed)) {
    return Error(ErrorCode::invalid_argument, "pty: unsupported baud rate " + std::to_string(baud));
  }
  Pty pty;
  pty.master_fd_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.master_fd_ < 0) {
    return os_error("pty: posix_openpt");
  }
  if (::grantpt(pty.master_fd_) != 0 || ::unlockpt(pty.master_fd_) != 0) {
    return os_error("pty: grantpt/unlockpt");
  }
  char name[128] = {};
  if (::ptsname_r(pty.master_fd_, name, sizeof name) != 0) {
    return os_error("pty: ptsname");
  }
  pty.slave_path_ = name;
  pty.held_slave_fd_ = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (pty.held_slave_fd_ < 0) {
    return os_error("pty: open " + pty.slave_path_);
  }
  termios tios{};
  if (::tcgetattr(pty.held_slave_fd_, &tios) != 0) {
    return os_error("pty: tcgetattr");
  }
  ::cfmakeraw(&tios);  // 8 data bits, no parity, no echo, no line editing
  tios.c_cflag &= ~static_cast<tcflag_t>(CSTOPB | CRTSCTS);  // 1 stop bit, no flow control: 8N1
  tios.c_cflag |= CLOCAL | CREAD;
  ::cfsetispeed(&tios, speed);
  ::cfsetospeed(&tios, speed);
  if (::tcsetattr(pty.held_slave_fd_, TCSANOW, &tios) != 0) {
    return os_error("pty: tcsetattr");
  }
  if (mode == Mode::kDetectPeer) {
    ::close(pty.held_slave_fd_);  // the settings stay with the pty
    pty.held_slave_fd_ = -1;
  }
  const int flags = ::fcntl(pty.master_fd_, F_GETFL);
  if (flags < 0 || ::fcntl(pty.master_fd_, F_SETFL, flags | O_NONBLOCK) != 0) {
    return os_error("pty: fcntl O_NONBLOCK");
  }
  return pty;
}

Pty::Pty(Pty&& other) noexcept
    : master_fd_(std::exchange(other.master_fd_, -1)),
      held_slave_fd_(std::exchange(other.held_slave_fd_, -1)),
      slave_path_(std::move(other.slave_path_)) {}

Pty& Pty::operator=(Pty&& other) noexcept {
  if (this != &other) {
    close();
    master_fd_ = std::exchange(other.master_fd_, -1);
    held_slave_fd_ = std::exchange(other.held_slave_fd_, -1);
    slave_path_ = std::move(other.slave_path_);
  }
  return *this;
}

Pty::~Pty() { close(); }

void Pty::close() {
  if (held_slave_fd_ >= 0) {
    ::close(held_slave_fd_);
    held_slave_fd_ = -1;
  }
  if (master_fd_ >= 0) {
    ::close(master_fd_);
    master_fd_ = -1;
  }
  slave_path_.clear();
}

bool Pty::peer_connected() const {
  if (master_fd_ < 0) {
    return false;
  }
  if (held_slave_fd_ >= 0) {
    return true;
  }
  pollfd fds{master_fd_, 0, 0};
  return ::poll(&fds, 1, 0) >= 0 && (fds.revents & POLLHUP) == 0;
}

void Pty::discard_unread_output() {
  if (held_slave_fd_ >= 0) {
    ::tcflush(held_slave_fd_, TCIFLUSH);
    return;
  }
  if (master_fd_ < 0) {
    return;
  }
  const int fd = ::open(slave_path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (fd >= 0) {
    ::tcflush(fd, TCIFLUSH);
    ::close(fd);
  }
}

Result<std::size_t> Pty::write_some(std::string_view bytes) {
  if (master_fd_ < 0) {
    return Error(ErrorCode::io_error, "pty: closed");
  }
  const ssize_t written = ::write(master_fd_, bytes.data(), bytes.size());
  if (written < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return std::size_t{0};
    }
    return os_error("pty: write " + slave_path_);
  }
  return static_cast<std::size_t>(written);
}

}  // namespace cellguard::sim
