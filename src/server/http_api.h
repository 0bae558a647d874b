// The HTTP API of `cellguard server` (docs/http-api.md): JSON under /api/v1/, Server-Sent Events
// at /api/v1/stream, Prometheus text at /metrics, and the dashboard's static files. cpp-httplib.
//
// Data: live views (edges, latest values, modules, inverter, board, the stream) come from the
// LiveCache and the IngestServer's status, never from SQLite; history (series, events, export)
// from the Store. A login (auth.h) is required for everything but /api/v1/health, login/logout/
// session and the static files when login_required(host, require_login) says so.
//
// Threads: cpp-httplib's pool of `threads` workers plus the listener thread; a connection holds a
// worker. Budgets (docs/security.md): a request's head and body must arrive within
// `request_timeout` of the connection's accept or previous response (a total, not per read); at
// most threads / 4 connections may wait for a request head at once and threads / 2 come from one
// address (the oldest waiting one is closed to make room); at most `max_streams` live streams
// (503 beyond, at once); bodies at most 64 KiB, chunked or not; an export at most
// `export_timeout`, cancelled when its client goes away. stop() closes every connection and
// joins everything within about a second; the objects passed to start() must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/result.h"
#include "core/time.h"
#include "server/auth.h"

namespace cellguard::store {
class Store;
}
namespace spdlog {
class logger;
}

namespace cellguard::server {

class IngestServer;
class LiveCache;
class WebhookAlarms;

struct HttpApiConfig {
  std::string host = "127.0.0.1";
  const Clock* clock = &system_clock();  // "now" of queries, ages and server_time_ns; never null
  std::uint16_t port = 8080;             // 0: any free port
  std::string web_root;                  // the dashboard's files; empty: none
  bool require_login = false;
  bool metrics_public = false;
  int threads = 64;
  int max_streams = 0;  // 0: threads / 4
  std::chrono::milliseconds request_timeout{10'000};
  std::chrono::milliseconds export_timeout{120'000};
  std::vector<std::string> allowed_hosts;  // Host names beside IP literals and localhost
  bool secure_cookie = false;              // TLS in front (behind_tls_proxy): the cookie is `Secure`
  AuthConfig auth;
  // Short enough that the dashboard sees a silent edge within 2 s (its stale threshold is 1.5 s).
  std::chrono::milliseconds latest_interval{250};  // stream: `latest` at most this often (when changed)
  std::chrono::milliseconds edges_interval{500};   // stream: `edges` this often
  std::string version = "0.1.0";
  std::string temp_dir;  // exports are written here before the download; empty: the system's
  std::shared_ptr<spdlog::logger> log;
};

class HttpApi {
 public:
  // Binds and serves. `alarms` may be null (no webhook).
  static Result<std::unique_ptr<HttpApi>> start(HttpApiConfig config, store::Store& store,
                                                const IngestServer& ingest, LiveCache& live,
                                                const WebhookAlarms* alarms);
  ~HttpApi();
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  std::uint16_t port() const;
  bool login_required() const;
  void stop();

  struct Impl;

 private:
  explicit HttpApi(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::server
