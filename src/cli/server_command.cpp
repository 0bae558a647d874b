// `cellguard server`: receives the streams of many edges over mutual TLS and stores them (server/server.h).
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "cli/commands.h"
#include "server/auth.h"
#include "server/server.h"

namespace cellguard::cli {
namespace {

struct HashArgs {
  std::string user;
  std::uint32_t iterations = server::kDefaultPbkdf2Iterations;
};

// One line from standard input; without echo when it is a terminal.
std::string read_password(const char* prompt) {
  const bool tty = ::isatty(0) == 1;
  termios saved{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt);
    ::tcgetattr(0, &saved);
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    ::tcsetattr(0, TCSANOW, &quiet);
  }
  std::string line;
  std::getline(std::cin, line);
  if (tty) {
    ::tcsetattr(0, TCSANOW, &saved);
    std::fprintf(stderr, "\n");
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

int run_hash_password(const HashArgs& args) {
  std::string password = read_password("password: ");
  if (::isatty(0) == 1 && read_password("again: ") != password) {
    std::fprintf(stderr, "cellguard server hash-password: the passwords differ\n");
    return 1;
  }
  if (password.empty()) {
    std::fprintf(stderr, "cellguard server hash-password: an empty password is not accepted\n");
    return 1;
  }
  auto hash = server::hash_password(password, args.iterations);
  if (!hash) {
    std::fprintf(stderr, "cellguard server hash-password: %s\n", hash.error().message.c_str());
    return 1;
  }
  std::fputs(server::user_toml(args.user, *hash).c_str(), stdout);
  return 0;
}

}  // namespace

void register_server(CLI::App& app, Action& action) {
  auto options = std::make_shared<server::ServerOptions>();
  CLI::App* cmd = app.add_subcommand(
      "server",
      "Receive the streams of many edges (TLS 1.3, mutual authentication) and store them durably.\n"
      "Each edge is known by its certificate's name; batches are acknowledged only after the commit.\n"
      "With --http it serves the HTTP API, /metrics and the dashboard (docs/http-api.md).\n"
      "When listening, one JSON line goes to stdout: "
      "{\"ready\":true,\"listen\":\"HOST:PORT\",\"http\":...}.\n"
      "Example: cellguard server --data /var/lib/cellguard --listen 0.0.0.0:6699 --pki-dir "
      "/etc/cellguard/pki \\\n"
      "           --http 127.0.0.1:8080 --web-root /usr/share/cellguard/web --config "
      "/etc/cellguard/server.toml");
  cmd->add_option("--data", options->data_dir, "folder of the store (created); required to run the server");
  cmd->add_option("--listen", options->listen, "HOST:PORT to accept edges on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_option("--pki-dir", options->pki_dir,
                  "a `cellguard pki` folder (ca.crt, crl.pem, issued/NAME.crt/.key)");
  cmd->add_option("--name", options->name, "the server certificate's name in --pki-dir")
      ->capture_default_str();
  cmd->add_option("--cert", options->cert, "server certificate (PEM), instead of --pki-dir");
  cmd->add_option("--key", options->key, "server key (PEM)");
  cmd->add_option("--ca", options->ca, "CA certificate that signs the edges' certificates (PEM)");
  cmd->add_option("--crl", options->crl, "the CA's revocation list (PEM); reloaded when it changes");
  cmd->add_flag("--plaintext", options->plaintext,
                "no TLS and no authentication: only on a loopback address");
  cmd->add_option("--retention-days", options->retention_days,
                  "delete data older than this (0: keep everything)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--io-threads", options->io_threads, "network threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--duration", options->duration_s, "stop after this many seconds (tests)");
  cmd->add_option(
      "--config", options->config_path,
      "server.toml: users, webhook alarms, HTTP listener, retention (see data/server/server.toml)");
  cmd->add_option(
      "--http", options->http,
      "HOST:PORT of the HTTP API and dashboard, e.g. 127.0.0.1:8080 (port 0: any); beyond loopback a "
      "login is required");
  cmd->add_option("--web-root", options->web_root, "folder of the dashboard's files (the web/ build output)");

  auto hash = std::make_shared<HashArgs>();
  CLI::App* hash_cmd = cmd->add_subcommand(
      "hash-password",
      "Read a password from standard input and print a [[users]] entry for server.toml\n"
      "(PBKDF2-HMAC-SHA256, random salt). Example: cellguard server hash-password --user lab >> server.toml");
  hash_cmd->add_option("--user", hash->user, "the user's name")->required();
  hash_cmd->add_option("--iterations", hash->iterations, "PBKDF2 iterations")
      ->check(CLI::Range(server::kMinPbkdf2Iterations, server::kMaxPbkdf2Iterations))
      ->capture_default_str();
  hash_cmd->callback([hash, &action] { action = [hash] { return run_hash_password(*hash); }; });
  cmd->callback([options, cmd, hash_cmd, &action] {
    if (hash_cmd->parsed()) return;
    options->retention_given = cmd->count("--retention-days") > 0;
    action = [options] { return server::run_server(*options); };
  });
}

}  // namespace cellguard::cli
