// Turning a monitor Snapshot into text for people (the snapshot of `--once`, the lines of the live
// screen) and into JSON for programs. Pure: no terminal, no clock.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "monitor/monitor.h"

namespace cellguard::monitor {

struct RenderContext {
  std::string source;               // "socketcand://127.0.0.1:29536/can0", "rig.log"
  std::optional<TimeNs> wall_time;  // the snapshot's wall-clock time (ns since the Unix epoch), if known
  bool paused = false;
  bool grid = true;  // show the module grid
};

// The whole snapshot as text: a header, the module grid, every message with one signal per line.
std::string render_text(const Snapshot& snapshot, const RenderContext& context);

// The live screen: at most `height` lines, each at most `width` columns (UTF-8 aware); messages
// show their signals side by side. The last line is the key help (or what was cut).
std::vector<std::string> render_screen(const Snapshot& snapshot, const RenderContext& context, int width,
                                       int height);

// Machine fields beside the texts: times as Unix seconds and UTC ISO 8601, rates in Hz, ages in s.
nlohmann::json to_json(const Snapshot& snapshot, const RenderContext& context);

// "12 ms", "1.5 s", "3.0 min"; "-" if none.
std::string format_age(std::optional<TimeNs> age_ns);
// "2026-12-07 15:40:01.250 UTC".
std::string format_wall_time(TimeNs wall_ns);
// A value with the signal's decimals, its unit and value-table text: "3.94 V", "3 (Balancing)".
std::string format_value(const SignalView& signal);
// Cuts `text` to `columns` display columns (UTF-8 code points), marking a cut with '~'.
std::string fit(std::string_view text, int columns);

}  // namespace cellguard::monitor
