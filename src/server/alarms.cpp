// Webhook alarms (alarms.h).
#include "server/alarms.h"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "store/store.h"

namespace cellguard::server {

std::optional<nlohmann::json> alarm_payload(const std::string& edge_id, const store::Event& event,
                                            const WebhookConfig& config) {
  nlohmann::json parsed = nlohmann::json::parse(event.json, nullptr, false);
  if (!parsed.is_object()) parsed = nlohmann::json::object();
  const nlohmann::json* reason =
      parsed.contains("reason") && parsed["reason"].is_object() ? &parsed["reason"] : nullptr;
  const std::string level = reason ? reason->value("level", "") : "";
  std::string type;
  if (event.kind == "state") {
    if (!config.state_changes) return std::nullopt;
    type = "state_change";
  } else if (level == "dangerous") {
    if (!config.dangerous_events) return std::nullopt;
    type = "dangerous_event";
  } else {
    return std::nullopt;
  }
  nlohmann::json out{
      {"source", "cellguard"}, {"type", type}, {"edge", edge_id}, {"t", event.time_ns}, {"kind", event.kind}};
  if (parsed.contains("from")) out["from"] = parsed["from"];
  if (parsed.contains("to")) out["to"] = parsed["to"];
  if (!level.empty()) out["level"] = level;
  if (reason && reason->contains("text")) out["text"] = (*reason)["text"];
  out["event"] = std::move(parsed);
  return out;
}

Result<WebhookTarget> parse_webhook_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  if (scheme_end == std::string::npos)
    return Error(ErrorCode::invalid_argument,
                 "webhook url \"" + url + "\": expected http://HOST[:PORT]/PATH");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https")
    return Error(ErrorCode::invalid_argument,
                 "webhook url \"" + url + "\": the scheme must be http or https");
  const auto path_start = url.find_first_of("/?", scheme_end + 3);
  WebhookTarget t;
  t.scheme_host_port = url.substr(0, path_start);
  t.path = path_start == std::string::npos ? "/" : url.substr(path_start);
  if (!t.path.empty() && t.path.front() == '?') t.path = "/" + t.path;
  if (t.scheme_host_port.size() <= scheme_end + 3)
    return Error(ErrorCode::invalid_argument, "webhook url \"" + url + "\": no host");
  return t;
}

WebhookAlarms::WebhookAlarms(WebhookConfig config, WebhookTarget target, std::shared_ptr<spdlog::logger> log)
    : config_(std::move(config)), target_(std::move(target)), log_(std::move(log)) {}

Result<std::unique_ptr<WebhookAlarms>> WebhookAlarms::start(WebhookConfig config,
                                                            std::shared_ptr<spdlog::logger> log) {
  auto target = parse_webhook_url(config.url);
  if (!target) return target.error();
  if (config.max_queue == 0) config.max_queue = 1;
  if (config.max_attempts < 1) config.max_attempts = 1;
  std::unique_ptr<WebhookAlarms> alarms(new WebhookAlarms(std::move(config), std::move(*target),
                                                          log ? std::move(log) : spdlog::default_logger()));
  alarms->thread_ = std::thread([raw = alarms.get()] { raw->run(); });
  return alarms;
}

WebhookAlarms::~WebhookAlarms() { stop(); }

void WebhookAlarms::offer(const std::string& edge_id, const store::Event& event) {
  if (auto payload = alarm_payload(edge_id, event, config_)) post(*payload);
}

void WebhookAlarms::post(const nlohmann::json& payload) {
  std::string body = payload.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  {
    MutexLock lock(mutex_);
    if (stopping_) return;
    if (queue_.size() >= config_.max_queue) {
      queue_.pop_front();
      ++stats_.dropped;
    }
    queue_.push_back(std::move(body));
    ++stats_.offered;
  }
  wake_.notify_all();
}

AlarmStats WebhookAlarms::stats() const {
  MutexLock lock(mutex_);
  AlarmStats s = stats_;
  s.queued = queue_.size() + (in_flight_ ? 1 : 0);
  return s;
}

void WebhookAlarms::stop() {
  {
    MutexLock lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  MutexLock lock(mutex_);
  stats_.dropped += queue_.size();
  queue_.clear();
}

bool WebhookAlarms::attempt(const std::string& body, std::string& error) {
  httplib::Client client(target_.scheme_host_port);
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(config_.timeout);
  const auto usec = std::chrono::duration_cast<std::chrono::microseconds>(config_.timeout - seconds);
  client.set_connection_timeout(seconds.count(), usec.count());
  client.set_read_timeout(seconds.count(), usec.count());
  client.set_write_timeout(seconds.count(), usec.count());
  httplib::Headers headers{{"User-Agent", "cellguard-server"}};
  if (!config_.bearer_token.empty()) headers.emplace("Authorization", "Bearer " + config_.bearer_token);
  auto response = client.Post(target_.path, headers, body, "application/json");
  if (!response) {
    error = "webhook " + config_.url + ": " + httplib::to_string(response.error());
    return false;
  }
  if (response->status < 200 || response->status >= 300) {
    error = "webhook " + config_.url + ": HTTP " + std::to_string(response->status);
    return false;
  }
  return true;
}

void WebhookAlarms::run() {
  MutexLock lock(mutex_);
  while (true) {
    while (!stopping_ && queue_.empty()) wake_.wait(lock);
    if (stopping_) return;
    // The alarm in flight leaves the queue: the bound applies to those waiting behind it.
    const std::string body = std::move(queue_.front());
    queue_.pop_front();
    in_flight_ = true;
    auto delay = config_.retry_initial;
    int attempts = 0;
    bool done = false;
    while (!done) {
      lock.unlock();
      std::string error;
      const bool ok = attempt(body, error);
      lock.lock();
      ++attempts;
      if (ok) {
        ++stats_.delivered;
        done = true;
      } else {
        ++stats_.failed_attempts;
        stats_.last_error = error;
        if (attempts >= config_.max_attempts) {
          ++stats_.given_up;
          log_->error("alarm given up after {} attempts: {}", attempts, error);
          done = true;
        } else {
          log_->warn("alarm not delivered (attempt {}), retry in {} ms: {}", attempts, delay.count(), error);
          const auto retry_at = std::chrono::steady_clock::now() + delay;
          while (!stopping_ && wake_.wait_until(lock, retry_at) == std::cv_status::no_timeout) {
          }
          if (stopping_) {
            ++stats_.dropped;
            in_flight_ = false;
            return;
          }
          delay = std::min(config_.retry_max, delay * 2);
        }
      }
    }
    in_flight_ = false;
  }
}

}  // namespace cellguard::server
