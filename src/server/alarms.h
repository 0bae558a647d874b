// Alarms: every state change and every dangerous event of any edge, POSTed as JSON to a webhook.
//
// offer() decides (is_alarm) and queues without blocking; one thread of its own delivers the queue
// in order with cpp-httplib (http:// or https://, optional bearer token). A failed attempt (no
// connection, timeout, a status other than 2xx) is retried with exponential backoff (retry_initial
// doubling up to retry_max) until delivered or max_attempts is spent. The queue is bounded: when
// full, the oldest alarm is dropped (the newest matter most). Everything is counted (stats(), /metrics).
//
// Payload: {"source":"cellguard","type":"state_change"|"dangerous_event","edge":ID,"t":NS,
//           "kind":K,"from":..,"to":..,"level":..,"text":..,"event":{the edge's event JSON}}
//
// Thread safety: all methods may be called from any thread. stop() (or the destructor) ends the
// thread after at most the running attempt's timeout; what is still queued is dropped (counted).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "core/result.h"
#include "core/thread_annotations.h"

namespace cellguard::store {
struct Event;
}
namespace spdlog {
class logger;
}

namespace cellguard::server {

struct WebhookConfig {
  std::string url;                          // "http://host:port/path" or "https://..."; empty: no alarms
  std::string bearer_token;                 // sent as "Authorization: Bearer ..." when not empty
  std::chrono::milliseconds timeout{5000};  // connect and read, per attempt
  std::size_t max_queue = 1000;
  std::chrono::milliseconds retry_initial{1000};
  std::chrono::milliseconds retry_max{60000};
  int max_attempts = 20;  // per alarm; then it is given up (counted)
  bool state_changes = true;
  bool dangerous_events = true;
};

struct AlarmStats {
  std::uint64_t queued = 0;   // waiting now
  std::uint64_t offered = 0;  // alarms accepted into the queue
  std::uint64_t delivered = 0;
  std::uint64_t failed_attempts = 0;
  std::uint64_t dropped = 0;   // queue full, or left at stop
  std::uint64_t given_up = 0;  // max_attempts spent
  std::string last_error;
};

// The webhook payload if `event` of `edge_id` is an alarm under `config`; nullopt otherwise.
// State change: kind "state". Dangerous event: any other event whose reason.level is "dangerous".
std::optional<nlohmann::json> alarm_payload(const std::string& edge_id, const store::Event& event,
                                            const WebhookConfig& config);

// Splits "http://host:port/path?q" into "http://host:port" and "/path?q"; errors name the problem.
struct WebhookTarget {
  std::string scheme_host_port;
  std::string path;
};
Result<WebhookTarget> parse_webhook_url(const std::string& url);

class WebhookAlarms {
 public:
  static Result<std::unique_ptr<WebhookAlarms>> start(WebhookConfig config,
                                                      std::shared_ptr<spdlog::logger> log);
  ~WebhookAlarms();
  WebhookAlarms(const WebhookAlarms&) = delete;
  WebhookAlarms& operator=(const WebhookAlarms&) = delete;

  // Queues the event if it is an alarm. Never blocks on the network.
  void offer(const std::string& edge_id, const store::Event& event);
  // Queues any payload (tests, a future "test alarm" button).
  void post(const nlohmann::json& payload);
  AlarmStats stats() const;
  void stop();

 private:
  WebhookAlarms(WebhookConfig config, WebhookTarget target, std::shared_ptr<spdlog::logger> log);
  void run();
  bool attempt(const std::string& body, std::string& error);

  WebhookConfig config_;
  WebhookTarget target_;
  std::shared_ptr<spdlog::logger> log_;
  mutable Mutex mutex_;
  CondVar wake_;
  std::deque<std::string> queue_ GUARDED_BY(mutex_);  // bodies
  bool stopping_ GUARDED_BY(mutex_) = false;
  bool in_flight_ GUARDED_BY(mutex_) = false;
  AlarmStats stats_ GUARDED_BY(mutex_);
  std::thread thread_;
};

}  // namespace cellguard::server
