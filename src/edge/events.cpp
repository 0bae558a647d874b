#include "edge/events.h"

#include <cerrno>
#include <cstring>
#include <ctime>

#include "core/text.h"

namespace cellguard::edge {
namespace {

constexpr std::size_t kMaxQueuedLines = 65536;

bool is_limit(safety::RuleKind rule) {
  return rule == safety::RuleKind::limit_high || rule == safety::RuleKind::limit_low;
}

const char* event_kind(safety::DecisionKind kind) {
  using K = safety::DecisionKind;
  switch (kind) {
    case K::state_changed:
      return "state";
    case K::module_joined:
      return "module";
    case K::start_refused:
    case K::reset_accepted:
    case K::reset_refused:
      return "operator";
    default:
      return "action";
  }
}

void escape_strings(nlohmann::json& value, int depth) {
  if (value.is_string()) {
    auto& text = value.get_ref<std::string&>();
    if (!is_printable_utf8(text) || text.size() > kMaxJsonStringBytes)
      text = escape_untrusted(text, kMaxJsonStringBytes);
    return;
  }
  if (!value.is_structured()) return;
  // The edge builds its JSON a few levels deep; anything deeper is only dumped (with replacement).
  if (depth > 32) return;
  for (auto& item : value) escape_strings(item, depth + 1);
}

}  // namespace

std::string to_json_text(nlohmann::json value) {
  escape_strings(value, 0);
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string iso_utc(WallTime wall) {
  const std::int64_t wall_ns = wall.ns();
  const std::int64_t ms = wall_ns / 1'000'000 - (wall_ns < 0 && wall_ns % 1'000'000 != 0 ? 1 : 0);
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000 - (ms < 0 && ms % 1000 != 0 ? 1 : 0));
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  const std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", static_cast<int>(((ms % 1000) + 1000) % 1000));
  return text;
}

std::string state_name(safety::State state) {
  std::string name(to_string(state));
  for (char& c : name) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return name;
}

nlohmann::json reason_json(const safety::Supervisor& supervisor, const safety::Reason& reason,
                           const TimeBase& time) {
  nlohmann::json j;
  j["rule"] = std::string(to_string(reason.rule));
  j["level"] = std::string(to_string(reason.level));
  if (is_limit(reason.rule)) j["quantity"] = std::string(to_string(reason.quantity));
  if (reason.channel != safety::kNoChannel && reason.channel < supervisor.channel_count())
    j["channel"] = supervisor.channel(reason.channel).name;
  if (reason.module_id != 0) j["module"] = reason.module_id;
  j["measured"] = reason.measured;
  j["threshold"] = reason.threshold;
  j["since_s"] = time.wall_s(reason.since_ns);
  j["since_utc"] = iso_utc(time.wall(reason.since_ns));
  if (reason.rule == safety::RuleKind::stop_request)
    j["origin"] = std::string(to_string(static_cast<safety::StopOrigin>(reason.detail)));
  j["text"] = supervisor.describe(reason, time.clock());
  return j;
}

nlohmann::json decision_event(const safety::Supervisor& supervisor, const safety::Decision& d,
                              const TimeBase& time) {
  using K = safety::DecisionKind;
  nlohmann::json j;
  j["t"] = time.wall_s(d.time_ns);
  j["kind"] = event_kind(d.kind);
  switch (d.kind) {
    case K::state_changed:
      j["from"] = state_name(d.from);
      j["to"] = state_name(d.to);
      break;
    case K::module_joined:
      j["module"] = d.reason.module_id;
      j["event"] = "joined";
      break;
    case K::start_refused:
    case K::reset_accepted:
    case K::reset_refused:
      j["operator"] = std::string(to_string(d.kind));
      break;
    default:
      j["action"] = std::string(to_string(d.kind));
      break;
  }
  if (d.kind == K::inverter_nudge_charge || d.kind == K::inverter_nudge_discharge ||
      d.kind == K::inverter_hold)
    j["setpoint_a"] = d.setpoint_a;
  if (d.kind == K::contactors_open) j["emergency"] = d.emergency;
  if (d.kind == K::relay_set) {
    j["relay"] = d.relay;
    j["role"] = std::string(to_string(d.role));
    j["closed"] = d.closed;
  }
  // Texts at the decision's own time (durations such as "0.2 s after the trip" end there).
  const TimeBase at{time.wall(d.time_ns), d.time_ns};
  j["reason"] = reason_json(supervisor, d.reason, at);
  j["text"] = supervisor.describe(d, at.clock());
  return j;
}

Result<std::unique_ptr<EventWriter>> EventWriter::open(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "a");
  if (file == nullptr) return Error(ErrorCode::io_error, "events file " + path + ": " + std::strerror(errno));
  return std::unique_ptr<EventWriter>(new EventWriter(file));
}

EventWriter::EventWriter(std::FILE* file) : file_(file), thread_([this] { run(); }) {}

EventWriter::~EventWriter() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
  std::fclose(file_);
}

bool EventWriter::write(std::string line) {
  {
    MutexLock lock(mutex_);
    if (queue_.size() >= kMaxQueuedLines) {
      ++dropped_;
      return false;
    }
    line += '\n';
    queue_.push_back(std::move(line));
    ++queued_;
  }
  wake_.notify_one();
  return true;
}

void EventWriter::flush() {
  MutexLock lock(mutex_);
  const std::uint64_t target = queued_;
  while (written_ < target) drained_.wait(lock);
}

std::uint64_t EventWriter::dropped() const {
  MutexLock lock(mutex_);
  return dropped_;
}

void EventWriter::run() {
  MutexLock lock(mutex_);
  while (true) {
    while (!stopping_ && queue_.empty()) wake_.wait(lock);
    std::deque<std::string> batch;
    batch.swap(queue_);
    lock.unlock();
    for (const auto& line : batch) std::fwrite(line.data(), 1, line.size(), file_);
    std::fflush(file_);
    lock.lock();
    written_ += batch.size();
    drained_.notify_all();
    if (stopping_ && queue_.empty()) return;
  }
}

}  // namespace cellguard::edge
