#include "monitor/monitor.h"

#include <fnmatch.h>

#include <algorithm>
#include <cmath>

namespace cellguard::monitor {
namespace {

bool is_canopen_service(std::uint32_t id) {
  return id < 0x180 || (id >= 0x580 && id < 0x680) || (id >= 0x700 && id < 0x780);
}

// The node id of a PDO COB-ID: its offset from the nearest base below it (1..127), or 0.
int pdo_node(std::uint32_t id, const std::vector<std::uint32_t>& bases) {
  std::uint32_t best = 0;
  bool found = false;
  for (std::uint32_t base : bases) {
    if (base < id && (!found || base > best)) {
      best = base;
      found = true;
    }
  }
  if (!found || id - best > 127) return 0;
  return static_cast<int>(id - best);
}

void set_at(std::vector<std::optional<double>>& row, int number, double value) {
  const auto i = static_cast<std::size_t>(number - 1);
  if (row.size() <= i) row.resize(i + 1);
  row[i] = value;
}

}  // namespace

int match_numbered(std::string_view pattern, std::string_view placeholder, std::string_view text,
                   bool prefix_only) {
  const auto at = pattern.find(placeholder);
  if (at == std::string_view::npos) return 0;
  const std::string_view before = pattern.substr(0, at);
  const std::string_view after = pattern.substr(at + placeholder.size());
  if (text.substr(0, before.size()) != before) return 0;
  std::size_t i = before.size();
  int value = 0;
  std::size_t digits = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9' && digits < 6) {
    value = value * 10 + (text[i] - '0');
    ++i;
    ++digits;
  }
  if (digits == 0) return 0;
  const std::string_view rest = text.substr(i);
  if (prefix_only ? rest.substr(0, after.size()) != after : rest != after) return 0;
  return value;
}

int decimals_for_scale(double scale) {
  scale = std::fabs(scale);
  if (!(scale > 0) || !std::isfinite(scale)) return 0;
  for (int d = 0; d <= 6; ++d) {
    const double scaled = scale * std::pow(10.0, d);
    if (std::fabs(scaled - std::round(scaled)) < 1e-9 * std::max(1.0, scaled)) return d;
  }
  return 6;
}

double Monitor::Arrivals::rate(TimeNs now, TimeNs window) const {
  const std::size_t kept = std::min(count, kRateSamples);
  TimeNs newest = 0, oldest = 0;
  std::size_t n = 0;
  for (std::size_t k = 0; k < kept; ++k) {
    const TimeNs t = times[(count - 1 - k) % kRateSamples];
    if (t > now || now - t > window) continue;  // outside the window (or in the future of `now`)
    newest = n == 0 ? t : std::max(newest, t);
    oldest = n == 0 ? t : std::min(oldest, t);
    ++n;
  }
  if (n < 2 || newest <= oldest) return 0;
  return static_cast<double>(n - 1) * 1e9 / static_cast<double>(newest - oldest);
}

double Monitor::total_rate(TimeNs now) const {
  if (!first_at_) return 0;
  constexpr TimeNs kBucket = 100'000'000;
  // Whole buckets from the window's start on (the one it falls in left out), up to now; divided by
  // the time they cover, from their start (or the first frame) to now.
  std::uint64_t n = 0;
  std::optional<TimeNs> since;
  for (const auto& [bucket, count] : buckets_) {
    if (bucket * kBucket < now - options_.rate_window_ns || bucket * kBucket > now) continue;
    n += count;
    if (!since) since = std::max(bucket * kBucket, *first_at_);
  }
  if (!since || now <= *since) return 0;
  return static_cast<double>(n) * 1e9 / static_cast<double>(now - *since);
}

Monitor::Monitor(const dbc::DatabaseCodec& codec, MonitorOptions options)
    : codec_(codec), options_(std::move(options)) {
  const auto& messages = codec_.database().messages;
  const GridLayout& layout = options_.layout;
  infos_.resize(messages.size());
  for (std::size_t i = 0; i < messages.size(); ++i) {
    const dbc::Message& m = messages[i];
    MessageInfo& info = infos_[i];
    info.order = i;
    const dbc::MessageCodec* c = codec_.find(m.id, m.extended);
    if (c != nullptr && &c->message() == &m) info.codec = c;  // else a duplicate id: the later wins
    if (layout.discovery == GridLayout::Discovery::canopen) {
      if (!m.extended && !is_canopen_service(m.id)) info.module = pdo_node(m.id, layout.pdo_bases);
    } else {
      info.module = match_numbered(layout.name_pattern, "{id}", m.name, true);
    }
    info.shown.assign(m.signals.size(), false);
    info.roles.resize(m.signals.size());
    info.decimals.resize(m.signals.size());
    const bool message_matches = options_.filters.empty() || glob_matches(m.name);
    for (std::size_t s = 0; s < m.signals.size(); ++s) {
      const dbc::Signal& signal = m.signals[s];
      if (signal.is_multiplexer && !signal.is_multiplexed() && info.multiplexer_index < 0)
        info.multiplexer_index = static_cast<int>(s);
      info.decimals[s] = signal.value_type == dbc::ValueType::integer ? decimals_for_scale(signal.scale) : 3;
      info.shown[s] =
          message_matches || glob_matches(signal.name) || glob_matches(m.name + "." + signal.name);
      info.shown_any = info.shown_any || info.shown[s];
      if (info.module == 0) continue;
      SignalRole& role = info.roles[s];
      if (const int cell = match_numbered(layout.cell_voltage_signal, "{n}", signal.name, false);
          cell >= 1 && cell <= layout.max_cells) {
        role = {Role::cell, cell};
        if (cell_unit_.empty()) {
          cell_unit_ = signal.unit;
          cell_decimals_ = info.decimals[s];
        }
      } else if (const int sensor = match_numbered(layout.temperature_signal, "{n}", signal.name, false);
                 sensor >= 1 && sensor <= layout.max_cells) {
        role = {Role::temperature, sensor};
        if (temperature_unit_.empty()) temperature_unit_ = signal.unit;
      } else if (signal.name == layout.module_voltage_signal) {
        role.role = Role::voltage;
      } else if (signal.name == layout.current_signal) {
        role.role = Role::current;
      } else if (signal.name == layout.soc_signal) {
        role.role = Role::soc;
      } else if (signal.name == layout.min_temperature_signal) {
        role.role = Role::min_temp;
      } else if (signal.name == layout.max_temperature_signal) {
        role.role = Role::max_temp;
      }
    }
    if (m.signals.empty()) info.shown_any = message_matches;
  }
}

bool Monitor::glob_matches(std::string_view text) const {
  const std::string t(text);
  for (const std::string& pattern : options_.filters) {
    if (::fnmatch(pattern.c_str(), t.c_str(), 0) == 0) return true;
  }
  return false;
}

bool Monitor::shows(const dbc::Message& message) const {
  const auto& messages = codec_.database().messages;
  if (messages.empty() || &message < &messages.front() || &message > &messages.back()) return false;
  return infos_[static_cast<std::size_t>(&message - &messages.front())].shown_any;
}

Monitor::MessageInfo* Monitor::info_for(const can::Frame& frame) {
  const dbc::MessageCodec* c = codec_.find(frame.id, frame.extended);
  if (c == nullptr) return nullptr;
  const auto& messages = codec_.database().messages;
  return &infos_[static_cast<std::size_t>(&c->message() - messages.data())];
}

void Monitor::on_frame(const can::Frame& frame, TimeNs at_ns) {
  ++frames_;
  constexpr TimeNs kBucket = 100'000'000;
  const TimeNs bucket = at_ns / kBucket;
  if (!first_at_) first_at_ = at_ns;
  if (!buckets_.empty() && buckets_.back().first == bucket) {
    ++buckets_.back().second;
  } else {
    buckets_.emplace_back(bucket, 1);
  }
  const TimeNs keep = options_.rate_window_ns / kBucket + 2;
  while (buckets_.size() > 1 && (buckets_.front().first < bucket - keep || buckets_.front().first > bucket))
    buckets_.pop_front();
  if (frame.error) {
    ++error_frames_;
    return;
  }
  MessageInfo* info = frame.remote ? nullptr : info_for(frame);
  if (info == nullptr || info->codec == nullptr) {
    ++unknown_frames_;
    const std::uint64_t key = (std::uint64_t{frame.extended} << 32) | frame.id;
    auto it = unknown_.find(key);
    if (it == unknown_.end()) {
      if (unknown_.size() >= kMaxUnknownIds) {
        ++other_unknown_;
        return;
      }
      it = unknown_.emplace(key, Arrivals{}).first;
    }
    it->second.add(at_ns);
    return;
  }
  const std::size_t n = info->codec->signal_count();
  std::vector<double> values(n);
  std::vector<std::uint64_t> raw(n);
  dbc::PresenceMask present(n);
  const auto payload = frame.payload();
  dbc::DecodeStatus status = info->codec->decode_raw(payload, raw.data(), present);
  if (status == dbc::DecodeStatus::ok) status = info->codec->decode(payload, values.data(), present);
  std::uint64_t mux = 0;
  if (info->multiplexer_index >= 0 && status != dbc::DecodeStatus::too_short &&
      present.test(static_cast<std::size_t>(info->multiplexer_index))) {
    mux = raw[static_cast<std::size_t>(info->multiplexer_index)];
  }
  auto it = info->entries.find(mux);
  if (it == info->entries.end()) {
    if (info->entries.size() >= kMaxMuxValuesPerMessage) {
      ++info->mux_overflow;
      return;
    }
    it = info->entries.try_emplace(mux).first;
  }
  Entry& entry = it->second;
  entry.arrivals.add(at_ns);
  if (status != dbc::DecodeStatus::ok) {
    ++failed_frames_;
    entry.error = info->codec->describe(status, payload);
    return;  // the previous values stay, with the error beside them
  }
  entry.error.clear();
  entry.values = std::move(values);
  entry.raw = std::move(raw);
  entry.present = std::move(present);
  if (info->module != 0) update_module(*info, entry, at_ns);
}

void Monitor::update_module(const MessageInfo& info, const Entry& entry, TimeNs at_ns) {
  ModuleState& m = modules_[info.module];
  m.latest = at_ns;
  for (std::size_t s = 0; s < info.roles.size(); ++s) {
    if (info.roles[s].role == Role::none || !entry.present.test(s)) continue;
    const double v = entry.values[s];
    switch (info.roles[s].role) {
      case Role::cell:
        set_at(m.cells, info.roles[s].index, v);
        break;
      case Role::temperature:
        set_at(m.temperatures, info.roles[s].index, v);
        break;
      case Role::voltage:
        m.voltage = v;
        break;
      case Role::current:
        m.current = v;
        break;
      case Role::soc:
        m.soc = v;
        break;
      case Role::min_temp:
        m.min_temp = v;
        break;
      case Role::max_temp:
        m.max_temp = v;
        break;
      case Role::none:
        break;
    }
  }
}

Snapshot Monitor::snapshot(TimeNs now_ns) const {
  Snapshot s;
  s.time_ns = now_ns;
  s.frames = frames_;
  s.unknown_frames = unknown_frames_;
  s.failed_frames = failed_frames_;
  s.error_frames = error_frames_;
  s.other_unknown_frames = other_unknown_;
  s.rate_hz = total_rate(now_ns);
  s.cell_voltage_unit = cell_unit_;
  s.cell_voltage_decimals = cell_decimals_;
  s.temperature_unit = temperature_unit_;
  const auto& messages = codec_.database().messages;
  for (const MessageInfo& info : infos_) {
    if (!info.shown_any || info.entries.empty()) continue;
    const dbc::Message& m = messages[info.order];
    for (const auto& [mux, entry] : info.entries) {
      MessageView v;
      v.name = m.name;
      v.id = m.id;
      v.extended = m.extended;
      if (info.multiplexer_index >= 0) {
        v.multiplexer = m.signals[static_cast<std::size_t>(info.multiplexer_index)].name;
        v.mux_value = mux;
      }
      v.frames = entry.arrivals.count;
      v.rate_hz = entry.arrivals.rate(now_ns, options_.rate_window_ns);
      if (auto latest = entry.arrivals.latest()) v.age_ns = std::max<TimeNs>(0, now_ns - *latest);
      v.error = entry.error;
      for (std::size_t i = 0; i < entry.values.size(); ++i) {
        if (!info.shown[i] || !entry.present.test(i)) continue;
        const dbc::Signal& signal = m.signals[i];
        SignalView sv;
        sv.name = signal.name;
        sv.unit = signal.unit;
        sv.value = entry.values[i];
        sv.decimals = info.decimals[i];
        if (!signal.value_descriptions.empty())
          sv.choice = std::string(info.codec->choice(i, static_cast<std::int64_t>(entry.raw[i])));
        v.signals.push_back(std::move(sv));
      }
      s.messages.push_back(std::move(v));
    }
  }
  for (const auto& [module, state] : modules_) {
    ModuleRow row;
    row.module = module;
    row.cell_voltages = state.cells;
    row.temperatures = state.temperatures;
    row.voltage = state.voltage;
    row.current = state.current;
    row.soc = state.soc;
    row.min_temperature = state.min_temp;
    row.max_temperature = state.max_temp;
    if (state.latest) row.age_ns = std::max<TimeNs>(0, now_ns - *state.latest);
    s.grid_cells = std::max(s.grid_cells, static_cast<int>(state.cells.size()));
    s.grid_temperatures = std::max(s.grid_temperatures, static_cast<int>(state.temperatures.size()));
    s.modules.push_back(std::move(row));
  }
  for (const auto& [key, arrivals] : unknown_) {
    UnknownId u;
    u.id = static_cast<std::uint32_t>(key & 0xFFFFFFFFu);
    u.extended = (key >> 32) != 0;
    u.frames = arrivals.count;
    u.rate_hz = arrivals.rate(now_ns, options_.rate_window_ns);
    s.unknown.push_back(u);
  }
  return s;
}

}  // namespace cellguard::monitor
