#include "sim/simulator.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <deque>

#include "can/bus.h"
#include "can/socketcand.h"
#include "core/log_pattern.h"
#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "ipc/line_socket.h"
#include "sim/canopen_modules.h"
#include "sim/rig_dbc.h"
#include "sim/scenario.h"

namespace cellguard::sim {
namespace {

using Clock = std::chrono::steady_clock;

// Linux CAN error frame classes (linux/can/error.h): protocol violation, bus error.
constexpr std::uint32_t kCanErrProtocol = 0x08;
constexpr std::uint32_t kCanErrBusError = 0x80;
constexpr std::uint8_t kCanErrProtocolForm = 0x02;
constexpr double kMaxErrorFramesPerTick = 5000;

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = std::make_shared<spdlog::logger>("sim", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern(log_pattern("sim"));
  return logger;
}

class Simulator {
 public:
  Simulator(SimOptions options, std::FILE* ready_out)
      : options_(std::move(options)),
        ready_out_(ready_out),
        log_(make_logger()),
        signals_(io_, SIGINT, SIGTERM),
        tick_timer_(io_),
        cyclic_timer_(io_),
        devices_(std::move(options_.devices)) {}

  int run() {
    if (Result<void> started = start(); !started) {
      log_->error("{}", started.error().message);
      shutdown();
      return 1;
    }
    io_.run();
    shutdown();
    log_->info("stopped at simulated t = {:.1f} s", pack_ ? pack_->time_s() : 0.0);
    return 0;
  }

 private:
  Result<void> start() {
    if (!(options_.speed > 0) || options_.speed > 1e6)
      return Error(ErrorCode::invalid_argument, "--speed must be in (0, 1e6]");
    if (!(options_.tick_ms >= 1)) return Error(ErrorCode::invalid_argument, "tick must be at least 1 ms");
    Result<dbc::ParseOutput> parsed = options_.dbc_path.empty()
                                          ? dbc::parse_dbc(builtin_rig_dbc(), "cellguard-rig.dbc (built in)")
                                          : dbc::load_dbc(options_.dbc_path);
    if (!parsed) return parsed.error();
    codec_ = std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
    pack_ = std::make_unique<PackModel>(options_.pack);
    if (pack_->modules().empty()) return Error(ErrorCode::invalid_argument, "no module ids in 1..15");
    Result<std::unique_ptr<CanopenModules>> modules =
        CanopenModules::create(codec_, *pack_, options_.pack.seed);
    if (!modules) return modules.error();
    modules_ = std::move(modules.value());
    faults_ = std::make_unique<FaultDispatcher>(*pack_, *modules_);
    control_ = std::make_unique<ControlHandler>(*pack_, *modules_, *faults_);

    ready_ = {{"ready", true}};
    for (auto& device : devices_)
      if (Result<void> ok = device->start(io_, *pack_, *faults_, *control_, ready_); !ok) return ok;
    if (Result<void> ok = load_scenario(); !ok) return ok;
    if (Result<void> ok = start_bus(); !ok) return ok;
    if (Result<void> ok = start_control(); !ok) return ok;

    signals_.async_wait([this](asio::error_code ec, int signal) {
      if (ec) return;
      log_->info("signal {}: stopping", signal);
      stop();
    });
    last_tick_ = Clock::now();
    next_tick_ = last_tick_;
    schedule_tick();
    if (options_.cyclic_ms > 0) schedule_cyclic(Clock::now());
    ready_["modules"] = nlohmann::json::array();
    for (const ModuleState& module : pack_->modules()) ready_["modules"].push_back(module.node_id);
    ready_["speed"] = options_.speed;
    // The ready line goes out when the bus carries frames (socketcand: the server listens).
    bus_->on_ready([this] { announce_ready(); });
    return success();
  }

  Result<void> load_scenario() {
    if (options_.scenario_path.empty()) return success();
    Result<std::string> text = read_file(options_.scenario_path);
    if (!text) return text.error();
    Result<std::vector<ScenarioStep>> steps = parse_scenario(*text, options_.scenario_path);
    if (!steps) return steps.error();
    for (std::size_t i = 0; i < steps->size(); ++i)
      if (Result<void> ok = faults_->validate((*steps)[i].command); !ok)
        return Error(ok.error().code, options_.scenario_path + ": step at " +
                                          std::to_string((*steps)[i].at_s) + " s: " + ok.error().message);
    log_->info("scenario {}: {} steps", options_.scenario_path, steps->size());
    scenario_ = std::make_unique<ScenarioPlayer>(std::move(steps.value()));
    return success();
  }

  Result<void> start_bus() {
    std::string url = options_.can_url;
    if (url.empty()) {
      const std::string inproc = "cellguard-sim-" + std::to_string(::getpid());
      can::SocketcandServerOptions server_options;
      server_options.inproc_bus = inproc;
      server_options.channel = options_.can_channel;
      server_options.listen_address = options_.can_listen_address;
      server_options.port = options_.can_port;
      Result<std::unique_ptr<can::Bus>> bus = can::open_bus(io_, "inproc:" + inproc);
      if (!bus) return bus.error();
      bus_ = std::move(bus.value());
      Result<std::unique_ptr<can::SocketcandServer>> server =
          can::SocketcandServer::start(io_, server_options);
      if (!server) return server.error();
      server_ = std::move(server.value());
      ready_["can"] = "socketcand://" + options_.can_listen_address + ":" + std::to_string(server_->port()) +
                      "/" + options_.can_channel;
    } else {
      Result<std::unique_ptr<can::Bus>> bus = can::open_bus(io_, url);
      if (!bus) return bus.error();
      bus_ = std::move(bus.value());
      ready_["can"] = url;
    }
    bus_->on_receive([this](const can::Frame& frame) {
      out_.clear();
      modules_->on_frame(frame, *pack_, out_);
      send_all();
    });
    bus_->on_error([this](const Error& error) { log_->warn("bus: {}", error.message); });
    return success();
  }

  Result<void> start_control() {
    ipc::LineServerOptions o;
    o.path = options_.control_path.empty()
                 ? ipc::default_socket_path("cellguard-sim-" + std::to_string(::getpid()) + ".sock")
                 : options_.control_path;
    o.max_line_bytes = kMaxControlLineBytes;
    o.overlong_response = nlohmann::json{{"ok", false}, {"error", "request longer than 4096 bytes"}}.dump();
    auto server = ipc::LineServer::start(
        io_, o, [this](std::string_view line) { return control_->handle(line, pack_->time_s()); });
    if (!server) return server.error();
    control_server_ = std::move(server.value());
    control_path_ = control_server_->path();
    ready_["control"] = control_path_;
    return success();
  }

  void announce_ready() {
    const std::string line = ready_.dump() + "\n";
    std::fputs(line.c_str(), ready_out_);
    std::fflush(ready_out_);
    log_->info("ready: {} modules, CAN at {}, control at {}", pack_->modules().size(),
               ready_["can"].get<std::string>(), control_path_);
  }

  void schedule_tick() {
    next_tick_ += std::chrono::microseconds(static_cast<std::int64_t>(options_.tick_ms * 1000));
    tick_timer_.expires_at(next_tick_);
    tick_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      tick();
      if (!stopping_) schedule_tick();
    });
  }

  void tick() {
    // The clock is read once per pass; everything below uses this value.
    const Clock::time_point now = Clock::now();
    const double dt_s = std::chrono::duration<double>(now - last_tick_).count() * options_.speed;
    last_tick_ = now;
    if (now - next_tick_ > std::chrono::seconds(1)) next_tick_ = now;  // after a stall, do not race
    pack_->step(dt_s);
    for (auto& device : devices_) device->after_step();
    const double now_s = pack_->time_s();
    if (scenario_) {
      for (const ScenarioStep& step : scenario_->due(now_s)) {
        if (Result<void> ok = faults_->apply(step.command, now_s); !ok) {
          log_->warn("scenario step at {} s: {}", step.at_s, ok.error().message);
        } else {
          log_->info("scenario: {} at t = {:.1f} s", step.command.kind, now_s);
        }
      }
    }
    out_.clear();
    modules_->append_emergencies(*pack_, out_);
    send_all();
    send_error_storm(dt_s, now_s);
    if (options_.duration_s > 0 && now_s >= options_.duration_s) stop();
  }

  void send_error_storm(double dt_s, double now_s) {
    if (!faults_->storm().active(now_s)) {
      storm_carry_ = 0;
      return;
    }
    storm_carry_ = std::min(storm_carry_ + faults_->storm().rate_per_s * dt_s, kMaxErrorFramesPerTick);
    can::Frame error;
    error.error = true;
    error.id = kCanErrProtocol | kCanErrBusError;
    error.size = 8;
    error.data[2] = kCanErrProtocolForm;
    for (; storm_carry_ >= 1; storm_carry_ -= 1) bus_->send(error).ok();
  }

  void schedule_cyclic(Clock::time_point at) {
    const double period_wall_ms = std::max(0.1, options_.cyclic_ms / options_.speed);
    const Clock::time_point next =
        at + std::chrono::microseconds(static_cast<std::int64_t>(period_wall_ms * 1000));
    cyclic_timer_.expires_at(next);
    cyclic_timer_.async_wait([this, next](asio::error_code ec) {
      if (ec || stopping_) return;
      out_.clear();
      modules_->append_pdos(*pack_, out_);
      send_all();
      schedule_cyclic(next);
    });
  }

  void send_all() {
    for (const can::Frame& frame : out_) {
      if (Result<void> sent = bus_->send(frame); !sent) {
        if (send_failures_++ % 1000 == 0) log_->warn("bus send: {}", sent.error().message);
      }
    }
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    io_.stop();
  }

  void shutdown() {
    asio::error_code ignored;
    signals_.cancel(ignored);
    tick_timer_.cancel();
    cyclic_timer_.cancel();
    if (control_server_) control_server_->close();
    for (auto& device : devices_) device->stop();
    if (server_) server_->close();
    if (bus_) bus_->close();
  }

  SimOptions options_;
  std::FILE* ready_out_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer tick_timer_;
  asio::steady_timer cyclic_timer_;
  std::unique_ptr<ipc::LineServer> control_server_;
  std::vector<std::unique_ptr<SimDevice>> devices_;  // after io_: destroyed before it
  std::string control_path_;

  std::shared_ptr<const dbc::DatabaseCodec> codec_;
  std::unique_ptr<PackModel> pack_;
  std::unique_ptr<CanopenModules> modules_;
  std::unique_ptr<FaultDispatcher> faults_;
  std::unique_ptr<ControlHandler> control_;
  std::unique_ptr<ScenarioPlayer> scenario_;
  std::unique_ptr<can::Bus> bus_;
  std::unique_ptr<can::SocketcandServer> server_;
  nlohmann::json ready_;
  std::vector<can::Frame> out_;
  Clock::time_point last_tick_;
  Clock::time_point next_tick_;
  double storm_carry_ = 0;
  std::uint64_t send_failures_ = 0;
  bool stopping_ = false;
};

}  // namespace

int run_simulator(SimOptions options, std::FILE* ready_out) {
  Simulator simulator(std::move(options), ready_out);
  return simulator.run();
}

}  // namespace cellguard::sim
