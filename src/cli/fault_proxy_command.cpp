// `cellguard fault-proxy`: the TCP fault proxy between edges and the server for the fault tests
// (faultproxy/fault_proxy.h), and `cellguard fault-proxy ctl`: its control client.
#include <asio.hpp>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "faultproxy/fault_proxy.h"
#include "ipc/line_socket.h"

namespace cellguard::cli {
namespace {

struct FaultProxyArgs {
  std::string listen = "127.0.0.1:0";
  std::string target;
  std::uint64_t seed = 1;
  std::string mode = "random";
  std::string cut_every = "2s..8s";
  std::string stall = "1s..5s";
  std::string outage = "1s..5s";
  std::string delay = "0";
  double reset_prob = 0.2;
  std::string kinds = "cut,reset,stall,blackhole,refuse";
  std::string scope = "all";
  double duration_s = 0;
  std::string control;
  std::size_t max_connections = 4096;
  std::size_t max_delayed_kib = 1024;
};

struct CtlArgs {
  std::string socket;
  std::vector<std::string> words;
};

int usage_error(const std::string& message) {
  std::fprintf(stderr, "cellguard fault-proxy: %s\n", message.c_str());
  return 2;
}

Result<faultproxy::ProxyOptions> options_of(const FaultProxyArgs& args) {
  using faultproxy::parse_duration_range;
  faultproxy::ProxyOptions options;
  options.listen = args.listen;
  options.target = args.target;
  options.seed = args.seed;
  options.control_path = args.control;
  options.max_connections = args.max_connections;
  options.max_delayed_bytes = args.max_delayed_kib * 1024;
  Result<faultproxy::Mode> mode = faultproxy::parse_mode(args.mode);
  if (!mode) return Error(ErrorCode::invalid_argument, "--mode: " + mode.error().message);
  options.mode = *mode;
  struct RangeOption {
    const char* name;
    const std::string& text;
    faultproxy::DurationRange& range;
  };
  for (const RangeOption& r : {RangeOption{"--cut-every", args.cut_every, options.plan.interval},
                               RangeOption{"--stall", args.stall, options.plan.stall},
                               RangeOption{"--outage", args.outage, options.plan.outage},
                               RangeOption{"--delay", args.delay, options.delay}}) {
    Result<faultproxy::DurationRange> parsed = parse_duration_range(r.text);
    if (!parsed)
      return Error(ErrorCode::invalid_argument, std::string(r.name) + ": " + parsed.error().message);
    r.range = *parsed;
  }
  options.plan.reset_prob = args.reset_prob;
  options.plan.kinds.clear();
  std::stringstream kinds(args.kinds);
  std::string kind;
  while (std::getline(kinds, kind, ',')) {
    Result<faultproxy::FaultKind> parsed = faultproxy::parse_fault_kind(kind);
    if (!parsed) return Error(ErrorCode::invalid_argument, "--kinds: " + parsed.error().message);
    options.plan.kinds.push_back(*parsed);
  }
  if (Result<void> valid = faultproxy::validate(options.plan); !valid)
    return Error(ErrorCode::invalid_argument, valid.error().message);
  if (args.scope == "all")
    options.scope = faultproxy::Scope::all;
  else if (args.scope == "one")
    options.scope = faultproxy::Scope::one;
  else
    return Error(ErrorCode::invalid_argument, "--scope: 'all' or 'one', not '" + args.scope + "'");
  return options;
}

int run_fault_proxy(const FaultProxyArgs& args) {
  if (args.target.empty()) return usage_error("give --target HOST:PORT (the server)");
  Result<faultproxy::ProxyOptions> options = options_of(args);
  if (!options) return usage_error(options.error().message);
  options->log = [](std::string_view line) {
    std::string text(line);
    text += '\n';
    std::fputs(text.c_str(), stderr);
  };
  asio::io_context io;
  Result<std::unique_ptr<faultproxy::FaultProxy>> started =
      faultproxy::FaultProxy::start(io, std::move(*options));
  if (!started) {
    std::fprintf(stderr, "cellguard fault-proxy: %s\n", started.error().message.c_str());
    return started.error().code == ErrorCode::invalid_argument ? 2 : 1;
  }
  faultproxy::FaultProxy& proxy = **started;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  asio::steady_timer end(io);
  auto stop = [&] {
    proxy.close();
    asio::error_code ignored;
    signals.cancel(ignored);
    end.cancel();
    io.stop();
  };
  signals.async_wait([&](asio::error_code ec, int) {
    if (!ec) stop();
  });
  if (args.duration_s > 0) {
    end.expires_after(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::duration<double>(args.duration_s)));
    end.async_wait([&](asio::error_code ec) {
      if (!ec) stop();
    });
  }
  nlohmann::json ready{{"ready", true},
                       {"listen", proxy.listen_address()},
                       {"target", args.target},
                       {"mode", args.mode},
                       {"seed", args.seed}};
  if (!proxy.control_path().empty()) ready["control"] = proxy.control_path();
  std::fputs((ready.dump() + "\n").c_str(), stdout);
  std::fflush(stdout);
  io.run();
  const std::string done = "{\"done\":true,\"stats\":" + faultproxy::to_json(proxy.stats()) + "}\n";
  std::fputs(done.c_str(), stdout);
  std::fflush(stdout);
  return 0;
}

// "cut", "stall ms=3000 dir=up", "mode pass", "stats" or a JSON object → one request line.
Result<std::string> request_of(const std::vector<std::string>& words) {
  if (words.empty())
    return Error(ErrorCode::invalid_argument, "nothing to send (stats, cut, stall ms=3000, mode pass, ...)");
  if (words[0].starts_with("{")) return words[0];
  nlohmann::json request{{"cmd", words[0]}};
  for (std::size_t i = 1; i < words.size(); ++i) {
    const std::string& word = words[i];
    const std::size_t eq = word.find('=');
    if (words[0] == "mode" && eq == std::string::npos) {
      request["mode"] = word;
      continue;
    }
    if (eq == std::string::npos || eq == 0)
      return Error(ErrorCode::invalid_argument, "expected key=value, got '" + word + "'");
    const std::string key = word.substr(0, eq);
    const std::string value = word.substr(eq + 1);
    char* end = nullptr;
    const double number = std::strtod(value.c_str(), &end);
    if (!value.empty() && *end == '\0') {
      if (number >= 0 && number == static_cast<double>(static_cast<std::uint64_t>(number)))
        request[key] = static_cast<std::uint64_t>(number);
      else
        request[key] = number;
    } else {
      request[key] = value;
    }
  }
  return request.dump();
}

int run_ctl(const CtlArgs& args) {
  Result<std::string> request = request_of(args.words);
  if (!request) {
    std::fprintf(stderr, "cellguard fault-proxy ctl: %s\n", request.error().message.c_str());
    return 2;
  }
  Result<std::string> answer = ipc::request_line(args.socket, *request);
  if (!answer) {
    std::fprintf(stderr, "cellguard fault-proxy ctl: %s\n", answer.error().message.c_str());
    return 1;
  }
  std::fputs((*answer + "\n").c_str(), stdout);
  const nlohmann::json parsed = nlohmann::json::parse(*answer, nullptr, false);
  return parsed.is_object() && parsed.value("ok", false) ? 0 : 1;
}

}  // namespace

void register_fault_proxy(CLI::App& app, Action& action) {
  auto args = std::make_shared<FaultProxyArgs>();
  CLI::App* cmd = app.add_subcommand(
      "fault-proxy",
      "TCP proxy that cuts, resets, stalls, delays, blackholes and refuses connections (fault tests)");
  cmd->footer(
      "Faults come at random times from the seeded plan (--mode random) or from the control socket.\n"
      "  cut: FIN both sides; reset: RST both sides; stall: stop one or both directions, sockets open;\n"
      "  delay: latency on every chunk, order kept; blackhole: new connections accepted, never connected\n"
      "  (open ones stall); refuse: new connections closed at once (open ones cut).\n"
      "Ready line on stdout: {\"ready\":true,\"listen\":\"127.0.0.1:41234\",...}; faults and connections as\n"
      "JSON lines on stderr; on exit {\"done\":true,\"stats\":{...}} on stdout.\n"
      "Durations: 250ms, 2s, 1.5s, ranges 2s..8s, 0..200ms.\n"
      "Control: cellguard fault-proxy ctl --socket PATH stats | cut [conn=N] | reset | stall ms=3000 "
      "[dir=up]\n"
      "  | delay ms=50 [max_ms=150] [for_ms=10000] | blackhole ms=5000 | refuse ms=5000 | mode pass|random");
  cmd->add_option("--listen", args->listen, "Listen address HOST:PORT (port 0: any free port)");
  cmd->add_option("--target", args->target, "The server, HOST:PORT");
  cmd->add_option("--seed", args->seed, "Seed of the fault plan and the delays (same seed, same plan)");
  cmd->add_option("--mode", args->mode, "random: faults from the plan; pass: relay faithfully until told")
      ->check(CLI::IsMember({"random", "pass"}));
  cmd->add_option("--cut-every", args->cut_every, "Time between planned faults, a range");
  cmd->add_option("--stall", args->stall, "How long a planned stall lasts, a range");
  cmd->add_option("--outage", args->outage, "How long a planned blackhole or refuse period lasts, a range");
  cmd->add_option("--delay", args->delay, "Random mode: latency added to every chunk, a range (0: none)");
  cmd->add_option("--reset-prob", args->reset_prob, "Chance that a planned fault is a reset")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--kinds", args->kinds, "Planned fault kinds, comma-separated");
  cmd->add_option("--scope", args->scope, "A planned fault hits all connections or one")
      ->check(CLI::IsMember({"all", "one"}));
  cmd->add_option("--duration", args->duration_s, "Stop after this many seconds (0: run until signalled)");
  cmd->add_option("--control", args->control, "Control socket path (JSON lines); none by default");
  cmd->add_option("--max-connections", args->max_connections, "Refuse connections beyond this many");
  cmd->add_option("--max-delayed-kib", args->max_delayed_kib,
                  "Bytes held for delays per direction of a connection, KiB");

  auto ctl_args = std::make_shared<CtlArgs>();
  CLI::App* ctl = cmd->add_subcommand("ctl", "Send a request to a running fault proxy's control socket");
  ctl->add_option("--socket", ctl_args->socket, "Control socket (the \"control\" of the ready line)")
      ->required();
  ctl->add_option("request", ctl_args->words,
                  "stats | cut | reset | stall ms=N | delay ms=N | mode pass | JSON")
      ->required();
  cmd->final_callback([args, ctl, ctl_args, &action] {
    if (ctl->parsed())
      action = [ctl_args] { return run_ctl(*ctl_args); };
    else
      action = [args] { return run_fault_proxy(*args); };
  });
}

}  // namespace cellguard::cli
