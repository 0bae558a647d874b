// Log replay bus: `replay:PATH[?speed=K&loop=1&bus=NAME&time=wall|log]` (semantics in bus.h).
//
// The log is streamed with the readers of log.h: one frame is read ahead and held until it is due.
// A steady timer on the bus's io_context fires when the next frame is due; the handler delivers every
// frame due by then (at most kMaxBatch, then it posts itself again so other handlers get the loop).
//
// Ownership: the Bus owns the state (a shared_ptr held only by the Bus); handlers queued on the loop
// hold a weak_ptr, lock it for the duration of the handler and do nothing once the bus is gone.
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <atomic>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>

#include "can/bus_backends.h"
#include "can/log.h"

namespace cellguard::can::detail {
namespace {

// Frames delivered by one handler before it yields the loop to others.
constexpr std::size_t kMaxBatch = 256;
// Malformed lines reported through the error handler (all are counted in frames_dropped).
constexpr std::uint64_t kMaxReportedLines = 5;
// Offsets beyond this (a century) are clamped rather than overflowing the clock arithmetic.
constexpr double kMaxOffsetNs = 100.0 * 365 * 86400 * 1e9;

struct ReplayOptions {
  std::string path;
  double speed = 1.0;  // 0: as fast as possible
  bool loop = false;
  std::optional<BusName> bus;  // only frames of this bus name/channel
  bool log_time = false;       // keep the log's timestamps instead of the delivery time
};

Error bad_url(std::string_view url, std::string_view reason) {
  return {ErrorCode::invalid_argument, "bus URL '" + std::string(url) + "': " + std::string(reason)};
}

Result<ReplayOptions> parse_options(std::string_view url, std::string_view rest) {
  ReplayOptions options;
  const std::size_t question = rest.find('?');
  options.path = std::string(rest.substr(0, question));
  if (options.path.empty()) return bad_url(url, "missing log file path (expected replay:PATH)");
  if (options.path == "-") return bad_url(url, "replay reads a file, not standard input");
  if (question == std::string_view::npos) return options;
  std::string_view query = rest.substr(question + 1);
  bool seen_speed = false, seen_loop = false, seen_bus = false, seen_time = false;
  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1);
    auto twice = [&](bool& seen) {
      const bool again = seen;
      seen = true;
      return again;
    };
    if (key == "speed") {
      if (twice(seen_speed)) return bad_url(url, "parameter 'speed' given twice");
      double speed = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), speed);
      if (value.empty() || ec != std::errc() || end != value.data() + value.size() || !std::isfinite(speed) ||
          speed < 0) {
        return bad_url(url, "parameter 'speed' must be a number >= 0 (0: as fast as possible), not '" +
                                std::string(value) + "'");
      }
      options.speed = speed;
    } else if (key == "loop") {
      if (twice(seen_loop)) return bad_url(url, "parameter 'loop' given twice");
      if (value != "0" && value != "1") {
        return bad_url(url, "parameter 'loop' must be 0 or 1, not '" + std::string(value) + "'");
      }
      options.loop = value == "1";
    } else if (key == "bus") {
      if (twice(seen_bus)) return bad_url(url, "parameter 'bus' given twice");
      if (value.empty() || value.size() > BusName::kCapacity) {
        return bad_url(url, "parameter 'bus' must have 1 to 15 characters");
      }
      options.bus = BusName(value);
    } else if (key == "time") {
      if (twice(seen_time)) return bad_url(url, "parameter 'time' given twice");
      if (value != "wall" && value != "log") {
        return bad_url(url, "parameter 'time' must be 'wall' or 'log', not '" + std::string(value) + "'");
      }
      options.log_time = value == "log";
    } else {
      return bad_url(url, "unknown parameter '" + std::string(key) + "' (expected speed, loop, bus or time)");
    }
  }
  return options;
}

using Clock = std::chrono::steady_clock;

class Replay : public std::enable_shared_from_this<Replay> {
 public:
  Replay(asio::io_context& io, std::string url, ReplayOptions options, std::unique_ptr<LogReader> reader)
      : url_(std::move(url)),
        io_(io),
        timer_(io),
        options_(std::move(options)),
        format_(reader->format()),
        reader_(std::move(reader)) {}

  void start() {
    asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->begin();
    });
  }

  Result<void> send(const Frame& frame) {
    if (closed_.load()) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return Error(ErrorCode::io_error, url_ + ": bus is closed");
    }
    if (auto valid = validate_frame(frame); !valid) return valid.error();
    counters_.frames_sent.fetch_add(1, std::memory_order_relaxed);
    return success();
  }

  void on_ready(Bus::ReadyHandler handler) {
    if (ready_) {
      asio::post(io_, [weak = weak_from_this(), handler = std::move(handler)] {
        auto self = weak.lock();
        if (self && !self->closed_.load()) handler();
      });
      return;
    }
    ready_handler_ = std::move(handler);
  }

  void close() {
    if (closed_.exchange(true)) return;
    timer_.cancel();
    reader_.reset();
  }

  Bus::ReceiveHandler receive_handler_;
  Bus::ErrorHandler error_handler_;
  std::atomic<bool> closed_{false};
  AtomicCounters counters_;
  const std::string url_;

 private:
  void begin() {
    if (closed_.load()) return;
    ready_ = true;
    if (auto handler = std::move(ready_handler_)) {
      ready_handler_ = nullptr;
      handler();
      if (closed_.load()) return;
    }
    schedule_now();
  }

  void schedule_now() {
    asio::post(io_, [weak = weak_from_this()] {
      if (auto self = weak.lock()) self->run_batch();
    });
  }

  void report(const Error& error) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    if (error_handler_) error_handler_(error);
  }

  // Reads the next frame of this bus into pending_; false at the end of the log (or on an I/O
  // failure, after which the bus is closed).
  bool read_ahead() {
    for (;;) {
      if (!reader_) return false;
      auto got = reader_->next(pending_);
      if (!got.ok()) {
        if (got.error().code != ErrorCode::parse_error) {
          report(Error(got.error().code, "replay: " + got.error().message));
          close();
          return false;
        }
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        if (++reported_lines_ <= kMaxReportedLines) {
          std::string message = "replay: " + got.error().message;
          if (reported_lines_ == kMaxReportedLines) message += " (further malformed lines are only counted)";
          report(Error(ErrorCode::parse_error, std::move(message)));
          if (closed_.load()) return false;
        }
        continue;
      }
      if (!*got) return false;
      if (options_.bus && !(pending_.bus == *options_.bus)) continue;
      return true;
    }
  }

  // Starts the log again from its beginning; false if that fails (reported, bus closed).
  bool rewind() {
    auto reader = open_log_reader(options_.path, format_);
    if (!reader.ok()) {
      report(Error(reader.error().code, "replay: " + reader.error().message));
      close();
      return false;
    }
    reader_ = std::move(*reader);
    return true;
  }

  // When `log_ns` is due on the steady clock.
  Clock::time_point due(std::int64_t log_ns) const {
    if (options_.speed == 0) return base_steady_;
    // The difference first, in integers: epoch nanoseconds have more digits than a double holds.
    std::int64_t difference = 0;
    if (__builtin_sub_overflow(log_ns, base_log_ns_, &difference)) {
      difference = log_ns < base_log_ns_ ? 0 : std::numeric_limits<std::int64_t>::max();
    }
    double offset = static_cast<double>(difference) / options_.speed;
    if (offset < 0) offset = 0;  // a time going backwards: at once
    if (offset > kMaxOffsetNs) offset = kMaxOffsetNs;
    return base_steady_ + std::chrono::nanoseconds(static_cast<std::int64_t>(offset));
  }

  // Makes pending_ hold the next frame; handles the end of the log and loop=1. False if there is
  // nothing more to deliver.
  bool advance() {
    if (read_ahead()) return true;
    if (closed_.load()) return false;
    if (options_.loop && pass_frames_ > 0) {
      // The next pass starts when the last frame of this one was due.
      const Clock::time_point restart = have_base_ ? last_due_ : Clock::now();
      pass_frames_ = 0;
      if (!rewind()) return false;
      if (read_ahead()) {
        base_steady_ = restart;
        base_log_ns_ = pending_.timestamp_ns;
        return true;
      }
      if (closed_.load()) return false;
    }
    finished_ = true;
    reader_.reset();
    report(Error(ErrorCode::end_of_input, "replay: " + options_.path + ": end of log after " +
                                              std::to_string(total_frames_) + " frames"));
    return false;
  }

  void run_batch() {
    if (closed_.load() || finished_) return;
    if (!has_pending_) {
      if (!advance()) return;
      has_pending_ = true;
    }
    if (!have_base_) {
      have_base_ = true;
      base_steady_ = Clock::now();
      base_log_ns_ = pending_.timestamp_ns;
    }
    const Clock::time_point now = Clock::now();
    const std::int64_t wall_now = wall_clock_ns();
    std::size_t delivered = 0;
    for (;;) {
      const Clock::time_point when = due(pending_.timestamp_ns);
      if (when > now) {
        timer_.expires_at(when);
        timer_.async_wait([weak = weak_from_this()](const asio::error_code& ec) {
          if (ec) return;
          if (auto self = weak.lock()) self->run_batch();
        });
        return;
      }
      if (delivered == kMaxBatch) {
        schedule_now();
        return;
      }
      last_due_ = when;
      Frame frame = pending_;
      if (!options_.log_time) frame.timestamp_ns = wall_now;
      ++delivered;
      ++pass_frames_;
      ++total_frames_;
      counters_.frames_received.fetch_add(1, std::memory_order_relaxed);
      has_pending_ = false;
      if (receive_handler_) receive_handler_(frame);
      if (closed_.load()) return;
      if (!advance()) return;
      has_pending_ = true;
    }
  }

  asio::io_context& io_;
  asio::steady_timer timer_;
  ReplayOptions options_;
  LogFormat format_;
  std::unique_ptr<LogReader> reader_;
  Bus::ReadyHandler ready_handler_;
  bool ready_ = false;
  bool finished_ = false;
  Frame pending_;
  bool has_pending_ = false;
  bool have_base_ = false;
  Clock::time_point base_steady_{};
  Clock::time_point last_due_{};
  std::int64_t base_log_ns_ = 0;
  std::uint64_t pass_frames_ = 0;
  std::uint64_t total_frames_ = 0;
  std::uint64_t reported_lines_ = 0;
};

class ReplayBus final : public Bus {
 public:
  explicit ReplayBus(std::shared_ptr<Replay> replay) : replay_(std::move(replay)) {}
  ~ReplayBus() override { close(); }

  Result<void> send(const Frame& frame) override { return replay_->send(frame); }
  void on_receive(ReceiveHandler handler) override { replay_->receive_handler_ = std::move(handler); }
  void on_error(ErrorHandler handler) override { replay_->error_handler_ = std::move(handler); }
  void on_ready(ReadyHandler handler) override { replay_->on_ready(std::move(handler)); }
  void close() override { replay_->close(); }
  bool is_closed() const override { return replay_->closed_.load(); }
  std::string describe() const override { return replay_->url_; }
  BusCounters counters() const override { return replay_->counters_.snapshot(); }

 private:
  std::shared_ptr<Replay> replay_;
};

}  // namespace

Result<std::unique_ptr<Bus>> open_replay_bus(asio::io_context& io, std::string_view url,
                                             std::string_view rest) {
  auto options = parse_options(url, rest);
  if (!options.ok()) return options.error();
  auto reader = open_log_reader(options->path);
  if (!reader.ok()) return Error(reader.error().code, "replay: " + reader.error().message);
  auto replay = std::make_shared<Replay>(io, std::string(url), std::move(*options), std::move(*reader));
  replay->start();
  return std::unique_ptr<Bus>(std::make_unique<ReplayBus>(std::move(replay)));
}

}  // namespace cellguard::can::detail
