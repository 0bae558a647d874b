// The board firmware in simavr: a simulated ATmega328P at 16 MHz running the built ELF, its UART on
// a pseudo-terminal (so real host code opens it like /dev/ttyACM0), ADC inputs and the ground-fault
// input driven by the test, output pins observed with the simulated and wall-clock time of every
// change.
//
// Simulated time is locked to wall-clock time: a thread runs the core in slices of at most 1 ms of
// simulated time and sleeps whenever it is ahead of the wall clock, so the firmware's 500 ms are
// 500 ms for the host at the other end of the pty. If the machine cannot keep up, the simulation
// falls behind (max_lag_ms() says how far); it never runs ahead.
//
// Pins are Arduino Uno digital pins 0..7 (PORTD). An output is "high" (relay energised) when the
// pin is driven high: its DDR and PORT bits both set; after a reset every pin is an input: low.
//
// Thread safety: every public function may be called from any thread (the core itself is touched
// only by the simulation thread). Not copyable.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

struct avr_t;

namespace cellguard::testing {

class AvrBoard {
 public:
  using WallClock = std::chrono::steady_clock;

  struct PinChange {
    int pin = 0;
    bool high = false;
    double sim_s = 0;  // simulated time of the change (resolution 1 ms)
    WallClock::time_point wall;
  };

  // A write of the firmware to an output latch (PORTB, PORTC, PORTD), as simavr reports it.
  struct PortWrite {
    char port = 'D';
    std::uint8_t value = 0;   // the register after the write
    std::uint8_t before = 0;  // and before it
    double sim_s = 0;
  };

  // Loads the ELF and opens the pty; the core does not run until start(). nullptr and `error` set
  // when the ELF cannot be read or the pty not opened.
  static std::unique_ptr<AvrBoard> create(const std::string& elf_path, std::string& error);
  ~AvrBoard();
  AvrBoard(const AvrBoard&) = delete;
  AvrBoard& operator=(const AvrBoard&) = delete;

  // The pty's slave side, e.g. "/dev/pts/7".
  const std::string& path() const { return slave_path_; }

  void start();
  void stop();

  // Voltage at analog input A<channel> (0..5) in millivolts.
  void set_analog_mv(int channel, int millivolts);
  // External level of digital input pin (0..7), e.g. 2 = the ground-fault contact (low = alarm).
  void set_digital_input(int pin, bool high);

  bool output(int pin) const;
  std::uint8_t outputs() const;  // bit n = pin n driven high
  std::vector<PinChange> changes() const;
  // Every write to PORTB/C/D that changed the register (Arduino pin n: PORTD bit n for 0..7,
  // PORTB bit n-8 for 8..13, PORTC for A0..A5): which pins the firmware ever wrote.
  std::vector<PortWrite> port_writes() const;
  // Waits until `pin` is at `high` (at once if it already is); the change, or nullopt on timeout.
  std::optional<PinChange> wait_output(int pin, bool high, std::chrono::milliseconds timeout) const;

  // Bytes into the board's UART as if from the host, beside the pty (e.g. the test build's `X`
  // that hangs the firmware's main loop while the edge holds the port).
  void inject_input(const std::string& bytes);

  double sim_seconds() const;
  // Simulated time at which the host's last byte equal to `byte` entered the board's UART.
  std::optional<double> last_input_byte_s(char byte) const;
  double max_lag_ms() const;

 private:
  AvrBoard() = default;
  void run();
  void poll_outputs();
  void pump_uart();

  avr_t* avr_ = nullptr;
  int master_fd_ = -1;
  std::string slave_path_;
  std::thread thread_;
  std::atomic<bool> running_{false};

  // Inputs requested by the test, applied by the simulation thread.
  std::atomic<int> analog_mv_[6] = {};
  std::atomic<int> digital_in_{0xFF};
  int applied_analog_[6] = {-1, -1, -1, -1, -1, -1};
  int applied_digital_ = -1;

  // UART: bytes from the AVR waiting for the pty, bytes from the pty waiting for the AVR.
  std::string to_host_;
  std::string to_board_;
  bool uart_xoff_ = false;

  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::uint8_t outputs_ = 0;
  std::vector<PinChange> changes_;
  double sim_s_ = 0;
  double max_lag_ms_ = 0;
  double last_input_s_[128] = {};
  std::vector<PortWrite> port_writes_;
  std::string injected_;                    // from inject_input(), under mutex_
  std::uint8_t port_latch_[3] = {0, 0, 0};  // B, C, D

  friend struct AvrBoardCallbacks;
};

// CRC-8 (polynomial 0x07, initial 0) of the firmware's `Ardu_Crc` field, written here independently
// of the firmware and of the edge.
std::uint8_t crc8(const std::string& text);

}  // namespace cellguard::testing
