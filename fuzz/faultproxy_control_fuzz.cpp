// libFuzzer target for the fault proxy's external input: control socket request lines
// (parse_control_request) and the command line's duration ranges (parse_duration_range). Any input
// gives a request or an Error (no crash, no throw); parsed values keep their invariants.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "faultproxy/fault_proxy.h"
#include "faultproxy/plan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace fp = cellguard::faultproxy;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto request = fp::parse_control_request(text);
  if (!request.ok()) {
    if (!request.error().message.starts_with("control:")) std::abort();
  } else if (request->verb == fp::ControlRequest::Verb::fault) {
    const fp::Fault& fault = request->fault;
    if (fault.duration < fp::Nanos{0} || fault.latency.min < fp::Nanos{0} ||
        fault.latency.max < fault.latency.min)
      std::abort();
    if ((fault.kind == fp::FaultKind::stall || fault.kind == fp::FaultKind::blackhole ||
         fault.kind == fp::FaultKind::refuse) &&
        fault.duration <= fp::Nanos{0})
      std::abort();
  }
  auto range = fp::parse_duration_range(text);
  if (range.ok()) {
    if (range->min < fp::Nanos{0} || range->max < range->min) std::abort();
    fp::Rng rng(size);
    const fp::Nanos drawn = rng.in(*range);
    if (drawn < range->min || drawn > range->max) std::abort();
    (void)fp::format_duration(range->max);
  }
  return 0;
}
