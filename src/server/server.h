// `cellguard server`: the process that receives, stores and serves the data of many edges.
// It opens the store (store/store.h, SQLite in the data folder), runs the ingest (ingest.h), the
// live cache (live.h), the HTTP API and dashboard (http_api.h) and the webhook alarms (alarms.h),
// and applies the retention, until SIGINT/SIGTERM. An optional server.toml (server_config.h) holds
// users, alarms, the HTTP listener and the retention; options given on the command line win.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include "core/time.h"

namespace cellguard::server {

struct ServerOptions {
  std::string data_dir;  // the store lives here
  std::string listen = "127.0.0.1:6699";
  // TLS: either a `cellguard pki` folder and the server certificate's name, or the four files.
  std::string pki_dir, name = "server";
  std::string cert, key, ca, crl;
  bool plaintext = false;        // no TLS: loopback addresses only
  double retention_days = 0;     // 0: keep everything
  bool retention_given = false;  // retention_days came from the command line (wins over the file)
  std::string config_path;       // server.toml; empty: none
  std::string http;              // HOST:PORT of the HTTP API; empty: the file's, else none
  std::string web_root;          // the dashboard's files; empty: the file's, else none
  int io_threads = 1;
  double duration_s = 0;                 // > 0: stop after this long (tests, benchmarks)
  bool synchronous_full = true;          // fsync every commit (power-loss safe)
  std::FILE* ready_out = stdout;         // one JSON line when listening
  const Clock* clock = &system_clock();  // the wall clock of retention, the live view, ingest and HTTP
};

// Runs until a signal (or duration_s). Returns the exit code: 0 after a clean stop, 1 if it could not start.
int run_server(const ServerOptions& options);

}  // namespace cellguard::server
