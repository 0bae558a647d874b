#include "faultproxy/plan.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace cellguard::faultproxy {
namespace {

constexpr std::array<std::string_view, kFaultKinds> kKindNames{"cut",   "reset",     "stall",
                                                               "delay", "blackhole", "refuse"};
constexpr Nanos kMaxDuration = std::chrono::hours(24 * 365);

std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + std::string(...).
std::string quote(std::string_view text) {
  std::string quoted;
  quoted.reserve(text.size() + 2);
  quoted.push_back('\'');
  quoted.append(text);
  quoted.push_back('\'');
  return quoted;
}

std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

struct Unit {
  std::string_view suffix;
  double nanos;
};
// Longest suffixes first, so "ms" is not read as "m" + "s".
constexpr std::array<Unit, 5> kUnits{{{"ns", 1}, {"us", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}}};

// The number and the unit of "1.5s"; unit empty when the text has none.
Result<std::pair<double, std::string_view>> split_duration(std::string_view text) {
  std::string_view unit;
  std::string_view number = text;
  for (const Unit& u : kUnits) {
    if (text.size() > u.suffix.size() && text.ends_with(u.suffix)) {
      unit = u.suffix;
      number = text.substr(0, text.size() - u.suffix.size());
      break;
    }
  }
  if (number.empty() || number.size() > 32)
    return Error(ErrorCode::parse_error, quote(text) + " is not a duration");
  for (char c : number)
    if (!((c >= '0' && c <= '9') || c == '.'))
      return Error(ErrorCode::parse_error, quote(text) + " is not a duration (e.g. 250ms, 2s)");
  const std::string copy(number);
  char* end = nullptr;
  const double value = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size() || !std::isfinite(value))
    return Error(ErrorCode::parse_error, quote(text) + " is not a duration (e.g. 250ms, 2s)");
  return std::pair<double, std::string_view>{value, unit};
}

Result<Nanos> to_nanos(double value, std::string_view unit, std::string_view text) {
  if (unit.empty()) {
    if (value == 0) return Nanos{0};
    return Error(ErrorCode::parse_error, quote(text) + " needs a unit (ns, us, ms, s, m)");
  }
  double factor = 1;
  for (const Unit& u : kUnits)
    if (u.suffix == unit) factor = u.nanos;
  const double nanos = value * factor;
  if (nanos > static_cast<double>(kMaxDuration.count()))
    return Error(ErrorCode::parse_error, quote(text) + " is longer than a year");
  return Nanos{static_cast<std::int64_t>(std::llround(nanos))};
}

bool valid_range(const DurationRange& r) { return r.min >= Nanos{0} && r.max >= r.min; }

}  // namespace

std::string_view to_string(FaultKind kind) { return kKindNames[static_cast<std::size_t>(kind)]; }

Result<FaultKind> parse_fault_kind(std::string_view name) {
  for (std::size_t i = 0; i < kKindNames.size(); ++i)
    if (kKindNames[i] == name) return static_cast<FaultKind>(i);
  return Error(ErrorCode::parse_error, "unknown fault kind '" + std::string(name.substr(0, 64)) +
                                           "' (cut, reset, stall, delay, blackhole, refuse)");
}

std::string_view to_string(Direction direction) {
  switch (direction) {
    case Direction::up:
      return "up";
    case Direction::down:
      return "down";
    case Direction::both:
      return "both";
  }
  return "both";
}

Result<Direction> parse_direction(std::string_view name) {
  if (name == "up") return Direction::up;
  if (name == "down") return Direction::down;
  if (name == "both") return Direction::both;
  return Error(ErrorCode::parse_error,
               "unknown direction '" + std::string(name.substr(0, 64)) + "' (up, down, both)");
}

Result<Nanos> parse_duration(std::string_view text) {
  Result<std::pair<double, std::string_view>> parts = split_duration(text);
  if (!parts) return parts.error();
  return to_nanos(parts->first, parts->second, text);
}

Result<DurationRange> parse_duration_range(std::string_view text) {
  const std::size_t dots = text.find("..");
  if (dots == std::string_view::npos) {
    Result<Nanos> one = parse_duration(text);
    if (!one) return one.error();
    return DurationRange{*one, *one};
  }
  const std::string_view low_text = text.substr(0, dots);
  const std::string_view high_text = text.substr(dots + 2);
  Result<std::pair<double, std::string_view>> low = split_duration(low_text);
  if (!low) return low.error();
  Result<std::pair<double, std::string_view>> high = split_duration(high_text);
  if (!high) return high.error();
  // "0..200ms", "2..8s": a bare end takes the unit of the other.
  const std::string_view low_unit = low->second.empty() ? high->second : low->second;
  const std::string_view high_unit = high->second.empty() ? low->second : high->second;
  Result<Nanos> min = to_nanos(low->first, low_unit, low_text);
  if (!min) return min.error();
  Result<Nanos> max = to_nanos(high->first, high_unit, high_text);
  if (!max) return max.error();
  if (*max < *min) return Error(ErrorCode::parse_error, quote(text) + ": the end is before the start");
  return DurationRange{*min, *max};
}

std::string format_duration(Nanos duration) {
  const std::int64_t ns = duration.count();
  char buffer[64];
  if (ns % 1'000'000'000 == 0)
    std::snprintf(buffer, sizeof buffer, "%llds", static_cast<long long>(ns / 1'000'000'000));
  else if (ns % 1'000'000 == 0)
    std::snprintf(buffer, sizeof buffer, "%lldms", static_cast<long long>(ns / 1'000'000));
  else if (ns % 1000 == 0)
    std::snprintf(buffer, sizeof buffer, "%lldus", static_cast<long long>(ns / 1000));
  else
    std::snprintf(buffer, sizeof buffer, "%lldns", static_cast<long long>(ns));
  return buffer;
}

Rng::Rng(std::uint64_t seed) {
  std::uint64_t state = seed;
  for (std::uint64_t& word : s_) word = splitmix64(state);
}

std::uint64_t Rng::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

std::uint64_t Rng::below(std::uint64_t bound) {
  if (bound == 0) return 0;
  // Rejection keeps the draw exactly uniform.
  const std::uint64_t limit =
      std::numeric_limits<std::uint64_t>::max() - std::numeric_limits<std::uint64_t>::max() % bound;
  std::uint64_t x = next();
  while (x >= limit) x = next();
  return x % bound;
}

double Rng::unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

Nanos Rng::in(const DurationRange& range) {
  if (range.max <= range.min) return range.min;
  const auto span = static_cast<std::uint64_t>((range.max - range.min).count());
  return range.min + Nanos{static_cast<std::int64_t>(below(span + 1))};
}

Result<void> validate(const PlanOptions& options) {
  if (!valid_range(options.interval) || options.interval.min <= Nanos{0})
    return Error(ErrorCode::invalid_argument,
                 "fault interval: must be a range of positive durations, e.g. 2s..8s");
  if (!valid_range(options.stall))
    return Error(ErrorCode::invalid_argument, "stall: not a valid range of durations");
  if (!valid_range(options.outage))
    return Error(ErrorCode::invalid_argument, "outage: not a valid range of durations");
  if (!(options.reset_prob >= 0 && options.reset_prob <= 1))
    return Error(ErrorCode::invalid_argument, "reset probability must be within 0..1");
  if (options.kinds.empty()) return Error(ErrorCode::invalid_argument, "no fault kinds to draw from");
  for (FaultKind kind : options.kinds)
    if (kind == FaultKind::delay)
      return Error(ErrorCode::invalid_argument, "delay is not a planned fault kind (use the delay range)");
  return success();
}

PlannedFault next_fault(const PlanOptions& options, Nanos after, Rng& rng) {
  PlannedFault fault;
  fault.at =
      after + std::max(options.interval.min > Nanos{0} ? rng.in(options.interval) : Nanos{0}, Nanos{1});
  std::vector<FaultKind> others;
  bool reset_enabled = false;
  for (FaultKind kind : options.kinds) {
    if (kind == FaultKind::reset)
      reset_enabled = true;
    else if (std::find(others.begin(), others.end(), kind) == others.end())
      others.push_back(kind);
  }
  const double reset_draw = rng.unit();
  const std::uint64_t kind_draw = rng.next();
  if (reset_enabled && (others.empty() || reset_draw < options.reset_prob))
    fault.kind = FaultKind::reset;
  else if (!others.empty())
    fault.kind = others[kind_draw % others.size()];
  const Nanos stall = rng.in(options.stall);
  const Nanos outage = rng.in(options.outage);
  if (fault.kind == FaultKind::stall) fault.duration = stall;
  if (fault.kind == FaultKind::blackhole || fault.kind == FaultKind::refuse) fault.duration = outage;
  fault.direction = static_cast<Direction>(rng.below(3));
  if (fault.kind != FaultKind::stall) fault.direction = Direction::both;
  fault.pick = rng.next();
  return fault;
}

FaultPlan::FaultPlan(PlanOptions options, std::uint64_t seed) : options_(std::move(options)), rng_(seed) {}

PlannedFault FaultPlan::next() {
  PlannedFault fault = next_fault(options_, last_, rng_);
  last_ = fault.at;
  return fault;
}

}  // namespace cellguard::faultproxy
