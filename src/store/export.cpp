#include "store/export.h"

#include <time.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <unordered_map>

#include "core/text.h"
#include "recorder/rig_csv.h"

namespace cellguard::store {
namespace {

constexpr TimeNs kSecond = 1'000'000'000;
constexpr TimeNs kMaxSeconds = 9'000'000'000;  // year 2255: ns fit an int64
// The channels of recorder::kRigDeviceColumns: the board as the rig logged it (ADC counts) or
// converted (degC, the pressure unit), then the inverter.
constexpr std::size_t kDeviceCount = std::size(recorder::kRigDeviceColumns);
constexpr const char* kDeviceChannelsRaw[kDeviceCount] = {
    "board.pressure_adc",         "board.temp1_adc",           "board.temp2_adc", "inverter.dc_link_power_kw",
    "inverter.dc_link_current_a", "inverter.battery_voltage_v"};
constexpr const char* kDeviceChannelsConverted[kDeviceCount] = {"board.pressure",
                                                                "board.temp1_c",
                                                                "board.temp2_c",
                                                                "inverter.dc_link_power_kw",
                                                                "inverter.dc_link_current_a",
                                                                "inverter.battery_voltage_v"};
// Modules answer each SYNC (100 ms): 5 cycles after the first module's sample, all have answered.
constexpr TimeNs kModuleDiscoveryNs = kSecond / 2;
constexpr const char* kStateChannel = "safety.state";

struct Sample {
  TimeNs time;
  std::uint32_t channel;
  double value;
};

Result<EdgeInfo> find_edge(Store& store, const std::string& edge_id) {
  auto edges = store.edges();
  if (!edges) return edges.error();
  for (auto& e : *edges)
    if (e.edge_id == edge_id) return std::move(e);
  return Error(ErrorCode::not_found, "export: no edge \"" + edge_id + "\" in the store");
}

Result<void> check_range(const ExportOptions& o) {
  if (o.to_ns < o.from_ns) return Error(ErrorCode::invalid_argument, "export: --to is before --from");
  if (o.interval_ns <= 0) return Error(ErrorCode::invalid_argument, "export: the interval must be positive");
  if (o.window_ns <= 0) return Error(ErrorCode::invalid_argument, "export: the window must be positive");
  return success();
}

// The budget of ExportOptions: an error once cancelled or past max_rows rows.
Result<void> check_budget(const ExportOptions& o, std::uint64_t rows) {
  if (o.cancelled && o.cancelled()) return Error(ErrorCode::io_error, "export: cancelled");
  if (o.max_rows != 0 && rows >= o.max_rows)
    return Error(ErrorCode::invalid_argument,
                 "export: more than " + std::to_string(o.max_rows) + " rows: choose a shorter range");
  return success();
}

// Reads the samples of [from, to] (of the wanted channels) sorted by time, window by window.
template <typename F>
Result<void> for_each_window(Store& store, const std::string& edge, TimeNs from, TimeNs to, TimeNs window,
                             const std::unordered_map<std::uint32_t, std::size_t>* wanted,
                             const ExportOptions& options, F&& f) {
  std::vector<Sample> samples;
  for (TimeNs w0 = from;;) {
    if (options.cancelled && options.cancelled()) return Error(ErrorCode::io_error, "export: cancelled");
    // Unsigned: the span may exceed INT64_MAX.
    const TimeNs w1 =
        static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(w0) < static_cast<std::uint64_t>(window)
            ? to
            : w0 + window - 1;
    samples.clear();
    auto ok = store.scan(edge, w0, w1, [&](const SeriesBatch& s) {
      const std::size_t cols = s.channels.size();
      for (std::size_t c = 0; c < cols; ++c) {
        if (wanted && !wanted->count(s.channels[c])) continue;
        for (std::size_t r = 0; r < s.times_ns.size(); ++r) {
          const double v = s.values[r * cols + c];
          if (!std::isnan(v)) samples.push_back({s.times_ns[r], s.channels[c], v});
        }
      }
    });
    if (!ok) return ok;
    std::stable_sort(samples.begin(), samples.end(),
                     [](const Sample& a, const Sample& b) { return a.time < b.time; });
    if (auto r = f(w0, w1, samples); !r) return r;
    if (w1 >= to) break;
    w0 = w1 + 1;
  }
  return success();
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out.append(buf);
    } else {
      out.push_back(ch);
    }
  }
  out.push_back('"');
}

}  // namespace

namespace {

// The modules of the discovery: those whose first sample comes within kModuleDiscoveryNs of the first
// module sample at or after `from` (none: no module in the range). Reads window by window until found.
struct Discovery {
  TimeNs first_ns = std::numeric_limits<TimeNs>::max();
  std::set<int> modules;
};
Result<Discovery> discover_modules(Store& store, const ExportOptions& o, TimeNs from,
                                   const std::unordered_map<std::uint32_t, int>& module_of) {
  const std::string& edge = o.edge_id;
  const TimeNs to = o.to_ns, window = o.window_ns;
  Discovery d;
  auto scan_modules = [&](TimeNs a, TimeNs b, std::vector<std::pair<TimeNs, int>>& seen) {
    return store.scan(edge, a, b, [&](const SeriesBatch& s) {
      const std::size_t cols = s.channels.size();
      for (std::size_t c = 0; c < cols; ++c) {
        auto it = module_of.find(s.channels[c]);
        if (it == module_of.end()) continue;
        for (std::size_t r = 0; r < s.times_ns.size(); ++r)
          if (!std::isnan(s.values[r * cols + c])) seen.emplace_back(s.times_ns[r], it->second);
      }
    });
  };
  std::vector<std::pair<TimeNs, int>> seen;
  for (TimeNs w0 = from;;) {
    // The search for the first sample may cross a long empty range: the export's budget holds here too.
    if (o.cancelled && o.cancelled()) return Error(ErrorCode::io_error, "export: cancelled");
    const TimeNs w1 =
        static_cast<std::uint64_t>(to) - static_cast<std::uint64_t>(w0) < static_cast<std::uint64_t>(window)
            ? to
            : w0 + window - 1;
    if (auto ok = scan_modules(w0, w1, seen); !ok) return ok.error();
    for (const auto& [t, m] : seen) d.first_ns = std::min(d.first_ns, t);
    if (!seen.empty() || w1 >= to) break;
    w0 = w1 + 1;
  }
  if (seen.empty()) return d;
  seen.clear();
  const TimeNs end = d.first_ns > std::numeric_limits<TimeNs>::max() - kModuleDiscoveryNs
                         ? d.first_ns
                         : d.first_ns + kModuleDiscoveryNs;
  if (auto ok = scan_modules(d.first_ns, std::min(end, to), seen); !ok) return ok.error();
  for (const auto& [t, m] : seen) d.modules.insert(m);
  return d;
}

}  // namespace

Result<ExportResult> export_csv(Store& store, const ExportOptions& o, const std::string& out_dir) {
  if (auto ok = check_range(o); !ok) return ok.error();
  auto info = find_edge(store, o.edge_id);
  if (!info) return info.error();
  // Columns: every module channel with a rig column, by name (each once it has a value: the rig
  // logged the signals it decoded); the board and the inverter; the flags; warning and dangerous;
  // CurrentState only with extra columns.
  const char* const* device_names = o.board_converted ? kDeviceChannelsConverted : kDeviceChannelsRaw;
  std::unordered_map<std::uint32_t, std::size_t> slot;  // channel id -> index into `last`
  std::vector<const Channel*> module_columns;
  std::array<int, kDeviceCount> device_slot;
  device_slot.fill(-1);
  int state_slot = -1, flags_slot = -1;
  std::vector<const Channel*> slots;
  for (const auto& c : info->channels) {
    if (c.name == kStateChannel) {
      state_slot = static_cast<int>(slots.size());
    } else if (c.name == recorder::kRigFlagsChannel) {
      flags_slot = static_cast<int>(slots.size());
    } else if (c.module != 0 && !c.rig_column.empty()) {
      module_columns.push_back(&c);
    } else {
      auto it =
          std::find_if(device_names, device_names + kDeviceCount, [&](const char* n) { return c.name == n; });
      if (it == device_names + kDeviceCount) continue;
      device_slot[static_cast<std::size_t>(it - device_names)] = static_cast<int>(slots.size());
    }
    slot[c.id] = slots.size();
    slots.push_back(&c);
  }
  std::sort(module_columns.begin(), module_columns.end(),
            [](const Channel* a, const Channel* b) { return a->rig_column < b->rig_column; });

  std::vector<double> last(slots.size(), std::nan(""));
  std::vector<bool> has_value(slots.size(), false);
  // No row before the modules are found (all that answer within 5 SYNC cycles of the first one): a
  // file of the board alone, or of the first modules, then another with all of them, is a stray for
  // the lab's tools (the rig's loop waited for its modules too).
  std::unordered_map<std::uint32_t, int> module_of;
  for (const Channel* c : module_columns) module_of[c->id] = c->module;
  const TimeNs start = o.from_ns > std::numeric_limits<TimeNs>::min() + o.lookback_ns
                           ? o.from_ns - o.lookback_ns
                           : std::numeric_limits<TimeNs>::min();
  auto discovery = discover_modules(store, o, start, module_of);
  if (!discovery) return discovery.error();
  std::set<int> modules_seen;
  bool modules_found = false;
  recorder::RigCsvWriter writer((std::filesystem::path(out_dir) / "Battery-System-database").string(), o.utc);
  ExportResult result;
  std::vector<std::string> columns;
  std::vector<recorder::CsvValue> values;
  TimeNs row = o.from_ns;
  TimeNs newest = std::numeric_limits<TimeNs>::min();  // the newest sample applied
  auto value_of = [](double v, bool integral) -> recorder::CsvValue {
    if (std::isnan(v)) return {};
    if (integral && v == std::floor(v) && std::fabs(v) < 9e15) return static_cast<std::int64_t>(v);
    return v;
  };

  auto write_row = [&](TimeNs t) -> Result<void> {
    if (auto budget = check_budget(o, result.rows); !budget) return budget;
    columns.clear();
    values.clear();
    for (const Channel* c : module_columns) {
      const std::size_t at = slot.at(c->id);
      if (!has_value[at]) continue;
      columns.push_back(c->rig_column);
      values.push_back(value_of(last[at], c->integral));
    }
    for (std::size_t i = 0; i < kDeviceCount; ++i) {
      columns.push_back(recorder::kRigDeviceColumns[i]);
      const double v = device_slot[i] < 0 ? std::nan("") : last[static_cast<std::size_t>(device_slot[i])];
      // Raw ADC counts are integers in the rig's file ("89"), converted values doubles.
      values.push_back(value_of(v, i < 3 && !o.board_converted));
    }
    const double flags = flags_slot < 0 ? std::nan("") : last[static_cast<std::size_t>(flags_slot)];
    for (std::size_t i = 0; i < recorder::kRigFlagCount; ++i) {
      columns.push_back(recorder::kRigFlagColumns[i]);
      if (std::isnan(flags))
        values.emplace_back();
      else
        values.emplace_back(((static_cast<std::uint64_t>(flags) >> i) & 1u) != 0);
    }
    const double state = state_slot < 0 ? std::nan("") : last[static_cast<std::size_t>(state_slot)];
    columns.insert(columns.end(), {"warning", "dangerous"});
    if (o.extra_columns) columns.push_back("CurrentState");
    if (std::isnan(state)) {
      values.insert(values.end(), o.extra_columns ? 3 : 2, recorder::CsvValue());
    } else {
      static const char* names[] = {"normal", "warning", "dangerous", "safe"};
      const int s = state >= 0 && state <= 3 ? static_cast<int>(state) : -1;
      values.emplace_back(s == 1);
      values.emplace_back(s == 2 || s == 3);
      if (o.extra_columns)
        values.emplace_back(s >= 0 ? std::string(names[s]) : "state " + format_shortest(state));
    }
    if (auto ok = writer.write(t, columns, values); !ok) return ok;
    if (result.files.empty() || result.files.back() != writer.current_path())
      result.files.push_back(writer.current_path());
    ++result.rows;
    return success();
  };
  auto apply = [&](const Sample& s) {
    const std::size_t at = slot.at(s.channel);
    last[at] = s.value;
    has_value[at] = true;
    if (slots[at]->module != 0) modules_seen.insert(slots[at]->module);
    newest = std::max(newest, s.time);
  };

  auto ok = for_each_window(store, o.edge_id, start, o.to_ns, o.window_ns, &slot, o,
                            [&](TimeNs, TimeNs w1, const std::vector<Sample>& samples) -> Result<void> {
                              result.samples += samples.size();
                              std::size_t i = 0;
                              for (; row <= w1;) {
                                for (; i < samples.size() && samples[i].time <= row; ++i) apply(samples[i]);
                                if (!modules_found && !modules_seen.empty())
                                  modules_found =
                                      row - discovery->first_ns >= kModuleDiscoveryNs ||
                                      std::includes(modules_seen.begin(), modules_seen.end(),
                                                    discovery->modules.begin(), discovery->modules.end());
                                if (modules_found && newest - row > -o.interval_ns) {
                                  if (auto r = write_row(row); !r) return r;
                                }
                                if (o.to_ns - row < o.interval_ns) {
                                  row = std::numeric_limits<TimeNs>::max();
                                  break;
                                }
                                row += o.interval_ns;
                              }
                              for (; i < samples.size(); ++i)
                                apply(samples[i]);  // after the window's last row time: for the next row
                              return success();
                            });
  writer.close();
  if (!ok) return ok.error();
  return result;
}

Result<ExportResult> export_jsonl(Store& store, const ExportOptions& o, std::FILE* out) {
  if (auto ok = check_range(o); !ok) return ok.error();
  auto info = find_edge(store, o.edge_id);
  if (!info) return info.error();
  std::unordered_map<std::uint32_t, std::string> names;
  for (const auto& c : info->channels) {
    std::string quoted;
    append_json_string(quoted, c.name);
    names[c.id] = quoted;
  }
  ExportResult result;
  std::string line;
  char number[64];
  auto ok = for_each_window(store, o.edge_id, o.from_ns, o.to_ns, o.window_ns, nullptr, o,
                            [&](TimeNs w0, TimeNs w1, const std::vector<Sample>& samples) -> Result<void> {
                              auto events =
                                  store.events(o.edge_id, w0, w1, std::numeric_limits<std::size_t>::max());
                              if (!events) return events.error();
                              std::size_t e = 0;
                              auto put = [&]() -> Result<void> {
                                if (auto budget = check_budget(o, result.rows); !budget) return budget;
                                line.push_back('\n');
                                if (std::fwrite(line.data(), 1, line.size(), out) != line.size()) {
                                  return Error(ErrorCode::io_error, "export: cannot write the JSON lines");
                                }
                                ++result.rows;
                                return success();
                              };
                              auto flush_events = [&](TimeNs until) -> Result<void> {
                                for (; e < events->size() && (*events)[e].time_ns <= until; ++e) {
                                  const Event& ev = (*events)[e];
                                  line = "{\"time\":\"" + format_time_utc(ev.time_ns) +
                                         "\",\"time_ns\":" + std::to_string(ev.time_ns) + ",\"event\":";
                                  append_json_string(line, ev.kind);
                                  line += ",\"data\":";
                                  if (nlohmann::json::accept(ev.json))
                                    line += ev.json;
                                  else
                                    append_json_string(line, ev.json);
                                  line.push_back('}');
                                  if (auto r = put(); !r) return r;
                                  ++result.events;
                                }
                                return success();
                              };
                              for (const Sample& s : samples) {
                                if (auto r = flush_events(s.time - 1); !r) return r;
                                line = "{\"time\":\"" + format_time_utc(s.time) +
                                       "\",\"time_ns\":" + std::to_string(s.time) + ",\"channel\":";
                                auto it = names.find(s.channel);
                                if (it != names.end())
                                  line += it->second;
                                else
                                  line += std::to_string(s.channel);
                                line += ",\"value\":";
                                if (std::isfinite(s.value))
                                  line.append(number, format_shortest(s.value, number));
                                else
                                  line += s.value > 0 ? "\"inf\"" : "\"-inf\"";
                                line.push_back('}');
                                if (auto r = put(); !r) return r;
                                ++result.samples;
                              }
                              return flush_events(w1);
                            });
  if (!ok) return ok.error();
  if (std::fflush(out) != 0) return Error(ErrorCode::io_error, "export: cannot write the JSON lines");
  return result;
}

Result<TimeNs> parse_time(std::string_view text) {
  auto bad = [&] {
    return Error(
        ErrorCode::invalid_argument,
        "time \"" + std::string(text) + "\": expected ISO-8601 (2026-12-01T10:00:00Z) or Unix seconds");
  };
  if (text.empty()) return bad();
  auto fraction_ns = [](std::string_view digits) {
    TimeNs ns = 0, scale = 100'000'000;
    for (char c : digits.substr(0, 9)) {
      ns += (c - '0') * scale;
      scale /= 10;
    }
    return ns;
  };
  auto all_digits = [](std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  // Unix seconds.
  if (text.find('-', 1) == std::string_view::npos && text.find(':') == std::string_view::npos) {
    const bool negative = text[0] == '-';
    std::string_view body = negative ? text.substr(1) : text;
    const auto dot = body.find('.');
    std::string_view whole = body.substr(0, dot),
                     frac = dot == std::string_view::npos ? "" : body.substr(dot + 1);
    if (!all_digits(whole) || (dot != std::string_view::npos && !all_digits(frac)) || whole.size() > 11)
      return bad();
    TimeNs s = 0;
    std::from_chars(whole.data(), whole.data() + whole.size(), s);
    if (s > kMaxSeconds) return bad();
    const TimeNs ns = s * kSecond + fraction_ns(frac);
    return negative ? -ns : ns;
  }
  // ISO-8601: YYYY-MM-DD[THH:MM[:SS[.fff]]][Z|+HH:MM|-HH:MM]
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  std::size_t pos = 0;
  auto num = [&](std::size_t width, int& v) {
    if (pos + width > text.size() || !all_digits(text.substr(pos, width))) return false;
    v = 0;
    for (std::size_t i = 0; i < width; ++i) v = v * 10 + (text[pos + i] - '0');
    pos += width;
    return true;
  };
  auto lit = [&](char c) { return pos < text.size() && text[pos] == c ? (++pos, true) : false; };
  if (!num(4, y) || !lit('-') || !num(2, mo) || !lit('-') || !num(2, d)) return bad();
  TimeNs frac = 0;
  if (pos < text.size() && (text[pos] == 'T' || text[pos] == ' ')) {
    ++pos;
    if (!num(2, h) || !lit(':') || !num(2, mi)) return bad();
    if (lit(':')) {
      if (!num(2, se)) return bad();
      if (lit('.')) {
        const std::size_t start = pos;
        while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
        if (pos == start) return bad();
        frac = fraction_ns(text.substr(start, pos - start));
      }
    }
  }
  TimeNs offset_s = 0;
  if (lit('Z') || lit('z')) {
  } else if (pos < text.size() && (text[pos] == '+' || text[pos] == '-')) {
    const bool minus = text[pos++] == '-';
    int oh = 0, om = 0;
    if (!num(2, oh)) return bad();
    (void)lit(':');
    if (!num(2, om)) return bad();
    offset_s = (oh * 3600 + om * 60) * (minus ? -1 : 1);
  }
  if (pos != text.size()) return bad();
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
  tm t{};
  t.tm_year = y - 1900;
  t.tm_mon = mo - 1;
  t.tm_mday = d;
  t.tm_hour = h;
  t.tm_min = mi;
  t.tm_sec = se;
  const TimeNs seconds = static_cast<TimeNs>(timegm(&t)) - offset_s;
  if (seconds > kMaxSeconds || seconds < -kMaxSeconds) return bad();
  return seconds * kSecond + frac;
}

std::string format_time_utc(TimeNs t) {
  TimeNs s = t / kSecond, ns = t % kSecond;
  if (ns < 0) {
    ns += kSecond;
    --s;
  }
  const time_t seconds = static_cast<time_t>(s);
  tm u{};
  gmtime_r(&seconds, &u);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &u);
  if (ns)
    n += static_cast<std::size_t>(
        std::snprintf(buf + n, sizeof buf - n, ".%09lld", static_cast<long long>(ns)));
  buf[n++] = 'Z';
  return std::string(buf, n);
}

Result<TimeNs> parse_duration(std::string_view text) {
  std::size_t end = 0;
  while (end < text.size() && ((text[end] >= '0' && text[end] <= '9') || text[end] == '.')) ++end;
  const std::string number(text.substr(0, end));
  const std::string_view unit = text.substr(end);
  double v = 0;
  auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), v);
  double scale = 0;
  if (unit.empty() || unit == "s")
    scale = 1e9;
  else if (unit == "ms")
    scale = 1e6;
  else if (unit == "us")
    scale = 1e3;
  else if (unit == "ns")
    scale = 1;
  else if (unit == "m" || unit == "min")
    scale = 60e9;
  else if (unit == "h")
    scale = 3600e9;
  if (number.empty() || ec != std::errc() || p != number.data() + number.size() || scale == 0 ||
      !(v * scale >= 1) || v * scale > 1e18) {
    return Error(ErrorCode::invalid_argument,
                 "duration \"" + std::string(text) + "\": expected e.g. 1s, 500ms, 2m, 1h");
  }
  return static_cast<TimeNs>(std::llround(v * scale));
}

}  // namespace cellguard::store
