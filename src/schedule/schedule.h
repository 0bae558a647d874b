// Charge/discharge schedules: the rig's CSV files, validated against the limits, and the pure
// runner that says which setpoint holds at a given time, plus the readback check.
//
// Files (shared/spec/seed-rig.md, "Control schedule files"): a header `Interval [s],Current [A]` or
// `Interval [s],Power [kW]` (a UTF-8 BOM is skipped), then one `seconds,setpoint` row per step: hold
// the setpoint for the interval, then the next row. At the end: loop to the first row or stop.
// Negative setpoints charge. A setpoint beyond the limits is refused at load, naming the line.
// Readback: after each setpoint change the measured current (or power) must come within the
// tolerance (rig: ±0.5 A / ±0.5 kW) within the timeout (rig: 10 s).
//
// Pure: time (the caller's monotonic clock, MonoTime) and values in, results out. No I/O but
// load_schedule().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "core/time.h"

namespace cellguard::schedule {

enum class SetpointKind : std::uint8_t { current_a, power_kw };
std::string_view to_string(SetpointKind kind);

struct Step {
  Duration duration{0};
  double setpoint = 0;  // A or kW; negative charges
  int line = 0;         // line in the file, for messages
};

struct Schedule {
  std::string origin;  // file name, for messages
  SetpointKind kind = SetpointKind::current_a;
  std::vector<Step> steps;
  Duration total() const;
};

// Parses the text of a schedule file. Errors (parse_error) are "ORIGIN:LINE: cause".
Result<Schedule> parse_schedule(std::string_view text, std::string_view origin);
Result<Schedule> load_schedule(const std::string& path);

struct ScheduleLimits {
  double charge_current_a = -100;  // most negative allowed current
  double discharge_current_a = 100;
  double charge_power_kw = -30;  // most negative allowed power
  double discharge_power_kw = 30;
};
// Errors (invalid_argument) name the first offending line, its value and the limit.
Result<void> validate_schedule(const Schedule& schedule, const ScheduleLimits& limits);

enum class EndAction : std::uint8_t { loop, stop };

// Where a running schedule is.
struct Position {
  bool running = false;
  std::size_t step = 0;     // index into steps
  std::uint64_t cycle = 0;  // completed loops
  double setpoint = 0;
  MonoTime step_started;
  MonoTime next_change;  // when the next step starts (or the schedule ends)
};

class Runner {
 public:
  Runner(Schedule schedule, EndAction at_end);
  void start(MonoTime now);
  void stop(MonoTime now);
  // Advances to now. Returns the new position if the setpoint step changed (or the run ended) since
  // the previous call, nullopt otherwise.
  std::optional<Position> advance(MonoTime now);
  const Position& position() const { return position_; }
  const Schedule& schedule() const { return schedule_; }

 private:
  Schedule schedule_;
  EndAction at_end_;
  Position position_;
};

struct ReadbackResult {
  bool ok = false;
  double expected = 0;
  double measured = 0;
  double tolerance = 0;
  Duration after{0};  // since the setpoint was requested
};

// One outstanding expectation at a time; a new expect() replaces the previous one.
class ReadbackCheck {
 public:
  ReadbackCheck(double tolerance, Duration timeout) : tolerance_(tolerance), timeout_(timeout) {}
  void expect(double setpoint, MonoTime now);
  void cancel();
  // A measurement: returns ok once within tolerance (then nothing is outstanding).
  std::optional<ReadbackResult> on_measurement(double measured, MonoTime now);
  // Returns a failed result once the timeout passed without a match.
  std::optional<ReadbackResult> tick(MonoTime now);
  bool pending() const { return pending_; }
  MonoTime deadline() const;

 private:
  double tolerance_;
  Duration timeout_;
  bool pending_ = false;
  double expected_ = 0;
  double last_measured_ = 0;
  MonoTime requested_;
};

}  // namespace cellguard::schedule
