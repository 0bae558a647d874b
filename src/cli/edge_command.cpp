// `cellguard edge`: the controller (edge/edge.h), `edge check-config`, and the operator's client
// commands `edge status|reset|start|schedule start|stop|stop` over the edge's control socket.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/device_access.h"
#include "edge/config.h"
#include "edge/edge.h"
#include "ipc/line_socket.h"

namespace cellguard::cli {
namespace {

using nlohmann::json;

struct EdgeArgs {
  std::string config;
  edge::EndpointOverrides overrides;
  std::string events;
  std::string socket;
  double duration_s = 0;
};

struct ClientArgs {
  std::string socket;
  std::string config;  // to find the socket from the configuration
  bool json_output = false;
  std::string action;  // schedule start|stop
};

// Loads, overrides and checks; prints every problem. Returns false if there are any.
bool load_checked(const std::string& path, const edge::EndpointOverrides& overrides, edge::EdgeConfig& config,
                  const char* who) {
  edge::ConfigCheck check = edge::load_edge_config(path, config);
  if (check.ok()) check = edge::apply_overrides(config, overrides);
  if (check.ok()) check = edge::check_edge_config(config);
  if (!check.ok()) {
    std::fprintf(stderr, "cellguard %s: %zu problem%s in %s:\n%s\n", who, check.problems.size(),
                 check.problems.size() == 1 ? "" : "s", path.c_str(), check.to_string().c_str());
    return false;
  }
  return true;
}

int run_edge_command(const EdgeArgs& args) {
  if (args.config.empty()) {
    std::fprintf(stderr, "cellguard edge: give --config FILE (see data/edge/rig.toml)\n");
    return 2;
  }
  edge::EdgeConfig config;
  if (!load_checked(args.config, args.overrides, config, "edge")) return 2;
  edge::EdgeRunOptions options;
  options.events_path = args.events;
  options.socket_path = args.socket;
  options.duration_s = args.duration_s;
  options.overrides = args.overrides;
  return edge::run_edge(std::move(config), options);
}

// Where the packaged service runs (packaging/systemd/cellguard-edge.service): its configuration, its
// RuntimeDirectory= (the control socket) and its user with the unit's SupplementaryGroups=.
constexpr const char* kServiceConfig = "/etc/cellguard/edge.toml";
constexpr const char* kServiceRuntimeDir = "/run/cellguard";
constexpr const char* kServiceUser = "cellguard";
const std::vector<std::string> kServiceGroups = {"dialout", "gpio"};

struct CheckArgs {
  std::string path;
  edge::EndpointOverrides overrides;
  std::string service_user = kServiceUser;
};

int run_check_config(const CheckArgs& args) {
  const std::string& path = args.path;
  edge::EdgeConfig config;
  if (!load_checked(path, args.overrides, config, "edge check-config")) return 1;
  std::printf("%s: ok\nsha256 %s\n", config.source_path.c_str(), config.sha256.c_str());
  std::printf("can %s, dbc %s, %d modules expected, %d cells each\n", config.can.url.c_str(),
              config.can.dbc_path.c_str(), config.modules.expected, config.modules.cells);
  std::printf("board %s, inverter %s, schedule %s\n",
              config.board.enabled ? config.board.link.device.c_str() : "off",
              config.inverter.enabled ? config.inverter.url.c_str() : "off",
              config.schedule.path.empty() ? "none" : config.schedule.path.c_str());
  // Devices: as the service will see them (its user and the unit's groups), else as we see them.
  auto users = lookup_service_user(args.service_user, kServiceGroups);
  if (users.empty()) {
    const std::string me = std::to_string(::geteuid());
    std::printf("devices: user %s does not exist (the package makes it); checked for uid %s instead\n",
                args.service_user.c_str(), me.c_str());
    ServiceUser self{"uid " + me, ::geteuid(), {}};
    const int count = ::getgroups(0, nullptr);
    self.groups.resize(static_cast<std::size_t>(std::max(count, 0)));
    if (count > 0) ::getgroups(count, self.groups.data());
    self.groups.push_back(::getegid());
    users.push_back(std::move(self));
  }
  const auto warnings = device_access_warnings(config, users.front());
  for (const std::string& w : warnings) std::printf("warning: %s\n", w.c_str());
  if (warnings.empty()) std::printf("devices: accessible to %s\n", users.front().name.c_str());
  return 0;
}

bool exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}

// The control socket of the edge configured in `config_path`: its [operator] socket, else the default
// name in our default directory or, if it is not there, in the service's (a service's edge has
// $RUNTIME_DIRECTORY, our shell has not).
std::string socket_from_config(const std::string& config_path, bool& found) {
  edge::EdgeConfig config;
  found = edge::load_edge_config(config_path, config).ok();
  if (!found) return "";
  if (!config.operator_interface.socket_path.empty()) return config.operator_interface.socket_path;
  const std::string name = "cellguard-edge-" + config.edge_id + ".sock";
  const std::string ours = ipc::default_socket_path(name);
  const std::string service = std::string(kServiceRuntimeDir) + "/" + name;
  return !exists(ours) && exists(service) ? service : ours;
}

// --socket, $CELLGUARD_EDGE_CONTROL, --config; without any: an edge of ours in the default directory,
// else the packaged service's (its configuration /etc/cellguard/edge.toml, else the one edge socket in
// /run/cellguard).
std::string socket_path(const ClientArgs& args) {
  if (!args.socket.empty()) return args.socket;
  if (const char* env = std::getenv("CELLGUARD_EDGE_CONTROL"); env != nullptr && *env != '\0') return env;
  bool found = false;
  if (!args.config.empty()) {
    if (std::string path = socket_from_config(args.config, found); found) return path;
  }
  std::string fallback = ipc::default_socket_path("cellguard-edge-edge.sock");
  if (!args.config.empty() || exists(fallback)) return fallback;
  if (exists(kServiceConfig)) {
    if (std::string path = socket_from_config(kServiceConfig, found); found && exists(path)) return path;
  }
  std::vector<std::string> sockets;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(kServiceRuntimeDir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("cellguard-edge-", 0) == 0 && entry.path().extension() == ".sock")
      sockets.push_back(entry.path().string());
  }
  if (sockets.size() == 1) return sockets.front();
  if (sockets.size() > 1)
    std::fprintf(stderr, "cellguard edge: %zu edges have sockets in %s; choose one with --socket\n",
                 sockets.size(), kServiceRuntimeDir);
  return fallback;
}

// Sends one request; prints the answer (JSON or the error). Exit 0 if it says ok.
int request(const ClientArgs& args, const json& req, json& answer) {
  const std::string path = socket_path(args);
  auto response = ipc::request_line(path, req.dump());
  if (!response) {
    std::fprintf(stderr,
                 "cellguard edge: %s (is the edge running? --socket, --config or $CELLGUARD_EDGE_CONTROL)\n",
                 response.error().message.c_str());
    return 1;
  }
  answer = json::parse(*response, nullptr, false);
  if (!answer.is_object()) {
    std::fprintf(stderr, "cellguard edge: unreadable answer from %s\n", path.c_str());
    return 1;
  }
  if (!answer.value("ok", false)) {
    std::fprintf(stderr, "cellguard edge: %s\n", answer.value("error", std::string("refused")).c_str());
    return 1;
  }
  return 0;
}

std::string number(const json& j, const char* key, int decimals = 1) {
  if (!j.contains(key) || !j[key].is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", decimals, j[key].get<double>());
  return text;
}

// A millisecond field as seconds, e.g. "12.3".
std::string seconds_text(const json& j, const char* key) {
  if (!j.contains(key) || !j[key].is_number()) return "-";
  char text[64];
  std::snprintf(text, sizeof text, "%.1f", j[key].get<double>() / 1000.0);
  return text;
}

void print_status(const json& s) {
  const std::string reason =
      s["state_reason"].value("rule", "none") == "none" ? "" : s["state_reason"].value("text", std::string());
  std::printf("state      %s%s%s%s\n", s.value("state", "?").c_str(), reason.empty() ? "" : " (",
              reason.c_str(), reason.empty() ? "" : ")");
  for (const auto& c : s["causes"]) std::printf("cause      %s\n", c.value("text", std::string()).c_str());
  const auto& m = s["modules"];
  std::printf("modules    %d of %d expected:", m.value("found", 0), m.value("expected", 0));
  for (const auto& module : m["list"])
    std::printf(
        " %d(%s ms%s)", module.value("id", 0), number(module, "age_ms", 0).c_str(),
        module.value("level", "normal") == "normal" ? "" : (", " + module.value("level", "")).c_str());
  std::printf("\n");
  const auto& can = s["can"];
  std::printf(
      "can        %s %s, %llu frames, %llu unknown, %llu malformed, %llu error frames, %llu dropped\n",
      can.value("url", "").c_str(), can.value("connected", false) ? "connected" : "DISCONNECTED",
      can.value("frames", 0ull), can.value("unknown", 0ull), can.value("malformed", 0ull),
      can.value("error_frames", 0ull), can.value("dropped", 0ull));
  std::printf(
      "controller %s, %llu bus-off, %llu error passive, %llu restarts (%llu requested), %llu kernel queue "
      "overflows\n",
      can.value("controller_state", "?").c_str(), can.value("bus_off", 0ull),
      can.value("error_passive", 0ull), can.value("restarts", 0ull), can.value("restart_requests", 0ull),
      can.value("rx_queue_overflows", 0ull));
  if (s.contains("board")) {
    const auto& b = s["board"];
    std::printf("board      %s %s, %llu lines (%llu invalid)", b.value("device", "").c_str(),
                b.value("connected", false) ? "connected" : "DISCONNECTED", b.value("lines_valid", 0ull),
                b.value("lines_invalid", 0ull));
    if (b.contains("last"))
      std::printf(", T1 %s °C, T2 %s °C, pressure %s", number(b["last"], "temp1_c").c_str(),
                  number(b["last"], "temp2_c").c_str(), number(b["last"], "pressure").c_str());
    std::printf("\n");
  }
  if (s.contains("inverter")) {
    const auto& i = s["inverter"];
    std::printf(
        "inverter   %s %s, mode %s %s, %llu timeouts, %llu CRC errors, %llu malformed answers, "
        "%d failures in a row (%d reads, %d heartbeats)",
        i.value("url", "").c_str(), i.value("phase", "").c_str(), i.value("mode", "").c_str(),
        number(i, "setpoint").c_str(), i.value("timeouts", 0ull), i.value("crc_errors", 0ull),
        i.value("bad_answers", 0ull), i.value("consecutive_failures", 0), i.value("read_failures", 0),
        i.value("heartbeat_failures", 0));
    if (i.contains("last")) {
      // Stale readings are shown as what they are: values from the past, with their age.
      if (i["last"].value("stale", false))
        std::printf(", readings STALE: last valid %s s ago (%s V, %s A then)",
                    seconds_text(i["last"], "age_ms").c_str(), number(i["last"], "battery_voltage_v").c_str(),
                    number(i["last"], "dc_link_current_a").c_str());
      else
        std::printf(", %s V, %s A", number(i["last"], "battery_voltage_v").c_str(),
                    number(i["last"], "dc_link_current_a").c_str());
    } else if (i.value("readings_stale", false)) {
      std::printf(", no valid reading yet");
    }
    if (i.contains("heartbeat_age_ms"))
      std::printf(", heartbeat acknowledged %s ms ago", number(i, "heartbeat_age_ms", 0).c_str());
    std::printf("\n");
  }
  // The contactors as far as the edge can know: "commanded closed at ... (no read-back from the board)".
  const std::string contactors = s.contains("contactors") && s["contactors"].is_object()
                                     ? s["contactors"].value("text", std::string("unknown"))
                                     : std::string("unknown");
  std::printf("contactors %s, cooling %s, precharge %s\n", contactors.c_str(),
              s.value("cooling_on", false) ? "on" : "off", s["precharge"].value("phase", "").c_str());
  if (s.contains("schedule")) {
    const auto& sc = s["schedule"];
    std::printf("schedule   %s: %s, step %llu cycle %llu setpoint %s, readback %llu ok %llu failed\n",
                sc.value("file", "").c_str(), sc.value("running", false) ? "running" : "stopped",
                sc.value("step", 0ull), sc.value("cycle", 0ull), number(sc, "setpoint").c_str(),
                sc.value("readback_ok", 0ull), sc.value("readback_failed", 0ull));
  }
  if (s.contains("recording")) {
    const auto& r = s["recording"];
    std::printf("recording  %s: %llu records, %llu dropped, %llu bytes%s%s\n", r.value("path", "").c_str(),
                r.value("records_committed", 0ull), r.value("records_dropped", 0ull),
                r.value("file_bytes", 0ull),
                r.value("last_error", "").empty() ? "" : ", error: ", r.value("last_error", "").c_str());
  }
  if (s.contains("uplink")) {
    const auto& u = s["uplink"];
    const std::string error = u.value("last_error", "");
    std::printf(
        "uplink     %s %s, %llu batches acknowledged (last seq %llu), backlog %llu, %llu records lost, "
        "%llu connects, %llu failed%s%s\n",
        u.value("server", "").c_str(), u.value("connected", false) ? "connected" : "disconnected",
        u.value("batches_acked", 0ull), u.value("last_acked_seq", 0ull), u.value("backlog_batches", 0ull),
        u.value("lost_records", 0ull), u.value("connects", 0ull), u.value("connect_failures", 0ull),
        error.empty() ? "" : ", last error: ", error.c_str());
  }
  const auto& l = s["latency"]["frame_handling"];
  std::printf("latency    frame handling p50 %s µs, p99.9 %s µs, max %s µs over %llu frames\n",
              number(l, "p50_us", 0).c_str(), number(l, "p999_us", 0).c_str(), number(l, "max_us", 0).c_str(),
              l.value("count", 0ull));
  const auto& a = s["latency"]["frame_to_action"];
  if (a.value("count", 0ull) > 0)
    std::printf("latency    frame to action p50 %s µs, max %s µs over %llu actions\n",
                number(a, "p50_us", 0).c_str(), number(a, "max_us", 0).c_str(), a.value("count", 0ull));
}

void add_override_options(CLI::App* cmd, edge::EndpointOverrides& o) {
  cmd->add_option("--can", o.can,
                  "CAN bus: socketcan:can0 | socketcand://HOST:PORT/can0 | inproc:NAME | replay:LOG?speed=K");
  cmd->add_option("--board", o.board, "Sensor board serial device, e.g. /dev/ttyACM0 (none: no board)");
  cmd->add_option(
      "--inverter", o.inverter,
      "Inverter: rtu:/dev/ttyUSB0?baud=19200&slave=2 | tcp:HOST:PORT?slave=2 (none: no inverter)");
  cmd->add_option("--gpio", o.gpio,
                  "Drive the outputs through this GPIO chip instead of the board, e.g. gpiochip0");
}

void add_client_options(CLI::App* cmd, ClientArgs& a) {
  cmd->add_option("--socket", a.socket,
                  "The edge's control socket (default: $CELLGUARD_EDGE_CONTROL, from --config, else the "
                  "edge in $XDG_RUNTIME_DIR/cellguard or the service's in /run/cellguard)");
  cmd->add_option("--config", a.config, "The edge's configuration, to find its control socket");
}

}  // namespace

void register_edge(CLI::App& app, Action& action) {
  auto args = std::make_shared<EdgeArgs>();
  CLI::App* cmd =
      app.add_subcommand("edge", "Run the controller next to the battery, or talk to a running one");
  cmd->add_option("--config", args->config, "Configuration (TOML), e.g. data/edge/rig.toml");
  add_override_options(cmd, args->overrides);
  cmd->add_option("--events", args->events, "Append every event to this file as a JSON line");
  cmd->add_option("--socket", args->socket,
                  "Control socket path (default: [operator] socket, else cellguard-edge-<id>.sock in "
                  "$RUNTIME_DIRECTORY (systemd: /run/cellguard), $XDG_RUNTIME_DIR/cellguard, /run/cellguard "
                  "as root or /tmp/cellguard-<uid>)");
  cmd->add_option("--duration", args->duration_s, "Stop after this many seconds (0: run until signalled)")
      ->check(CLI::NonNegativeNumber);

  auto check_args = std::make_shared<CheckArgs>();
  CLI::App* check = cmd->add_subcommand(
      "check-config",
      "Validate a configuration completely and print its hash; warn about devices (serial ports, GPIO "
      "chip, CAN interface) the service user cannot use");
  check->add_option("file", check_args->path, "Configuration (TOML)")->required();
  add_override_options(check, check_args->overrides);
  check
      ->add_option(
          "--service-user", check_args->service_user,
          "Check device access for this user, with the groups dialout and gpio the packaged unit adds")
      ->capture_default_str();

  auto client = std::make_shared<ClientArgs>();
  CLI::App* status = cmd->add_subcommand("status", "State with reasons, modules, links, inverter, schedule");
  add_client_options(status, *client);
  status->add_flag("--json", client->json_output, "Print the raw JSON status");
  CLI::App* reset = cmd->add_subcommand("reset", "Leave SAFE (refused while a dangerous cause remains)");
  add_client_options(reset, *client);
  CLI::App* start = cmd->add_subcommand("start", "Precharge and close the main contactors");
  add_client_options(start, *client);
  CLI::App* sched = cmd->add_subcommand("schedule", "Start or stop the configured charge/discharge schedule");
  add_client_options(sched, *client);
  sched->add_option("action", client->action, "start | stop")
      ->required()
      ->check(CLI::IsMember({"start", "stop"}));
  CLI::App* stop = cmd->add_subcommand("stop",
                                       "Stop the edge safely, as a trip does: inverter off, then the "
                                       "contactors open once |pack current| is below "
                                       "[safety] contactor_open_current_a or after contactor_max_delay_ms, "
                                       "then the edge exits (SIGTERM and SIGINT "
                                       "do the same)");
  add_client_options(stop, *client);

  // The parent's callback runs after the child's: a client subcommand must not start an edge.
  cmd->final_callback([=, &action] {
    if (check->parsed()) {
      action = [check_args] { return run_check_config(*check_args); };
    } else if (status->parsed()) {
      action = [client] {
        json answer;
        if (int rc = request(*client, {{"cmd", "status"}}, answer); rc != 0) return rc;
        if (client->json_output)
          std::printf("%s\n", answer["status"].dump(2).c_str());
        else
          print_status(answer["status"]);
        return 0;
      };
    } else if (reset->parsed() || start->parsed()) {
      const bool is_reset = reset->parsed();
      action = [client, is_reset] {
        json answer;
        if (int rc = request(*client, {{"cmd", is_reset ? "reset" : "start"}}, answer); rc != 0) return rc;
        std::printf("%s\n", is_reset ? ("reset: state " + answer.value("state", std::string("?"))).c_str()
                                     : "start: precharging");
        return 0;
      };
    } else if (stop->parsed()) {
      action = [client] {
        json answer;
        if (int rc = request(*client, {{"cmd", "stop"}}, answer); rc != 0) return rc;
        std::printf(
            "stop: inverter off, contactors open once |I| < %.1f A (at most %.1f s), then the edge exits\n",
            answer.value("contactor_open_current_a", 0.0), answer.value("max_delay_s", 0.0));
        return 0;
      };
    } else if (sched->parsed()) {
      action = [client] {
        json answer;
        if (int rc = request(*client, {{"cmd", "schedule"}, {"action", client->action}}, answer); rc != 0)
          return rc;
        std::printf("schedule %s: ok%s\n", client->action.c_str(),
                    answer.value("precharging", false) ? " (precharging first)" : "");
        return 0;
      };
    } else {
      action = [args] { return run_edge_command(*args); };
    }
  });
}

}  // namespace cellguard::cli
