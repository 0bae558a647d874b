// libFuzzer target for the schedule parser: any input gives a Schedule or an Error (no crash, no
// hang); a Schedule holds only finite setpoints and positive durations, validates without trouble,
// and a Runner over it advances across long gaps without overflow.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "schedule/schedule.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace s = cellguard::schedule;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = s::parse_schedule(text, "fuzz.csv");
  if (!parsed.ok()) {
    if (parsed.error().message.rfind("fuzz.csv:", 0) != 0) std::abort();  // errors are located
    return 0;
  }
  if (parsed->steps.empty()) std::abort();
  for (const auto& step : parsed->steps) {
    if (step.duration <= cellguard::Duration::zero() || !std::isfinite(step.setpoint) || step.line < 2)
      std::abort();
  }
  (void)s::validate_schedule(*parsed, s::ScheduleLimits{});
  const cellguard::Duration total = parsed->total();
  if (total <= cellguard::Duration::zero()) std::abort();
  s::Runner runner(std::move(parsed).value(), s::EndAction::loop);
  const cellguard::MonoTime t0;
  runner.start(t0);
  for (cellguard::Duration d : {total / 3, total, total + cellguard::Duration(1), 5 * total + total / 2}) {
    const cellguard::MonoTime now = t0 + d;
    (void)runner.advance(now);
    const auto& p = runner.position();
    if (!p.running || p.step >= runner.schedule().steps.size() || p.next_change <= now) std::abort();
  }
  return 0;
}
