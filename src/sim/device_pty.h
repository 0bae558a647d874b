// A pseudo-terminal standing in for a USB serial port of the rig (the sensor board's /dev/ttyACM0,
// the inverter's /dev/ttyUSB0). Platform code (POSIX ptys), kept out of the device logic.
//
// The simulator drives the master side; a peer opens slave_path() like a serial port. The pty is
// created with posix_openpt/grantpt/unlockpt, the slave named by ptsname. The slave is set to raw
// mode (cfmakeraw: no echo, no CR/LF translation, 8 data bits, no parity) at the given speed; a pty
// ignores the speed, but tools that read it back see the rig's setting.
//
// The simulator also holds the slave open itself. Without that, the master reports a hang-up
// (POLLHUP, EIO) whenever no peer has the slave open, and the line settings are lost between
// peers; with it, the device behaves like a serial port with nobody listening.
//
// Thread safety: none; one owner. Not copyable; movable. Closing (destruction or close()) makes a
// peer's reads and writes fail, as unplugging the USB cable does.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/result.h"

namespace cellguard::sim {

class Pty {
 public:
  // Creates a pty; `baud` is one of the standard termios speeds (9600, 19200, ...).
  static Result<Pty> open(int baud);

  Pty() = default;
  Pty(Pty&& other) noexcept;
  Pty& operator=(Pty&& other) noexcept;
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  ~Pty();

  bool is_open() const { return master_fd_ >= 0; }
  int master_fd() const { return master_fd_; }  // non-blocking, close-on-exec
  const std::string& slave_path() const { return slave_path_; }

  // Bytes the peer sent and nobody read yet (queued at the master), or 0 on error.
  std::size_t pending_input_bytes() const;
  // Bytes written by the master that the peer has not read (queued at the slave), or 0 on error.
  std::size_t pending_output_bytes() const;
  // Discards what the master wrote and the peer did not read (like a UART overrun losing it).
  void discard_pending_output();

  // Writes all of `bytes` or nothing that would block: returns the count written (may be short if
  // the queue is full; the rest is dropped, as a serial line with no reader loses it).
  Result<std::size_t> write_some(std::string_view bytes);

  void close();

 private:
  int master_fd_ = -1;
  int held_slave_fd_ = -1;
  std::string slave_path_;
};

}  // namespace cellguard::sim
