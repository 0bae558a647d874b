#include "monitor/render.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cmath>

namespace cellguard::monitor {
namespace {

std::string id_text(std::uint32_t id, bool extended) {
  return extended ? fmt::format("0x{:08X}", id) : fmt::format("0x{:03X}", id);
}

std::string message_title(const MessageView& m) {
  if (m.multiplexer.empty()) return m.name;
  return fmt::format("{} [{} = {}]", m.name, m.multiplexer, m.mux_value);
}

std::string fixed(double v, int decimals) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return fmt::format("{:.{}f}", v, decimals);
}

std::string optional_fixed(const std::optional<double>& v, int decimals, std::string_view unit = {}) {
  if (!v) return "-";
  std::string text = fixed(*v, decimals);
  if (!unit.empty()) {
    text += ' ';
    text += unit;
  }
  return text;
}

std::string rate_text(double hz) { return fmt::format("{:.1f}/s", hz); }

std::size_t columns_of(std::string_view text) {
  std::size_t n = 0;
  for (unsigned char c : text)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

std::string pad_left(std::string_view text, std::size_t width) {
  const std::size_t n = columns_of(text);
  return n >= width ? std::string(text) : std::string(width - n, ' ') + std::string(text);
}

std::string pad_right(std::string_view text, std::size_t width) {
  const std::size_t n = columns_of(text);
  return n >= width ? std::string(text) : std::string(text) + std::string(width - n, ' ');
}

std::vector<std::string> header_lines(const Snapshot& s, const RenderContext& c) {
  std::vector<std::string> lines;
  std::string first = "cellguard monitor  " + c.source;
  if (c.wall_time) first += "  " + format_wall_time(*c.wall_time);
  if (c.paused) first += "  PAUSED";
  lines.push_back(first);
  lines.push_back(fmt::format("{} frames ({}), {} unknown, {} failed to decode, {} error frames", s.frames,
                              rate_text(s.rate_hz), s.unknown_frames, s.failed_frames, s.error_frames));
  return lines;
}

// The module grid: a table of cell voltages and one of temperatures, a row per module.
std::vector<std::string> grid_lines(const Snapshot& s) {
  std::vector<std::string> lines;
  if (s.modules.empty()) return lines;
  const std::string vunit = s.cell_voltage_unit.empty() ? "" : " (" + s.cell_voltage_unit + ")";
  lines.push_back("");
  std::string head = "module";
  for (int cell = 1; cell <= s.grid_cells; ++cell) head += pad_left(std::to_string(cell), 6);
  head += "    voltage  current    SOC     min/max cell    age";
  lines.push_back("cell voltages" + vunit);
  lines.push_back(head);
  for (const ModuleRow& m : s.modules) {
    std::string row = pad_left(std::to_string(m.module), 6);
    std::optional<double> low, high;
    for (int cell = 1; cell <= s.grid_cells; ++cell) {
      const auto i = static_cast<std::size_t>(cell - 1);
      const auto& v = i < m.cell_voltages.size() ? m.cell_voltages[i] : std::optional<double>();
      row += pad_left(optional_fixed(v, s.cell_voltage_decimals), 6);
      if (v) {
        low = low ? std::min(*low, *v) : *v;
        high = high ? std::max(*high, *v) : *v;
      }
    }
    row += pad_left(optional_fixed(m.voltage, 2, "V"), 11);
    row += pad_left(optional_fixed(m.current, 1, "A"), 9);
    row += pad_left(optional_fixed(m.soc, 1, "%"), 8);
    row += pad_left(low && high
                        ? fixed(*low, s.cell_voltage_decimals) + "/" + fixed(*high, s.cell_voltage_decimals)
                        : "-",
                    16);
    row += pad_left(format_age(m.age_ns), 8);
    lines.push_back(row);
  }
  if (s.grid_temperatures > 0) {
    const std::string tunit = s.temperature_unit.empty() ? "" : " (" + s.temperature_unit + ")";
    lines.push_back("");
    lines.push_back("temperatures" + tunit);
    std::string theads = "module";
    for (int t = 1; t <= s.grid_temperatures; ++t) theads += pad_left(std::to_string(t), 6);
    theads += "     min     max";
    lines.push_back(theads);
    for (const ModuleRow& m : s.modules) {
      std::string row = pad_left(std::to_string(m.module), 6);
      for (int t = 1; t <= s.grid_temperatures; ++t) {
        const auto i = static_cast<std::size_t>(t - 1);
        row += pad_left(optional_fixed(i < m.temperatures.size() ? m.temperatures[i] : std::nullopt, 0), 6);
      }
      row += pad_left(optional_fixed(m.min_temperature, 0), 8);
      row += pad_left(optional_fixed(m.max_temperature, 0), 8);
      lines.push_back(row);
    }
  }
  return lines;
}

std::string message_line(const MessageView& m) {
  std::string line = fmt::format("{}  {}  {}  age {}  {} frames", message_title(m), id_text(m.id, m.extended),
                                 rate_text(m.rate_hz), format_age(m.age_ns), m.frames);
  if (!m.error.empty()) line += "  error: " + m.error;
  return line;
}

std::string unknown_line(const Snapshot& s) {
  std::string line = "unknown ids:";
  for (const UnknownId& u : s.unknown)
    line += fmt::format(" {} ({} frames, {})", id_text(u.id, u.extended), u.frames, rate_text(u.rate_hz));
  if (s.other_unknown_frames > 0) line += fmt::format(" and {} frames of other ids", s.other_unknown_frames);
  return line;
}

}  // namespace

std::string format_age(std::optional<TimeNs> age_ns) {
  if (!age_ns) return "-";
  const double ms = static_cast<double>(*age_ns) / 1e6;
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return fmt::format("{:.0f} ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f} s", ms / 1000);
  return fmt::format("{:.1f} min", ms / 60'000);
}

std::string format_wall_time(TimeNs wall_ns) {
  const time_t seconds =
      static_cast<time_t>(wall_ns >= 0 ? wall_ns / 1'000'000'000 : (wall_ns - 999'999'999) / 1'000'000'000);
  const auto ms = static_cast<int>((wall_ns - static_cast<TimeNs>(seconds) * 1'000'000'000) / 1'000'000);
  struct tm tm {};
  gmtime_r(&seconds, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}.{:03} UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string format_value(const SignalView& signal) {
  std::string text = fixed(signal.value, signal.decimals);
  if (!signal.unit.empty()) text += " " + signal.unit;
  if (!signal.choice.empty()) text += " (" + signal.choice + ")";
  return text;
}

std::string fit(std::string_view text, int columns) {
  if (columns <= 0) return {};
  if (columns_of(text) <= static_cast<std::size_t>(columns)) return std::string(text);
  std::string out;
  std::size_t n = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) {
      if (n + 1 == static_cast<std::size_t>(columns)) break;
      ++n;
    }
    out += text[i];
  }
  return out + "~";
}

std::string render_text(const Snapshot& s, const RenderContext& c) {
  std::string out;
  auto add = [&](const std::string& line) {
    out += line;
    out += '\n';
  };
  for (const auto& line : header_lines(s, c)) add(line);
  if (c.grid)
    for (const auto& line : grid_lines(s)) add(line);
  add("");
  add(s.messages.empty() ? "no messages (yet)" : "messages");
  for (const MessageView& m : s.messages) {
    add(message_line(m));
    std::size_t width = 0;
    for (const SignalView& sig : m.signals) width = std::max(width, columns_of(sig.name));
    for (const SignalView& sig : m.signals) add("  " + pad_right(sig.name, width) + "  " + format_value(sig));
  }
  if (!s.unknown.empty()) {
    add("");
    add(unknown_line(s));
  }
  return out;
}

std::vector<std::string> render_screen(const Snapshot& s, const RenderContext& c, int width, int height) {
  std::vector<std::string> body;
  for (const auto& line : header_lines(s, c)) body.push_back(line);
  if (c.grid)
    for (const auto& line : grid_lines(s)) body.push_back(line);
  body.push_back("");
  std::size_t messages_shown = 0;
  const auto limit = static_cast<std::size_t>(std::max(height - 1, 1));
  for (const MessageView& m : s.messages) {
    std::vector<std::string> block{message_line(m)};
    std::string line = "   ";
    for (const SignalView& sig : m.signals) {
      const std::string item = " " + sig.name + "=" + format_value(sig);
      if (columns_of(line) > 3 && columns_of(line) + columns_of(item) > static_cast<std::size_t>(width)) {
        block.push_back(line);
        line = "   ";
      }
      line += item;
    }
    if (columns_of(line) > 3) block.push_back(line);
    if (body.size() + block.size() > limit) break;
    body.insert(body.end(), block.begin(), block.end());
    ++messages_shown;
  }
  if (!s.unknown.empty() && body.size() < limit) body.push_back(unknown_line(s));
  if (body.size() > limit) body.resize(limit);
  std::string help = "[p] pause  [q] quit";
  if (messages_shown < s.messages.size())
    help = fmt::format("{} of {} messages shown (--filter, a larger window)  ", messages_shown,
                       s.messages.size()) +
           help;
  while (body.size() + 1 < static_cast<std::size_t>(height)) body.emplace_back();
  body.push_back(help);
  for (auto& line : body) line = fit(line, width);
  return body;
}

nlohmann::json to_json(const Snapshot& s, const RenderContext& c) {
  using nlohmann::json;
  auto seconds = [](TimeNs ns) { return static_cast<double>(ns) / 1e9; };
  auto opt = [](const std::optional<double>& v) -> json { return v ? json(*v) : json(nullptr); };
  json j;
  j["source"] = c.source;
  if (c.wall_time) {
    j["t"] = seconds(*c.wall_time);
    j["time_utc"] = format_wall_time(*c.wall_time);
  }
  j["frames"] = s.frames;
  j["rate_hz"] = s.rate_hz;
  j["unknown_frames"] = s.unknown_frames;
  j["failed_frames"] = s.failed_frames;
  j["error_frames"] = s.error_frames;
  json messages = json::array();
  for (const MessageView& m : s.messages) {
    json jm{{"name", m.name},         {"id", m.id},
            {"extended", m.extended}, {"frames", m.frames},
            {"rate_hz", m.rate_hz},   {"age_s", m.age_ns ? json(seconds(*m.age_ns)) : json()}};
    if (!m.multiplexer.empty()) jm["mux"] = {{"signal", m.multiplexer}, {"value", m.mux_value}};
    if (!m.error.empty()) jm["error"] = m.error;
    json signals = json::object();
    for (const SignalView& sig : m.signals) {
      json js{{"value", sig.value}, {"unit", sig.unit}, {"text", format_value(sig)}};
      if (!sig.choice.empty()) js["choice"] = sig.choice;
      signals[sig.name] = std::move(js);
    }
    jm["signals"] = std::move(signals);
    messages.push_back(std::move(jm));
  }
  j["messages"] = std::move(messages);
  json modules = json::array();
  for (const ModuleRow& m : s.modules) {
    json cells = json::array(), temps = json::array();
    for (const auto& v : m.cell_voltages) cells.push_back(opt(v));
    for (const auto& v : m.temperatures) temps.push_back(opt(v));
    modules.push_back({{"module", m.module},
                       {"cell_voltages", std::move(cells)},
                       {"temperatures", std::move(temps)},
                       {"voltage", opt(m.voltage)},
                       {"current", opt(m.current)},
                       {"soc", opt(m.soc)},
                       {"min_temperature", opt(m.min_temperature)},
                       {"max_temperature", opt(m.max_temperature)},
                       {"age_s", m.age_ns ? json(seconds(*m.age_ns)) : json()}});
  }
  j["modules"] = std::move(modules);
  j["units"] = {{"cell_voltage", s.cell_voltage_unit}, {"temperature", s.temperature_unit}};
  json unknown = json::array();
  for (const UnknownId& u : s.unknown)
    unknown.push_back({{"id", u.id}, {"extended", u.extended}, {"frames", u.frames}, {"rate_hz", u.rate_hz}});
  j["unknown"] = std::move(unknown);
  return j;
}

}  // namespace cellguard::monitor
