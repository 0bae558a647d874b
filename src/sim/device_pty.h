// A pseudo-terminal standing in for a USB serial port of the rig (the sensor board's /dev/ttyACM0,
// the inverter's /dev/ttyUSB0). Platform code (POSIX ptys), kept out of the device logic.
//
// The simulator drives the master side; a peer opens slave_path() like a serial port. The pty is
// created with posix_openpt/grantpt/unlockpt, the slave named by ptsname. The slave is set to raw
// mode (cfmakeraw: no echo, no CR/LF translation, 8 data bits, no parity) at the given speed; a pty
// ignores the speed, but tools that read it back see the rig's setting.
//
// The slave's line settings persist while the master is open. Two ways to run it:
//   - kHoldSlave: the simulator keeps the slave open itself, so the master never reports a hang-up
//     and can block in poll() for input whether or not a peer is there (request/response devices:
//     the inverter);
//   - kDetectPeer: the slave is left closed, so the master shows POLLHUP while no peer has it open;
//     peer_connected() tells, and a device that talks unprompted (the sensor board) writes only
//     while someone listens, as bytes sent into an unopened serial port are lost.
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
  enum class Mode { kHoldSlave, kDetectPeer };

  // Creates a pty; `baud` is one of the standard termios speeds (9600, 19200, ...).
  static Result<Pty> open(int baud, Mode mode);

  Pty() = default;
  Pty(Pty&& other) noexcept;
  Pty& operator=(Pty&& other) noexcept;
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;
  ~Pty();

  bool is_open() const { return master_fd_ >= 0; }
  int master_fd() const { return master_fd_; }  // non-blocking, close-on-exec
  const std::string& slave_path() const { return slave_path_; }

  // True if a peer has the slave open (kDetectPeer; always true with kHoldSlave).
  bool peer_connected() const;
  // Discards what the master wrote and no peer read, so the next reader starts fresh.
  void discard_unread_output();

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
