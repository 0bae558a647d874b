// `cellguard server` (server.h).
#include "server/server.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/log_pattern.h"
#include "ipc/service_notify.h"
#include "pki/tls.h"
#include "server/alarms.h"
#include "server/http_api.h"
#include "server/ingest.h"
#include "server/live.h"
#include "server/server_config.h"
#include "store/store.h"

namespace cellguard::server {
namespace {

constexpr std::chrono::seconds kShutdownDeadline{10};

bool split_host_port(const std::string& text, std::string& host, std::uint16_t& port) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    const long p = std::stol(text.substr(colon + 1));
    if (p < 0 || p > 65535) return false;
    port = static_cast<std::uint16_t>(p);
  } catch (...) {
    return false;
  }
  return !host.empty();
}

}  // namespace

int run_server(const ServerOptions& options) {
  auto log = spdlog::stderr_logger_mt("server");
  log->set_pattern(log_pattern("server"));
  const Clock& clock = *options.clock;
  IngestConfig ic;
  ic.clock = &clock;
  if (!split_host_port(options.listen, ic.host, ic.port)) {
    log->error("--listen {}: expected HOST:PORT, e.g. 0.0.0.0:6699", options.listen);
    return 1;
  }
  if (options.data_dir.empty()) {
    log->error("--data: a folder for the store is needed");
    return 1;
  }
  ServerFileConfig file;
  if (!options.config_path.empty()) {
    auto loaded = load_server_config(options.config_path);
    if (!loaded) {
      log->error("{}", loaded.error().message);
      return 1;
    }
    file = std::move(*loaded);
  }
  const std::string http_listen = options.http.empty() ? file.http.listen : options.http;
  const std::string web_root = options.web_root.empty() ? file.http.web_root : options.web_root;
  const double retention_days =
      options.retention_given || !file.retention_days ? options.retention_days : *file.retention_days;
  HttpApiConfig hc;
  hc.clock = &clock;
  if (!http_listen.empty() && !split_host_port(http_listen, hc.host, hc.port)) {
    log->error("--http {}: expected HOST:PORT, e.g. 127.0.0.1:8080", http_listen);
    return 1;
  }
  if (!options.plaintext) {
    pki::TlsFiles files;
    if (!options.pki_dir.empty()) files = pki::TlsFiles::from_ca_dir(options.pki_dir, options.name);
    if (!options.cert.empty()) files.cert = options.cert;
    if (!options.key.empty()) files.key = options.key;
    if (!options.ca.empty()) files.ca = options.ca;
    if (!options.crl.empty()) files.crl = options.crl;
    if (files.cert.empty() || files.key.empty() || files.ca.empty() || files.crl.empty()) {
      log->error(
          "TLS needs --pki-dir (with --name) or --cert, --key, --ca and --crl; --plaintext for loopback "
          "only");
      return 1;
    }
    auto tls = pki::TlsServerContext::create(files);
    if (!tls) {
      log->error("{}", tls.error().message);
      return 1;
    }
    ic.tls = std::shared_ptr<pki::TlsServerContext>(std::move(*tls));
    ic.crl_path = files.crl.string();
  }
  store::SqliteStoreConfig sc;
  sc.path = store::sqlite_store_path(options.data_dir);
  sc.max_age_ns = static_cast<store::TimeNs>(retention_days * 86400.0 * 1e9);
  sc.synchronous = options.synchronous_full ? store::Synchronous::full : store::Synchronous::normal;
  auto opened = store::open_sqlite_store(sc);
  if (!opened) {
    log->error("{}", opened.error().message);
    return 1;
  }
  std::unique_ptr<store::Store> db = std::move(*opened);
  ic.io_threads = options.io_threads;
  ic.log = log;
  // Alarms and the live cache see every commit; the HTTP API reads the cache.
  std::unique_ptr<WebhookAlarms> alarms;
  if (!file.webhook.url.empty()) {
    auto started = WebhookAlarms::start(file.webhook, log);
    if (!started) {
      log->error("{}", started.error().message);
      return 1;
    }
    alarms = std::move(*started);
    log->info("alarms to {}", file.webhook.url);
  }
  LiveCache live(*db, [&alarms](const std::string& edge, const store::Event& event) {
    if (alarms) alarms->offer(edge, event);
  });
  if (auto loaded = live.load(clock.wall_now()); !loaded)
    log->warn("live view not loaded from the store: {}", loaded.error().message);
  ic.on_committed = [&live](const std::string& edge, const std::vector<store::Batch>& batches) {
    live.on_committed(edge, batches);
  };
  auto ingest = IngestServer::start(ic, *db);
  if (!ingest) {
    log->error("{}", ingest.error().message);
    return 1;
  }
  std::unique_ptr<HttpApi> http;
  std::string http_at;
  if (!http_listen.empty()) {
    hc.web_root = web_root;
    hc.require_login = file.http.require_login;
    hc.metrics_public = file.http.metrics_public;
    hc.threads = file.http.threads;
    hc.max_streams = file.http.max_streams;
    hc.allowed_hosts = file.http.allowed_hosts;
    hc.secure_cookie = file.http.behind_tls_proxy;
    hc.auth = file.auth;
    hc.version = CELLGUARD_VERSION;
    hc.log = log;
    auto started = HttpApi::start(hc, *db, **ingest, live, alarms.get());
    if (!started) {
      log->error("{}", started.error().message);
      (*ingest)->stop();
      return 1;
    }
    http = std::move(*started);
    http_at = hc.host + ":" + std::to_string(http->port());
    log->info("HTTP on http://{}{}{}", http_at, http->login_required() ? " (login required)" : "",
              web_root.empty() ? "" : ", dashboard from " + web_root);
  }
  const std::string listen = ic.host + ":" + std::to_string((*ingest)->port());
  log->info("listening on {} ({}), store {}", listen, ic.tls ? "TLS 1.3, mutual" : "plaintext, loopback",
            sc.path);
  if (options.ready_out) {
    nlohmann::json ready{{"ready", true}, {"listen", listen}, {"store", sc.path}, {"tls", ic.tls != nullptr}};
    if (http) ready["http"] = http_at;
    std::fputs((ready.dump() + "\n").c_str(), options.ready_out);
    std::fflush(options.ready_out);
  }

  asio::io_context io;
  ipc::LoopWatchdog service(io);
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](asio::error_code ec, int signal) {
    if (!ec) log->info("signal {}: stopping", signal);
    service.stopping();
    io.stop();
  });
  // systemd (Type=notify): ready once edges can connect and a stop (SIGTERM) is handled.
  service.ready("listening on " + listen + (http ? ", HTTP on " + http_at : std::string()));
  asio::steady_timer stop_timer(io), tick(io);
  if (options.duration_s > 0) {
    stop_timer.expires_after(std::chrono::milliseconds(static_cast<long long>(options.duration_s * 1000)));
    stop_timer.async_wait([&](asio::error_code ec) {
      if (!ec) io.stop();
    });
  }
  // Once a minute: the figures in the log; once an hour: the retention.
  MonoTime last_retention = clock.mono_now();
  std::function<void()> schedule_tick = [&] {
    tick.expires_after(std::chrono::seconds(60));
    tick.async_wait([&](asio::error_code ec) {
      if (ec) return;
      const auto s = (*ingest)->stats();
      log->info(
          "{} sessions, {} batches ({} duplicates), {} samples, {} commits ({} failed), last commit {:.1f} "
          "ms",
          s.sessions, s.batches, s.duplicates, s.samples, s.commits, s.commit_failures, s.last_commit_ms);
      if (sc.max_age_ns > 0 && clock.mono_now() - last_retention > std::chrono::hours(1)) {
        last_retention = clock.mono_now();
        if (auto r = db->apply_retention(clock.wall_now()); !r) log->warn("retention: {}", r.error().message);
      }
      schedule_tick();
    });
  };
  if (sc.max_age_ns > 0) {
    if (auto r = db->apply_retention(clock.wall_now()); !r) log->warn("retention: {}", r.error().message);
  }
  schedule_tick();
  io.run();
  // Stop in order (HTTP first, so nothing reads the store while the ingest drains; alarms last, as
  // the ingest's final commits may raise some), each bounded; a watchdog ends the process should
  // one still hang, so a SIGTERM always exits.
  std::mutex stop_mutex;
  std::condition_variable stop_cv;
  bool stopped = false;
  std::thread watchdog([&] {
    std::unique_lock lock(stop_mutex);
    if (!stop_cv.wait_for(lock, kShutdownDeadline, [&] { return stopped; })) {
      log->error("stopping took longer than {} s: exiting without a clean stop", kShutdownDeadline.count());
      log->flush();
      std::_Exit(3);
    }
  });
  const MonoTime stop_start = clock.mono_now();
  if (http) http->stop();
  (*ingest)->stop();
  if (alarms) alarms->stop();
  {
    std::lock_guard lock(stop_mutex);
    stopped = true;
  }
  stop_cv.notify_all();
  watchdog.join();
  log->info("stopped in {} ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(clock.mono_now() - stop_start).count());
  const auto s = (*ingest)->stats();
  log->info("stopped: {} batches ({} duplicates), {} samples", s.batches, s.duplicates, s.samples);
  return 0;
}

}  // namespace cellguard::server
