// server.toml: the documented example, located problems, unknown keys.
#include "server/server_config.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace cellguard::server {
namespace {

std::string source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir ? dir : ".";
}

TEST(ServerConfig, TheDocumentedExampleLoads) {
  auto c = load_server_config(source_dir() + "/data/server/server.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http.listen, "127.0.0.1:8080");
  EXPECT_FALSE(c->http.require_login);
  EXPECT_TRUE(c->auth.users.empty());  // the example user is commented out
  EXPECT_TRUE(c->webhook.url.empty());
  EXPECT_EQ(c->retention_days, 0.0);
}

TEST(ServerConfig, TheDocumentedExampleUserWorksWhenUncommented) {
  std::ifstream in(source_dir() + "/data/server/server.toml");
  std::string text, line;
  while (std::getline(in, line)) {
    for (const char* key : {"# [[users]]", "# name = ", "# salt = ", "# iterations = ", "# hash = "})
      if (line.rfind(key, 0) == 0) line = line.substr(2);
    text += line + "\n";
  }
  auto c = parse_server_config(text, "uncommented");
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_EQ(c->auth.users.size(), 1u);
  EXPECT_EQ(c->auth.users[0].name, "lab");
  EXPECT_TRUE(verify_password("change-me", c->auth.users[0].password));
}

TEST(ServerConfig, EveryKeyIsRead) {
  const char* text = R"(
[http]
listen = "0.0.0.0:8443"
web_root = "/srv/web"
require_login = true
metrics_public = true
threads = 16
session_hours = 2
login_max_failures = 3
login_window_s = 30
login_lockout_s = 120

[alarms]
webhook_url = "https://hooks.example.org/cellguard?x=1"
bearer_token = "t0k"
timeout_s = 2.5
queue = 50
retry_initial_s = 0.5
retry_max_s = 30
max_attempts = 7
state_changes = false
dangerous_events = true

[store]
retention_days = 90
)";
  auto c = parse_server_config(text, "t.toml");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http.listen, "0.0.0.0:8443");
  EXPECT_EQ(c->http.web_root, "/srv/web");
  EXPECT_TRUE(c->http.require_login);
  EXPECT_TRUE(c->http.metrics_public);
  EXPECT_EQ(c->http.threads, 16);
  EXPECT_EQ(c->auth.session_lifetime, std::chrono::seconds(7200));
  EXPECT_EQ(c->auth.max_failures, 3);
  EXPECT_EQ(c->auth.failure_window, std::chrono::seconds(30));
  EXPECT_EQ(c->auth.lockout, std::chrono::seconds(120));
  EXPECT_EQ(c->webhook.url, "https://hooks.example.org/cellguard?x=1");
  EXPECT_EQ(c->webhook.bearer_token, "t0k");
  EXPECT_EQ(c->webhook.timeout, std::chrono::milliseconds(2500));
  EXPECT_EQ(c->webhook.max_queue, 50u);
  EXPECT_EQ(c->webhook.retry_initial, std::chrono::milliseconds(500));
  EXPECT_EQ(c->webhook.retry_max, std::chrono::milliseconds(30000));
  EXPECT_EQ(c->webhook.max_attempts, 7);
  EXPECT_FALSE(c->webhook.state_changes);
  EXPECT_EQ(c->retention_days, 90.0);
}

TEST(ServerConfig, ProblemsNameFileLineAndKey) {
  auto c = parse_server_config(
      "[http]\nlisten = 8080\nrequier_login = true\n\n[alarms]\nwebhook_url = \"ftp://x\"\n", "s.toml");
  ASSERT_FALSE(c);
  const std::string& m = c.error().message;
  EXPECT_NE(m.find("s.toml:2:10: http.listen: expected a string"), std::string::npos) << m;
  EXPECT_NE(m.find("s.toml:3:17: http.requier_login: unknown key"), std::string::npos) << m;
  EXPECT_NE(m.find("alarms.webhook_url"), std::string::npos) << m;
}

TEST(ServerConfig, AUserNeedsAValidHash) {
  auto c = parse_server_config("[[users]]\nname = \"a\"\nsalt = \"00\"\niterations = 5\nhash = \"xyz\"\n",
                               "u.toml");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("users[0].iterations: must be between"), std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("users[0].hash"), std::string::npos) << c.error().message;
}

TEST(ServerConfig, MalformedTomlIsAnErrorNotACrash) {
  auto c = parse_server_config("[http\nlisten = ", "bad.toml");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message.rfind("bad.toml:1:", 0), 0u) << c.error().message;
  EXPECT_FALSE(load_server_config("/nonexistent/server.toml"));
}

}  // namespace
}  // namespace cellguard::server

namespace cellguard::server {
namespace {

TEST(ServerConfig, HostsProxyAndStreamLimitsOfTheHttpListener) {
  auto c = parse_server_config(
      "[http]\nallowed_hosts = [\"Rig.Example.org\", \"[::1]:8080\"]\nbehind_tls_proxy = true\nmax_streams = "
      "8\n",
      "t");
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c->http.allowed_hosts, (std::vector<std::string>{"rig.example.org", "::1"}));
  EXPECT_TRUE(c->http.behind_tls_proxy);
  EXPECT_EQ(c->http.max_streams, 8);
  auto bad = parse_server_config("[http]\nallowed_hosts = [\"a b\", 3]\n", "t");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message.find("t:2:18: http.allowed_hosts"), std::string::npos) << bad.error().message;
}

}  // namespace
}  // namespace cellguard::server
