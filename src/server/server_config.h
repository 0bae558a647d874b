// The server's optional configuration file (`cellguard server --config server.toml`, toml++):
// the HTTP listener, users, webhook alarms, the store's retention. data/server/server.toml
// documents every key. Command-line options given explicitly win over the file.
//
// Parsing reports every problem with file:line:column and the key (unknown keys too, so a typo
// does not silently disable the login or an alarm). Pure; no I/O except load_server_config().
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "server/alarms.h"
#include "server/auth.h"

namespace cellguard::server {

struct HttpSettings {
  std::string listen;             // "HOST:PORT"; empty: no HTTP listener
  std::string web_root;           // the dashboard's files; empty: API only
  bool require_login = false;     // a login even on a loopback address (always needed beyond loopback)
  bool metrics_public = false;    // /metrics without a login (for a Prometheus scraper)
  int threads = 64;               // HTTP worker threads (each live stream holds one)
  int max_streams = 0;            // live streams at once (503 beyond); 0: threads / 4
  bool behind_tls_proxy = false;  // a TLS reverse proxy in front: the session cookie is `Secure`
  std::vector<std::string> allowed_hosts;  // Host header names beside IP literals and localhost
};

struct ServerFileConfig {
  HttpSettings http;
  AuthConfig auth;                       // users, session lifetime, login rate limit
  WebhookConfig webhook;                 // url empty: no alarms
  std::optional<double> retention_days;  // [store] retention_days
};

// `origin` names the text in messages (the file's path).
Result<ServerFileConfig> parse_server_config(std::string_view text, const std::string& origin);
Result<ServerFileConfig> load_server_config(const std::string& path);

}  // namespace cellguard::server
