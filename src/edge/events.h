// The edge's events: every state change, action, module join, link change and limit crossing as
// one JSON object, for the --events file (JSON lines), the recording and the log.
//
//   {"t":1764083412.123456,"kind":"action","action":"inverter_off","reason":{"rule":"limit_high",
//    "level":"dangerous","quantity":"cell_voltage","channel":"BMU03_pdo3.Cell_5_Voltage","module":3,
//    "measured":4.21,"threshold":4.2,"since_s":1764083412.02},"latency_us":41}
//
// kinds: state (from, to), action (inverter_off, inverter_setpoint, contactors_open, cooling_on/off,
// relay, precharge_*), module (joined, discovered), link (can, board, inverter: up/down, errors),
// limit (a cause appeared, changed level or cleared), operator (reset, start, schedule requests and
// their answers), schedule (step, readback, end).
//
// Event building is pure. EventWriter owns a thread that appends lines to the file, so a slow disk
// never delays the loop (the loop only queues; a full queue drops and counts).
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "core/result.h"
#include "core/thread_annotations.h"
#include "safety/safety.h"

namespace cellguard::edge {

// Wall-clock and monotonic times of "now", so reasons given in monotonic ns can be shown as
// wall-clock seconds.
struct TimeBase {
  WallTime wall_ns;
  MonoTime mono_ns;
  double wall_s(MonoTime mono) const { return static_cast<double>(wall(mono).ns()) / 1e9; }
  WallTime wall(MonoTime mono) const { return wall_ns + (mono - mono_ns); }
  // The same pair as the supervisor's texts take it ("now" = mono_ns).
  safety::ClockPair clock() const { return {mono_ns, wall_ns}; }
  // The pair at another monotonic time (a decision's), for durations in its text.
  safety::ClockPair clock_at(MonoTime mono) const { return {mono, wall(mono)}; }
};

// "2026-12-07T01:36:42.123Z": wall-clock ns as ISO 8601 UTC with milliseconds, beside the epoch
// seconds in JSON.
std::string iso_utc(WallTime wall);

// A state's name in events and status: "normal", "warning", "dangerous", "safe" (the supervisor's
// own names are upper case, for sentences).
std::string state_name(safety::State state);

// The reason as JSON: machine fields (rule, level, quantity and channel for limits, module, measured,
// threshold, since_s as wall-clock epoch seconds, since_utc as ISO 8601) and `text` for people, with
// wall-clock times only (never the edge's monotonic clock).
nlohmann::json reason_json(const safety::Supervisor& supervisor, const safety::Reason& reason,
                           const TimeBase& time);

// The event for one supervisor decision; `kind` is "state", "action", "module" or "operator"; `text`
// says what was decided and why ("relay 3 (precharge) opened: precharge reached 352.1 V of ...").
nlohmann::json decision_event(const safety::Supervisor& supervisor, const safety::Decision& decision,
                              const TimeBase& time);

// The one way the edge turns JSON into text (events, the recording, operator answers): every string
// value is passed through escape_untrusted (core/text.h; idempotent, so text escaped before is kept)
// and the dump replaces any invalid UTF-8 left (in keys), so no byte from outside can make it throw.
// Strings longer than kMaxJsonStringBytes are cut.
inline constexpr std::size_t kMaxJsonStringBytes = 4096;
std::string to_json_text(nlohmann::json value);

// A JSON-lines file written by a background thread.
class EventWriter {
 public:
  static Result<std::unique_ptr<EventWriter>> open(const std::string& path);
  ~EventWriter();
  EventWriter(const EventWriter&) = delete;
  EventWriter& operator=(const EventWriter&) = delete;

  bool write(std::string line);  // false when dropped (queue full)
  void flush();                  // blocks until queued lines are written and fflush'ed
  std::uint64_t dropped() const;

 private:
  explicit EventWriter(std::FILE* file);
  void run();

  std::FILE* file_;  // written by the thread only; closed after it has ended
  mutable Mutex mutex_;
  CondVar wake_, drained_;
  std::deque<std::string> queue_ GUARDED_BY(mutex_);
  bool stopping_ GUARDED_BY(mutex_) = false;
  std::uint64_t written_ GUARDED_BY(mutex_) = 0;
  std::uint64_t queued_ GUARDED_BY(mutex_) = 0;
  std::uint64_t dropped_ GUARDED_BY(mutex_) = 0;
  std::thread thread_;
};

}  // namespace cellguard::edge
