// `cellguard server`: the process that receives, stores and (issue 6) serves the data of many edges.
// It opens the store (store/store.h, SQLite in the data folder), runs the ingest (ingest.h) and
// applies the retention, until SIGINT/SIGTERM.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace cellguard::server {

struct ServerOptions {
  std::string data_dir;                 // the store lives here
  std::string listen = "127.0.0.1:6699";
  // TLS: either a `cellguard pki` folder and the server certificate's name, or the four files.
  std::string pki_dir, name = "server";
  std::string cert, key, ca, crl;
  bool plaintext = false;               // no TLS: loopback addresses only
  double retention_days = 0;            // 0: keep everything
  int io_threads = 1;
  double duration_s = 0;                // > 0: stop after this long (tests, benchmarks)
  bool synchronous_full = true;         // fsync every commit (power-loss safe)
  std::FILE* ready_out = stdout;        // one JSON line when listening
};

// Runs until a signal (or duration_s). Returns the exit code: 0 after a clean stop, 1 if it could not start.
int run_server(const ServerOptions& options);

}  // namespace cellguard::server
