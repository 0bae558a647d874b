#include "avr_board.h"

#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

extern "C" {
#include <avr_adc.h>
#include <avr_ioport.h>
#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
}

// simavr 1.6 does not free its IRQ tables and the ELF symbol table in avr_terminate(); those
// allocations of the library are not leaks of ours (LeakSanitizer hook, read at start-up).
extern "C" const char* __lsan_default_suppressions() { return "leak:libsimavr.so\n"; }

namespace cellguard::testing {

namespace {
constexpr std::uint32_t kFrequency = 16'000'000;
constexpr int kPortD = 0x2B;  // data-space addresses of the ATmega328P's PORTD and DDRD
constexpr int kDdrD = 0x2A;
}  // namespace

struct AvrBoardCallbacks {
  static void uart_out(avr_irq_t*, std::uint32_t value, void* param) {
    static_cast<AvrBoard*>(param)->to_host_.push_back(static_cast<char>(value & 0xFF));
  }
  static void uart_xon(avr_irq_t*, std::uint32_t, void* param) {
    static_cast<AvrBoard*>(param)->uart_xoff_ = false;
  }
  static void uart_xoff(avr_irq_t*, std::uint32_t, void* param) {
    static_cast<AvrBoard*>(param)->uart_xoff_ = true;
  }
  template <char Port>
  static void port_write(avr_irq_t*, std::uint32_t value, void* param) {
    auto* board = static_cast<AvrBoard*>(param);
    const int index = Port - 'B';
    const auto written = static_cast<std::uint8_t>(value & 0xFF);
    std::lock_guard lock(board->mutex_);
    if (written == board->port_latch_[index]) return;
    board->port_writes_.push_back(
        {Port, written, board->port_latch_[index], static_cast<double>(board->avr_->cycle) / kFrequency});
    board->port_latch_[index] = written;
  }
  // The board thread keeps time itself; simavr's own sleep would sleep on top of it.
  static void no_sleep(avr_t*, avr_cycle_count_t) {}
};

std::uint8_t crc8(const std::string& text) {
  std::uint8_t crc = 0;
  for (const char c : text) {
    crc ^= static_cast<std::uint8_t>(c);
    for (int i = 0; i < 8; ++i) crc = static_cast<std::uint8_t>((crc & 0x80) ? (crc << 1) ^ 0x07 : crc << 1);
  }
  return crc;
}

std::unique_ptr<AvrBoard> AvrBoard::create(const std::string& elf_path, std::string& error) {
  std::unique_ptr<AvrBoard> board(new AvrBoard());
  elf_firmware_t firmware;
  std::memset(&firmware, 0, sizeof firmware);
  if (elf_read_firmware(elf_path.c_str(), &firmware) != 0) {
    error = "avr board: cannot read the firmware ELF " + elf_path;
    return nullptr;
  }
  board->avr_ = avr_make_mcu_by_name("atmega328p");
  if (board->avr_ == nullptr) {
    error = "avr board: simavr has no atmega328p";
    return nullptr;
  }
  avr_init(board->avr_);
  firmware.frequency = kFrequency;
  avr_load_firmware(board->avr_, &firmware);
  // The core copied what it needs; the ELF reader's buffers are ours to free.
  std::free(firmware.flash);
  std::free(firmware.eeprom);
  std::free(firmware.fuse);
  std::free(firmware.lockbits);
  avr_t* avr = board->avr_;
  avr->frequency = kFrequency;
  avr->vcc = avr->avcc = avr->aref = 5000;
  avr->sleep = AvrBoardCallbacks::no_sleep;

  std::uint32_t flags = 0;
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
  flags &= ~AVR_UART_FLAG_STDIO;
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
                          AvrBoardCallbacks::uart_out, board.get());
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
                          AvrBoardCallbacks::uart_xon, board.get());
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
                          AvrBoardCallbacks::uart_xoff, board.get());

  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('B'), IOPORT_IRQ_REG_PORT),
                          AvrBoardCallbacks::port_write<'B'>, board.get());
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('C'), IOPORT_IRQ_REG_PORT),
                          AvrBoardCallbacks::port_write<'C'>, board.get());
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('D'), IOPORT_IRQ_REG_PORT),
                          AvrBoardCallbacks::port_write<'D'>, board.get());

  board->master_fd_ = ::posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (board->master_fd_ < 0 || ::grantpt(board->master_fd_) != 0 || ::unlockpt(board->master_fd_) != 0) {
    error = std::string("avr board: cannot open a pty: ") + std::strerror(errno);
    return nullptr;
  }
  char name[128];
  if (::ptsname_r(board->master_fd_, name, sizeof name) != 0) {
    error = std::string("avr board: ptsname: ") + std::strerror(errno);
    return nullptr;
  }
  board->slave_path_ = name;
  // Raw line (on Linux the master's termios calls act on the slave): no echo, no CR/LF mangling.
  termios tio{};
  if (::tcgetattr(board->master_fd_, &tio) == 0) {
    ::cfmakeraw(&tio);
    ::tcsetattr(board->master_fd_, TCSANOW, &tio);
  }
  // The ground-fault contact starts open (no alarm): nothing pulls D2 low.
  board->set_digital_input(2, true);
  return board;
}

AvrBoard::~AvrBoard() {
  stop();
  if (master_fd_ >= 0) ::close(master_fd_);
  if (avr_ != nullptr) {
    avr_terminate(avr_);
    std::free(avr_);
  }
}

void AvrBoard::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void AvrBoard::stop() {
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

void AvrBoard::set_analog_mv(int channel, int millivolts) {
  if (channel >= 0 && channel < 6) analog_mv_[channel] = millivolts;
}

void AvrBoard::set_digital_input(int pin, bool high) {
  if (pin < 0 || pin > 7) return;
  int levels = digital_in_.load();
  while (!digital_in_.compare_exchange_weak(levels, high ? (levels | (1 << pin)) : (levels & ~(1 << pin)))) {
  }
}

bool AvrBoard::output(int pin) const { return (outputs() >> pin) & 1; }

std::uint8_t AvrBoard::outputs() const {
  std::lock_guard lock(mutex_);
  return outputs_;
}

std::vector<AvrBoard::PinChange> AvrBoard::changes() const {
  std::lock_guard lock(mutex_);
  return changes_;
}

std::optional<AvrBoard::PinChange> AvrBoard::wait_output(int pin, bool high,
                                                         std::chrono::milliseconds timeout) const {
  std::unique_lock lock(mutex_);
  const std::size_t seen = changes_.size();
  const auto reached = [&] { return (((outputs_ >> pin) & 1) != 0) == high; };
  if (reached()) {
    for (std::size_t i = changes_.size(); i-- > 0;)
      if (changes_[i].pin == pin) return changes_[i];
    return PinChange{pin, high, sim_s_, WallClock::now()};
  }
  if (!changed_.wait_for(lock, timeout, reached)) return std::nullopt;
  for (std::size_t i = changes_.size(); i-- > seen;)
    if (changes_[i].pin == pin) return changes_[i];
  return std::nullopt;
}

void AvrBoard::inject_input(const std::string& bytes) {
  std::lock_guard lock(mutex_);
  injected_ += bytes;
}

std::vector<AvrBoard::PortWrite> AvrBoard::port_writes() const {
  std::lock_guard lock(mutex_);
  return port_writes_;
}

double AvrBoard::sim_seconds() const {
  std::lock_guard lock(mutex_);
  return sim_s_;
}

std::optional<double> AvrBoard::last_input_byte_s(char byte) const {
  std::lock_guard lock(mutex_);
  const double t = last_input_s_[static_cast<unsigned char>(byte) & 127];
  if (t == 0) return std::nullopt;
  return t;
}

double AvrBoard::max_lag_ms() const {
  std::lock_guard lock(mutex_);
  return max_lag_ms_;
}

void AvrBoard::poll_outputs() {
  const std::uint8_t driven = avr_->data[kPortD] & avr_->data[kDdrD];
  const double now_s = static_cast<double>(avr_->cycle) / kFrequency;
  std::lock_guard lock(mutex_);
  sim_s_ = now_s;
  if (driven == outputs_) return;
  const auto wall = WallClock::now();
  for (int pin = 0; pin < 8; ++pin) {
    const bool before = (outputs_ >> pin) & 1;
    const bool after = (driven >> pin) & 1;
    if (before != after) changes_.push_back({pin, after, now_s, wall});
  }
  outputs_ = driven;
  changed_.notify_all();
}

void AvrBoard::pump_uart() {
  // Host -> board: read what the host wrote, then feed the UART while it accepts (XON).
  char buffer[256];
  for (;;) {
    const ssize_t n = ::read(master_fd_, buffer, sizeof buffer);
    if (n <= 0) break;  // EAGAIN, or EIO while no host has the slave open
    to_board_.append(buffer, static_cast<std::size_t>(n));
  }
  {
    std::lock_guard lock(mutex_);
    to_board_ += injected_;
    injected_.clear();
  }
  avr_irq_t* input = avr_io_getirq(avr_, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
  std::size_t fed = 0;
  const double now_s = static_cast<double>(avr_->cycle) / kFrequency;
  while (fed < to_board_.size() && !uart_xoff_) {
    const char byte = to_board_[fed++];
    {
      std::lock_guard lock(mutex_);
      last_input_s_[static_cast<unsigned char>(byte) & 127] = now_s;
    }
    avr_raise_irq(input, static_cast<unsigned char>(byte));
  }
  to_board_.erase(0, fed);
  // Board -> host: what nobody reads is lost, like bytes sent into a serial port nobody opened.
  if (!to_host_.empty()) {
    const ssize_t n = ::write(master_fd_, to_host_.data(), to_host_.size());
    if (n > 0) {
      to_host_.erase(0, static_cast<std::size_t>(n));
    } else if (errno != EAGAIN) {
      to_host_.clear();
    }
    if (to_host_.size() > 4096) to_host_.clear();
  }
}

void AvrBoard::run() {
  const auto start = WallClock::now();
  const avr_cycle_count_t slice = kFrequency / 1000;  // 1 ms
  while (running_) {
    for (int ch = 0; ch < 6; ++ch) {
      const int mv = analog_mv_[ch].load();
      if (mv != applied_analog_[ch]) {
        applied_analog_[ch] = mv;
        avr_raise_irq(avr_io_getirq(avr_, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0 + ch),
                      static_cast<std::uint32_t>(mv));
      }
    }
    const int levels = digital_in_.load();
    if (levels != applied_digital_) {
      for (int pin = 0; pin < 8; ++pin) {
        if (applied_digital_ < 0 || ((levels ^ applied_digital_) >> pin & 1))
          avr_raise_irq(avr_io_getirq(avr_, AVR_IOCTL_IOPORT_GETIRQ('D'), pin), (levels >> pin) & 1);
      }
      applied_digital_ = levels;
    }
    pump_uart();

    const double wall_s = std::chrono::duration<double>(WallClock::now() - start).count();
    const auto target = static_cast<avr_cycle_count_t>(wall_s * kFrequency);
    if (avr_->cycle >= target) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      continue;
    }
    const double lag_ms = static_cast<double>(target - avr_->cycle) * 1000.0 / kFrequency;
    const avr_cycle_count_t end = std::min(target, avr_->cycle + slice);
    while (avr_->cycle < end) {
      const int state = avr_run(avr_);
      if (state == cpu_Done || state == cpu_Crashed) {
        running_ = false;
        break;
      }
    }
    poll_outputs();
    std::lock_guard lock(mutex_);
    if (lag_ms > max_lag_ms_ && wall_s > 0.1) max_lag_ms_ = lag_ms;
  }
}

}  // namespace cellguard::testing
