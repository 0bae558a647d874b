#include "schedule/schedule.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <utility>

#include "core/text.h"

namespace cellguard::schedule {
namespace {

// A step longer than a year or a file longer than ~31 years is a typo, and keeps ns sums in int64.
constexpr double kMaxIntervalS = 365.0 * 24 * 3600;
constexpr Duration kMaxTotal{1'000'000'000'000'000'000};
constexpr std::size_t kMaxSteps = 1'000'000;
constexpr std::size_t kQuoteMax = 40;  // characters of offending text quoted in a message

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string quote(std::string_view s) {
  std::string out = "'";
  out.append(s.substr(0, kQuoteMax));
  if (s.size() > kQuoteMax) out += "...";
  out += "'";
  return out;
}

std::string number(double v) { return format_shortest(v); }

Error located(std::string_view origin, int line, const std::string& cause) {
  return Error(ErrorCode::parse_error, std::string(origin) + ":" + std::to_string(line) + ": " + cause);
}

// from_chars takes no leading '+' and no surrounding blanks; a spreadsheet may write both.
bool parse_number(std::string_view field, double& out) {
  if (!field.empty() && field.front() == '+') field.remove_prefix(1);
  if (field.empty()) return false;
  const char* end = field.data() + field.size();
  const auto [ptr, ec] = std::from_chars(field.data(), end, out);
  return ec == std::errc() && ptr == end;
}

}  // namespace

std::string_view to_string(SetpointKind kind) {
  switch (kind) {
    case SetpointKind::current_a:
      return "current";
    case SetpointKind::power_kw:
      return "power";
  }
  return "?";
}

Duration Schedule::total() const {
  Duration total{0};
  for (const auto& step : steps) total += step.duration;
  return total;
}

Result<Schedule> parse_schedule(std::string_view text, std::string_view origin) {
  Schedule schedule;
  schedule.origin = std::string(origin);
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);

  bool have_header = false;
  Duration total{0};
  int line_no = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::string_view raw =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_no;
    const std::string_view line = trim(raw);
    if (line.empty()) continue;

    const std::size_t comma = line.find(',');
    if (comma == std::string_view::npos) {
      return located(origin, line_no, "expected two fields separated by ',', found " + quote(line));
    }
    const std::string_view first = trim(line.substr(0, comma));
    const std::string_view second = trim(line.substr(comma + 1));
    if (second.find(',') != std::string_view::npos) {
      return located(origin, line_no, "expected two fields, found more in " + quote(line));
    }

    if (!have_header) {
      if (first != "Interval [s]") {
        return located(origin, line_no,
                       "expected the header 'Interval [s],Current [A]' or 'Interval [s],Power [kW]', found " +
                           quote(line));
      }
      if (second == "Current [A]") {
        schedule.kind = SetpointKind::current_a;
      } else if (second == "Power [kW]") {
        schedule.kind = SetpointKind::power_kw;
      } else {
        return located(origin, line_no,
                       "expected 'Current [A]' or 'Power [kW]' as the second column, found " + quote(second));
      }
      have_header = true;
      continue;
    }

    double interval_s = 0;
    double setpoint = 0;
    if (!parse_number(first, interval_s))
      return located(origin, line_no, "interval " + quote(first) + " is not a number");
    if (!parse_number(second, setpoint))
      return located(origin, line_no, "setpoint " + quote(second) + " is not a number");
    if (!std::isfinite(interval_s))
      return located(origin, line_no, "interval " + quote(first) + " is not finite");
    if (!std::isfinite(setpoint))
      return located(origin, line_no, "setpoint " + quote(second) + " is not finite");
    if (!(interval_s > 0))
      return located(origin, line_no, "interval " + number(interval_s) + " s is not > 0");
    if (interval_s > kMaxIntervalS) {
      return located(origin, line_no, "interval " + number(interval_s) + " s is longer than a year");
    }
    const Duration duration{std::llround(interval_s * 1e9)};
    if (duration <= Duration::zero())
      return located(origin, line_no, "interval " + number(interval_s) + " s is shorter than 1 ns");
    if (schedule.steps.size() >= kMaxSteps) return located(origin, line_no, "more than 1000000 steps");
    total += duration;
    if (total > kMaxTotal) return located(origin, line_no, "the schedule is longer than 31 years");
    schedule.steps.push_back(Step{duration, setpoint == 0 ? 0.0 : setpoint, line_no});  // no -0
  }
  if (!have_header)
    return located(origin, line_no,
                   "empty file: expected the header 'Interval [s],Current [A]' or 'Interval [s],Power [kW]'");
  if (schedule.steps.empty()) return located(origin, line_no, "no steps after the header");
  return schedule;
}

Result<Schedule> load_schedule(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_schedule(*text, path);
}

Result<void> validate_schedule(const Schedule& schedule, const ScheduleLimits& limits) {
  const bool current = schedule.kind == SetpointKind::current_a;
  const double low = current ? limits.charge_current_a : limits.charge_power_kw;
  const double high = current ? limits.discharge_current_a : limits.discharge_power_kw;
  const char* unit = current ? " A" : " kW";
  const char* what = current ? "current" : "power";
  if (!(low <= 0 && high >= 0)) {
    return Error(ErrorCode::invalid_argument, schedule.origin + ": " + what + " limits " + number(low) +
                                                  unit + " .. " + number(high) + unit + " do not include 0");
  }
  for (const auto& step : schedule.steps) {
    const char* which = nullptr;
    double limit = 0;
    if (step.setpoint < low) {
      which = current ? "charge current limit" : "charge power limit";
      limit = low;
    } else if (step.setpoint > high) {
      which = current ? "discharge current limit" : "discharge power limit";
      limit = high;
    }
    if (which != nullptr) {
      return Error(ErrorCode::invalid_argument, schedule.origin + ":" + std::to_string(step.line) + ": " +
                                                    what + " " + number(step.setpoint) + unit +
                                                    " is beyond the " + which + " " + number(limit) + unit);
    }
  }
  return success();
}

// --- Runner ---

Runner::Runner(Schedule schedule, EndAction at_end) : schedule_(std::move(schedule)), at_end_(at_end) {}

void Runner::start(MonoTime now) {
  position_ = Position{};
  position_.step_started = now;
  position_.next_change = now;
  if (schedule_.steps.empty()) return;
  position_.running = true;
  position_.setpoint = schedule_.steps[0].setpoint;
  position_.next_change = now + schedule_.steps[0].duration;
}

void Runner::stop(MonoTime now) {
  position_.running = false;
  position_.setpoint = 0;
  position_.next_change = now;
}

std::optional<Position> Runner::advance(MonoTime now) {
  if (!position_.running || now < position_.next_change) return std::nullopt;
  const auto& steps = schedule_.steps;
  // Steps are laid on the schedule's own timeline (each starts when the previous ends), so a late
  // call neither stretches nor drifts the schedule. Whole cycles missed in a long gap are skipped
  // arithmetically rather than stepped through.
  if (at_end_ == EndAction::loop) {
    const Duration total = schedule_.total();
    const Duration late = now - position_.next_change;
    if (total > Duration::zero() && late >= total) {
      const std::int64_t cycles = late / total;
      position_.next_change += cycles * total;
      position_.cycle += static_cast<std::uint64_t>(cycles);
    }
  }
  while (now >= position_.next_change) {
    std::size_t next = position_.step + 1;
    if (next >= steps.size()) {
      if (at_end_ == EndAction::stop) {
        position_.running = false;
        position_.setpoint = 0;
        position_.step_started = position_.next_change;
        return position_;
      }
      next = 0;
      ++position_.cycle;
    }
    position_.step = next;
    position_.setpoint = steps[next].setpoint;
    position_.step_started = position_.next_change;
    position_.next_change += steps[next].duration;
  }
  return position_;
}

// --- ReadbackCheck ---

void ReadbackCheck::expect(double setpoint, MonoTime now) {
  pending_ = true;
  expected_ = setpoint;
  last_measured_ = 0;
  requested_ = now;
}

void ReadbackCheck::cancel() { pending_ = false; }

MonoTime ReadbackCheck::deadline() const { return requested_ + timeout_; }

std::optional<ReadbackResult> ReadbackCheck::on_measurement(double measured, MonoTime now) {
  if (!pending_) return std::nullopt;
  last_measured_ = measured;
  // A match that arrives after the deadline is still a failure: the check is "within the timeout".
  if (now > deadline()) return tick(now);
  if (!(std::fabs(measured - expected_) <= tolerance_)) return std::nullopt;
  pending_ = false;
  return ReadbackResult{true, expected_, measured, tolerance_, now - requested_};
}

std::optional<ReadbackResult> ReadbackCheck::tick(MonoTime now) {
  if (!pending_ || now <= deadline()) return std::nullopt;
  pending_ = false;
  return ReadbackResult{false, expected_, last_measured_, tolerance_, now - requested_};
}

}  // namespace cellguard::schedule
