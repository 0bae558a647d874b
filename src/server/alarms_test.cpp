// Webhook alarms against a real local HTTP receiver (cpp-httplib) that fails the first attempts.
#include "server/alarms.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "store/store.h"

namespace cellguard::server {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

bool wait_for(const std::function<bool()>& done, std::chrono::milliseconds timeout = 10s) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

// An HTTP receiver on 127.0.0.1: answers 500 to the first `failures` POSTs, then 200.
class Receiver {
 public:
  explicit Receiver(int failures) : failures_(failures) {
    server_.Post("/hook", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mutex_);
      ++attempts_;
      if (attempts_ <= failures_) {
        res.status = 500;
        return;
      }
      bodies_.push_back(json::parse(req.body, nullptr, false));
      authorization_ = req.get_header_value("Authorization");
      content_type_ = req.get_header_value("Content-Type");
      res.status = 204;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hook"; }
  int attempts() {
    std::lock_guard lock(mutex_);
    return attempts_;
  }
  std::vector<json> bodies() {
    std::lock_guard lock(mutex_);
    return bodies_;
  }
  std::string authorization() {
    std::lock_guard lock(mutex_);
    return authorization_;
  }
  std::string content_type() {
    std::lock_guard lock(mutex_);
    return content_type_;
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mutex_;
  int failures_ = 0, attempts_ = 0;
  std::vector<json> bodies_;
  std::string authorization_, content_type_;
};

// A port on 127.0.0.1 that nothing listens on (bound, then closed): connections are refused.
int closed_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0)
    ADD_FAILURE() << "cannot bind a loopback port";
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

store::Event state_event(store::TimeNs t, const char* from, const char* to) {
  json j{{"t", t / 1e9},
         {"kind", "state"},
         {"from", from},
         {"to", to},
         {"reason",
          {{"rule", "limit_high"},
           {"level", "dangerous"},
           {"quantity", "cell_voltage"},
           {"channel", "BMU01.Cell_3_Voltage"},
           {"module", 1},
           {"measured", 4.26},
           {"threshold", 4.25},
           {"text", "cell voltage 4.26 V > 4.25 V"}}}};
  return {t, "state", j.dump()};
}

TEST(Alarms, AStateChangeReachesTheWebhookAfterFailedAttempts) {
  Receiver receiver(2);
  WebhookConfig c;
  c.url = receiver.url();
  c.bearer_token = "s3cret";
  c.retry_initial = 20ms;
  c.retry_max = 50ms;
  c.timeout = 2s;
  auto alarms = WebhookAlarms::start(c, nullptr);
  ASSERT_TRUE(alarms) << alarms.error().message;
  (*alarms)->offer("rig-01", state_event(1'796'119'200'000'000'000, "warning", "dangerous"));
  ASSERT_TRUE(wait_for([&] { return (*alarms)->stats().delivered == 1; })) << (*alarms)->stats().last_error;
  EXPECT_EQ(receiver.attempts(), 3);
  const auto s = (*alarms)->stats();
  EXPECT_EQ(s.failed_attempts, 2u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_NE(s.last_error.find("HTTP 500"), std::string::npos) << s.last_error;
  ASSERT_EQ(receiver.bodies().size(), 1u);
  const json body = receiver.bodies()[0];
  EXPECT_EQ(body["type"], "state_change");
  EXPECT_EQ(body["edge"], "rig-01");
  EXPECT_EQ(body["t"], 1'796'119'200'000'000'000);
  EXPECT_EQ(body["from"], "warning");
  EXPECT_EQ(body["to"], "dangerous");
  EXPECT_EQ(body["text"], "cell voltage 4.26 V > 4.25 V");
  EXPECT_EQ(body["event"]["reason"]["channel"], "BMU01.Cell_3_Voltage");
  EXPECT_EQ(receiver.authorization(), "Bearer s3cret");
  EXPECT_EQ(receiver.content_type(), "application/json");
}

TEST(Alarms, AlarmsArriveInOrder) {
  Receiver receiver(1);
  WebhookConfig c;
  c.url = receiver.url();
  c.retry_initial = 10ms;
  auto alarms = WebhookAlarms::start(c, nullptr);
  ASSERT_TRUE(alarms);
  for (int i = 0; i < 5; ++i) (*alarms)->offer("rig-01", state_event(1000 + i, "normal", "warning"));
  ASSERT_TRUE(wait_for([&] { return (*alarms)->stats().delivered == 5; }));
  const auto bodies = receiver.bodies();
  ASSERT_EQ(bodies.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bodies[static_cast<std::size_t>(i)]["t"], 1000 + i);
}

TEST(Alarms, OnlyStateChangesAndDangerousEventsAreAlarms) {
  WebhookConfig c;
  EXPECT_TRUE(alarm_payload("e", state_event(1, "normal", "warning"), c));
  const store::Event dangerous{2, "action", R"({"action":"contactors_open","reason":{"level":"dangerous"}})"};
  auto p = alarm_payload("e", dangerous, c);
  ASSERT_TRUE(p);
  EXPECT_EQ((*p)["type"], "dangerous_event");
  EXPECT_EQ((*p)["level"], "dangerous");
  EXPECT_FALSE(alarm_payload("e", {3, "action", R"({"action":"fan_on","reason":{"level":"warning"}})"}, c));
  EXPECT_FALSE(alarm_payload("e", {4, "link", R"({"link":"board","up":true})"}, c));
  EXPECT_FALSE(alarm_payload("e", {5, "action", "not json"}, c));
  c.state_changes = false;
  EXPECT_FALSE(alarm_payload("e", state_event(1, "normal", "warning"), c));
  EXPECT_TRUE(alarm_payload("e", dangerous, c));
}

TEST(Alarms, TheQueueIsBoundedAndEverythingIsCounted) {
  // Nothing listens on this port: every attempt fails fast.
  const int port = closed_port();
  WebhookConfig c;
  c.url = "http://127.0.0.1:" + std::to_string(port) + "/hook";
  c.max_queue = 3;
  c.max_attempts = 2;
  c.retry_initial = 10ms;
  c.timeout = 500ms;
  auto alarms = WebhookAlarms::start(c, nullptr);
  ASSERT_TRUE(alarms);
  for (int i = 0; i < 10; ++i) (*alarms)->offer("rig-01", state_event(i, "normal", "warning"));
  ASSERT_TRUE(wait_for([&] {
    const auto s = (*alarms)->stats();
    return s.given_up + s.dropped == 10 && s.queued == 0;
  })) << (*alarms)->stats().given_up
      << " " << (*alarms)->stats().dropped;
  const auto s = (*alarms)->stats();
  EXPECT_GE(s.dropped, 6u);  // at most the one in flight and three waiting survive
  EXPECT_GE(s.given_up, 1u);
  EXPECT_EQ(s.delivered, 0u);
  EXPECT_EQ(s.failed_attempts, 2 * s.given_up);
  EXPECT_EQ(s.offered, 10u);
}

TEST(Alarms, AWebhookUrlIsCheckedAtStart) {
  WebhookConfig c;
  c.url = "ftp://example.org/x";
  EXPECT_FALSE(WebhookAlarms::start(c, nullptr));
  auto t = parse_webhook_url("https://hooks.example.org:8443/a/b?c=d");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->scheme_host_port, "https://hooks.example.org:8443");
  EXPECT_EQ(t->path, "/a/b?c=d");
  auto bare = parse_webhook_url("http://127.0.0.1:9");
  ASSERT_TRUE(bare);
  EXPECT_EQ(bare->path, "/");
}

TEST(Alarms, StopEndsPromptlyWhileRetrying) {
  const int port = closed_port();
  WebhookConfig c;
  c.url = "http://127.0.0.1:" + std::to_string(port) + "/";
  c.retry_initial = 60s;
  auto alarms = WebhookAlarms::start(c, nullptr);
  ASSERT_TRUE(alarms);
  (*alarms)->offer("rig-01", state_event(1, "normal", "warning"));
  ASSERT_TRUE(wait_for([&] { return (*alarms)->stats().failed_attempts == 1; }));
  const auto t0 = std::chrono::steady_clock::now();
  (*alarms)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s);
  EXPECT_EQ((*alarms)->stats().dropped, 1u);
}

}  // namespace
}  // namespace cellguard::server
