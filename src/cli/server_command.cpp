// `cellguard server`: receives the streams of many edges over mutual TLS and stores them (server/server.h).
#include "cli/commands.h"
#include "server/server.h"

namespace cellguard::cli {

void register_server(CLI::App& app, Action& action) {
  auto options = std::make_shared<server::ServerOptions>();
  CLI::App* cmd = app.add_subcommand(
      "server",
      "Receive the streams of many edges (TLS 1.3, mutual authentication) and store them durably.\n"
      "Each edge is known by its certificate's name; batches are acknowledged only after the commit.\n"
      "When listening, one JSON line goes to stdout: {\"ready\":true,\"listen\":\"HOST:PORT\",...}.\n"
      "Example: cellguard server --data /var/lib/cellguard --listen 0.0.0.0:6699 --pki-dir /etc/cellguard/pki");
  cmd->add_option("--data", options->data_dir, "folder of the store (created)")->required();
  cmd->add_option("--listen", options->listen, "HOST:PORT to accept edges on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--pki-dir", options->pki_dir, "a `cellguard pki` folder (ca.crt, crl.pem, issued/NAME.crt/.key)");
  cmd->add_option("--name", options->name, "the server certificate's name in --pki-dir")->capture_default_str();
  cmd->add_option("--cert", options->cert, "server certificate (PEM), instead of --pki-dir");
  cmd->add_option("--key", options->key, "server key (PEM)");
  cmd->add_option("--ca", options->ca, "CA certificate that signs the edges' certificates (PEM)");
  cmd->add_option("--crl", options->crl, "the CA's revocation list (PEM); reloaded when it changes");
  cmd->add_flag("--plaintext", options->plaintext, "no TLS and no authentication: only on a loopback address");
  cmd->add_option("--retention-days", options->retention_days, "delete data older than this (0: keep everything)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--io-threads", options->io_threads, "network threads")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--duration", options->duration_s, "stop after this many seconds (tests)");
  cmd->callback([options, &action] { action = [options] { return server::run_server(*options); }; });
}

}  // namespace cellguard::cli
