// What the dashboard shows live, kept in memory: per edge the catalogue, the latest value of every
// channel, the safety state with its reasons and the recent events; and one sequence of new events
// of all edges (for the live stream and the alarms).
//
// Fed by the ingest's writer thread after each commit (IngestConfig::on_committed); loaded once
// from the store at start so a restarted server shows the last known values at once. A batch seen
// before (a resend) is ignored, so an event is streamed and alarmed once per server run. Values of
// a backlog that arrive late never replace newer ones (the greatest time wins, as Store::latest).
//
// State: the newest of the edge's "state" events ({"from","to","reason":{...}}) and its channel
// "safety.state" (0 normal, 1 warning, 2 dangerous, 3 safe); "unknown" before either. Reasons: the
// reason of the state event that entered the current state, empty while normal. The supervisor
// starts NORMAL and records changes only, so an edge with values and no state report is "normal"
// (since the oldest of its latest values: a lower bound known without reading history).
//
// Causes: the edge's limit and state events carry "active_causes" and "reset_possible" (the state
// after the event); the newest such event gives LiveState::active_causes and reset_possible.
//
// Thread safety: every method may be called from any thread (one mutex; on_committed holds it
// briefly). wait() blocks until a change or the timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/thread_annotations.h"
#include "store/store.h"
#include "uplink/protocol.h"

namespace cellguard::server {

struct LiveValue {
  store::TimeNs t = 0;
  double v = 0;
};

struct LiveState {
  std::string state = "unknown";  // normal | warning | dangerous | safe | unknown
  store::TimeNs since_ns = 0;
  nlohmann::json reasons = nlohmann::json::array();
  // From the newest "limit" or "state" event that carries them (edges since issue 13): every cause
  // active after it, and whether an operator reset would be accepted. null: the edge has not said.
  nlohmann::json active_causes;
  nlohmann::json reset_possible;
  store::TimeNs causes_ns = 0;  // time of that event
};

struct LiveEdge {
  std::string software_version, config_sha256;  // of the last hello, as stored
  std::vector<store::Channel> channels;         // the catalogue
  std::map<std::uint32_t, LiveValue> latest;    // by channel id
  LiveState state;
  std::deque<store::Event> recent;  // newest last, at most kRecentEvents
  // The configured limits by quantity ({"cell_voltage":{"warning_high":4.1,...}}), from the edge's
  // newest {"kind":"config","event":"limits"} event; null before one arrives.
  nlohmann::json limits;
  store::TimeNs limits_ns = 0;
  std::uint64_t version = 0;  // changes whenever anything above does
};

struct LiveEvent {
  std::uint64_t serial = 0;  // 1, 2, ... over all edges
  std::string edge_id;
  store::Event event;
};

class LiveCache {
 public:
  static constexpr std::size_t kRecentEvents = 200;  // per edge
  static constexpr std::size_t kEventLog = 2000;     // all edges, for the live streams

  // `sink` sees every new event (the alarms); called on the writer thread, outside the lock.
  using EventSink = std::function<void(const std::string& edge_id, const store::Event& event)>;
  explicit LiveCache(store::Store& store, EventSink sink = {});

  // Loads every stored edge's catalogue, latest values, state and recent events.
  Result<void> load(WallTime now);
  // The ingest's hook.
  void on_committed(const std::string& edge_id, const std::vector<store::Batch>& batches);

  std::optional<LiveEdge> edge(const std::string& edge_id) const;
  std::vector<std::string> edge_ids() const;
  LiveState state(const std::string& edge_id) const;
  std::uint64_t version(const std::string& edge_id) const;  // 0: unknown edge
  // Events with serial > after, oldest first, at most `max`.
  std::vector<LiveEvent> events_after(std::uint64_t after, std::size_t max = kEventLog) const;
  std::uint64_t last_serial() const;
  // Any change anywhere: a counter; wait() returns when it differs from `seen` or after `timeout`.
  std::uint64_t generation() const;
  std::uint64_t wait(std::uint64_t seen, std::chrono::milliseconds timeout) const;
  void wake_all();  // ends waits early (shutdown)

 private:
  struct Entry {
    LiveEdge live;
    std::optional<std::uint32_t> state_channel;
    store::TimeNs state_event_ns = 0;  // time of the newest state event applied
    store::TimeNs state_value_ns = 0;  // time of the newest safety.state sample applied
    std::set<std::uint32_t> channel_ids;
    uplink::SeqSet seen;
  };
  static void set_catalogue(Entry& entry, store::EdgeInfo info);
  void refresh_catalogue(const std::string& edge_id, Entry& entry) REQUIRES(mutex_);
  static void apply_event(Entry& entry, const store::Event& event);
  static void apply_state_event(Entry& entry, const store::Event& event);
  // Active causes (limit and state events) and limits (config events); false if the event has none.
  static bool apply_causes_or_limits(Entry& entry, const store::Event& event);
  static void apply_state_value(Entry& entry, store::TimeNs t, double v);
  static void imply_normal(Entry& entry);

  store::Store& store_;
  EventSink sink_;
  mutable Mutex mutex_;
  mutable CondVar changed_;
  std::map<std::string, Entry, std::less<>> edges_ GUARDED_BY(mutex_);
  std::deque<LiveEvent> log_ GUARDED_BY(mutex_);
  std::uint64_t serial_ GUARDED_BY(mutex_) = 0, generation_ GUARDED_BY(mutex_) = 0;
};

// "normal", "warning", "dangerous", "safe" for 0..3; "unknown" otherwise.
std::string state_name_of(double value);

}  // namespace cellguard::server
