// The live cache (live.h).
#include "server/live.h"

#include <cmath>
#include <limits>

namespace cellguard::server {
namespace {

constexpr store::TimeNs kHourNs = 3600LL * 1'000'000'000;

}  // namespace

std::string state_name_of(double value) {
  static const char* names[] = {"normal", "warning", "dangerous", "safe"};
  if (!(value >= 0 && value <= 3) || value != std::floor(value)) return "unknown";
  return names[static_cast<int>(value)];
}

LiveCache::LiveCache(store::Store& store, EventSink sink) : store_(store), sink_(std::move(sink)) {}

void LiveCache::set_catalogue(Entry& entry, store::EdgeInfo info) {
  entry.live.software_version = std::move(info.software_version);
  entry.live.config_sha256 = std::move(info.config_sha256);
  entry.live.channels = std::move(info.channels);
  entry.state_channel.reset();
  entry.channel_ids.clear();
  for (const auto& c : entry.live.channels) {
    entry.channel_ids.insert(c.id);
    if (c.name == "safety.state") entry.state_channel = c.id;
  }
  ++entry.live.version;
}

void LiveCache::refresh_catalogue(const std::string& edge_id, Entry& entry) {
  auto edges = store_.edges();
  if (!edges) return;
  for (auto& info : *edges)
    if (info.edge_id == edge_id) set_catalogue(entry, std::move(info));
}

void LiveCache::apply_state_value(Entry& entry, store::TimeNs t, double v) {
  if (t < entry.state_value_ns || t < entry.state_event_ns) return;
  entry.state_value_ns = t;
  const std::string name = state_name_of(v);
  if (name == entry.live.state.state) return;
  // The channel moved without a (yet received) state event: trust it, without reasons.
  entry.live.state.state = name;
  entry.live.state.since_ns = t;
  entry.live.state.reasons = nlohmann::json::array();
}

void LiveCache::apply_event(Entry& entry, const store::Event& event) {
  entry.live.recent.push_back(event);
  while (entry.live.recent.size() > kRecentEvents) entry.live.recent.pop_front();
  apply_state_event(entry, event);
  apply_causes_or_limits(entry, event);
}

bool LiveCache::apply_causes_or_limits(Entry& entry, const store::Event& event) {
  const bool causes = event.kind == "limit" || event.kind == "state";
  if (!causes && event.kind != "config") return false;
  const nlohmann::json j = nlohmann::json::parse(event.json, nullptr, false);
  if (!j.is_object()) return false;
  if (causes) {
    auto it = j.find("active_causes");
    if (it == j.end() || !it->is_array()) return false;
    if (event.time_ns < entry.live.state.causes_ns) return true;  // a late backlog event: older news
    LiveState& s = entry.live.state;
    s.active_causes = *it;
    auto reset = j.find("reset_possible");
    s.reset_possible = reset != j.end() && reset->is_boolean() ? *reset : nlohmann::json();
    s.causes_ns = event.time_ns;
    return true;
  }
  auto it = j.find("limits");
  if (j.value("event", "") != "limits" || it == j.end() || !it->is_object()) return false;
  if (event.time_ns >= entry.live.limits_ns) {
    entry.live.limits = *it;
    entry.live.limits_ns = event.time_ns;
  }
  return true;
}

void LiveCache::apply_state_event(Entry& entry, const store::Event& event) {
  if (event.kind != "state" || event.time_ns < entry.state_event_ns) return;
  const nlohmann::json j = nlohmann::json::parse(event.json, nullptr, false);
  if (!j.is_object() || !j.contains("to") || !j["to"].is_string()) return;
  const std::string to = j["to"].get<std::string>();
  // Older than the state channel's newest sample and not what it says: the channel is newer news.
  if (event.time_ns < entry.state_value_ns && to != entry.live.state.state) return;
  entry.state_event_ns = event.time_ns;
  LiveState& s = entry.live.state;
  s.state = to;
  s.since_ns = event.time_ns;
  s.reasons = nlohmann::json::array();
  if (s.state != "normal" && j.contains("reason") && j["reason"].is_object())
    s.reasons.push_back(j["reason"]);
}

void LiveCache::imply_normal(Entry& entry) {
  // The supervisor starts NORMAL and the edge records only changes: an edge that delivers data and
  // never reported a state is normal.
  if (entry.live.state.state != "unknown" || entry.live.latest.empty()) return;
  store::TimeNs first = std::numeric_limits<store::TimeNs>::max();
  for (const auto& [id, v] : entry.live.latest) first = std::min(first, v.t);
  entry.live.state.state = "normal";
  entry.live.state.since_ns = first;
}

Result<void> LiveCache::load(WallTime now) {
  const store::TimeNs now_ns = now.ns();
  auto edges = store_.edges();
  if (!edges) return edges.error();
  MutexLock lock(mutex_);
  for (auto& info : *edges) {
    const std::string id = info.edge_id;
    Entry& entry = edges_[id];
    set_catalogue(entry, std::move(info));
    auto latest = store_.latest(id);
    if (!latest) return latest.error();
    for (const auto& v : *latest) entry.live.latest[v.channel] = {v.time_ns, v.value};
    // The newest state event: look back in growing windows (the store lists events oldest first).
    for (const store::TimeNs back : {kHourNs, 24 * kHourNs, 30 * 24 * kHourNs}) {
      auto events = store_.events(id, now_ns - back, now_ns + kHourNs, 50'000);
      if (!events) return events.error();
      if (back == kHourNs) {
        const std::size_t first = events->size() > kRecentEvents ? events->size() - kRecentEvents : 0;
        for (std::size_t i = first; i < events->size(); ++i) entry.live.recent.push_back((*events)[i]);
      }
      const store::Event* last_state = nullptr;
      for (const auto& e : *events) {
        if (e.kind == "state") last_state = &e;
        // Oldest first: the newest causes and limits win.
        if (back == kHourNs || entry.live.state.causes_ns == 0 || entry.live.limits_ns == 0)
          apply_causes_or_limits(entry, e);
      }
      if (last_state) {
        apply_state_event(entry, *last_state);
        if (entry.live.limits_ns != 0) break;
      }
    }
    if (entry.state_channel) {
      auto it = entry.live.latest.find(*entry.state_channel);
      if (it != entry.live.latest.end()) apply_state_value(entry, it->second.t, it->second.v);
    }
    imply_normal(entry);
    entry.live.version = 1;
  }
  ++generation_;
  return success();
}

void LiveCache::on_committed(const std::string& edge_id, const std::vector<store::Batch>& batches) {
  std::vector<store::Event> fresh;
  {
    MutexLock lock(mutex_);
    Entry& entry = edges_[edge_id];
    // A channel the catalogue does not know (a new edge, a hello that added channels): reload it
    // once; ids still unknown after that are remembered so they cost nothing next time.
    bool refreshed = false;
    for (const store::Batch& b : batches)
      for (const store::SeriesBatch& s : b.series)
        for (std::uint32_t ch : s.channels)
          if (!entry.channel_ids.count(ch)) {
            if (!refreshed) refresh_catalogue(edge_id, entry);
            refreshed = true;
            entry.channel_ids.insert(ch);
          }
    for (const store::Batch& b : batches) {
      if (entry.seen.contains(b.seq)) continue;  // a resend
      entry.seen.insert(b.seq);
      for (const store::SeriesBatch& s : b.series) {
        const std::size_t width = s.channels.size();
        if (width == 0 || s.values.size() != width * s.times_ns.size()) continue;
        for (std::size_t col = 0; col < width; ++col) {
          const std::uint32_t ch = s.channels[col];
          // The newest non-NaN value of this column in the row group.
          for (std::size_t row = s.times_ns.size(); row-- > 0;) {
            const double v = s.values[row * width + col];
            if (std::isnan(v)) continue;
            const store::TimeNs t = s.times_ns[row];
            LiveValue& lv = entry.live.latest[ch];
            if (t >= lv.t) lv = {t, v};
            if (entry.state_channel && ch == *entry.state_channel) apply_state_value(entry, t, v);
            break;
          }
        }
      }
      for (const store::Event& e : b.events) {
        apply_event(entry, e);
        fresh.push_back(e);
        log_.push_back({++serial_, edge_id, e});
      }
      ++entry.live.version;
    }
    imply_normal(entry);
    while (log_.size() > kEventLog) log_.pop_front();
    ++generation_;
  }
  changed_.notify_all();
  if (sink_)
    for (const auto& e : fresh) sink_(edge_id, e);
}

std::optional<LiveEdge> LiveCache::edge(const std::string& edge_id) const {
  MutexLock lock(mutex_);
  auto it = edges_.find(edge_id);
  if (it == edges_.end()) return std::nullopt;
  return it->second.live;
}

std::vector<std::string> LiveCache::edge_ids() const {
  MutexLock lock(mutex_);
  std::vector<std::string> out;
  for (const auto& [id, e] : edges_) out.push_back(id);
  return out;
}

LiveState LiveCache::state(const std::string& edge_id) const {
  MutexLock lock(mutex_);
  auto it = edges_.find(edge_id);
  return it == edges_.end() ? LiveState{} : it->second.live.state;
}

std::uint64_t LiveCache::version(const std::string& edge_id) const {
  MutexLock lock(mutex_);
  auto it = edges_.find(edge_id);
  return it == edges_.end() ? 0 : it->second.live.version;
}

std::vector<LiveEvent> LiveCache::events_after(std::uint64_t after, std::size_t max) const {
  MutexLock lock(mutex_);
  std::vector<LiveEvent> out;
  for (const auto& e : log_) {
    if (e.serial <= after) continue;
    out.push_back(e);
    if (out.size() >= max) break;
  }
  return out;
}

std::uint64_t LiveCache::last_serial() const {
  MutexLock lock(mutex_);
  return serial_;
}

std::uint64_t LiveCache::generation() const {
  MutexLock lock(mutex_);
  return generation_;
}

std::uint64_t LiveCache::wait(std::uint64_t seen, std::chrono::milliseconds timeout) const {
  MutexLock lock(mutex_);
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (generation_ == seen) {
    if (changed_.wait_until(lock, until) == std::cv_status::timeout) break;
  }
  return generation_;
}

void LiveCache::wake_all() {
  {
    MutexLock lock(mutex_);
    ++generation_;
  }
  changed_.notify_all();
}

}  // namespace cellguard::server
