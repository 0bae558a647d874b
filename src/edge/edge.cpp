// The edge's wiring and loop: opens the parts (supervisor, DBC and module map, recording, uplink,
// events, board, outputs, inverter, schedule, operator socket, CAN), routes every input to the
// supervisor and every decision through the actuator (actuator.h) before it is reported, diffs the
// active causes into limit events, and stops safely. The parts with logic of their own live beside
// it: canopen/ (SYNC, SDO), actuator.h, schedule_driver.h, status.h, rig_csv_row.h.
#include "edge/edge.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <span>

#include "can/bus.h"
#include "can/error_frame.h"
#include "canopen/canopen.h"
#include "core/log_pattern.h"
#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "devices/board_link.h"
#include "devices/channels.h"
#include "devices/inverter_client.h"
#include "devices/outputs.h"
#include "edge/actuator.h"
#include "edge/edge_loop.h"
#include "edge/edge_time.h"
#include "edge/events.h"
#include "edge/handler_guard.h"
#include "edge/latency.h"
#include "edge/module_map.h"
#include "edge/rate_watch.h"
#include "edge/rig_csv_row.h"
#include "edge/schedule_driver.h"
#include "edge/status.h"
#include "ipc/line_socket.h"
#include "ipc/service_notify.h"
#include "pki/tls.h"
#include "recorder/recorder.h"
#include "recorder/rig_csv.h"
#include "safety/safety.h"
#include "schedule/schedule.h"
#include "uplink/sender.h"

namespace cellguard::edge {
namespace {

// Non-CAN channels of the recording, with their units, in the order they are registered: the
// devices' measurements (devices/channels.h), the state, the board as the rig logged it (its CSV's
// Ardu_* columns: the ADC counts), the rig's violation flags, the CAN controller's counters (issue 13
// item 5, recorded when they change; the server's /metrics shows every "can.*_total" channel per edge).
std::vector<std::pair<std::string, std::string>> sample_channels() {
  std::vector<std::pair<std::string, std::string>> channels;
  for (const auto& c : devices::kBoardChannels) channels.emplace_back(c.record, c.unit);
  for (const auto& c : devices::kPowerChannels) channels.emplace_back(c.record, c.unit);
  channels.emplace_back("safety.state", "");
  for (const auto& c : devices::kBoardChannels) channels.emplace_back(c.raw_record, "count");
  channels.emplace_back(recorder::kRigFlagsChannel, "");
  for (const char* counter :
       {"can.error_frames_total", "can.bus_off_total", "can.error_passive_total", "can.error_warning_total",
        "can.restarts_total", "can.restart_requests_total", "can.rx_queue_overflows_total"}) {
    channels.emplace_back(counter, "");
  }
  return channels;
}

using nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

constexpr Duration kBusReopenDelayNs = 1 * kSecond;
constexpr Duration kStopMarginNs = 500 * kMs;         // a stop leaves at the latest max delay + this
constexpr Duration kBoardWriteGraceNs = 300 * kMs;    // the board writes the opening before the link closes
constexpr Duration kDiscoveryWindowNs = 1 * kSecond;  // traffic watched before the first module report
constexpr Duration kNoModuleReportNs = 5 * kSecond;   // "no module yet" repeated this often
constexpr Duration kInverterOffWaitNs = 1 * kSecond;  // leaving: how long a last mode-off is waited for
// An error-frame storm: this many error frames within the window is a warning (a healthy bus has
// none; a few come with a connector being plugged), repeated at most once per kErrorStormRepeatNs.
constexpr std::uint64_t kErrorStormThreshold = 100;
constexpr Duration kErrorStormWindowNs = 1 * kSecond;
constexpr Duration kErrorStormRepeatNs = 10 * kSecond;
// Reports of repeated problems (malformed elements, failed handlers): the first few, then every Nth.
constexpr std::uint64_t kReportFirst = 10;
constexpr std::uint64_t kReportEvery = 1000;
bool worth_reporting(std::uint64_t count) { return count <= kReportFirst || count % kReportEvery == 0; }

std::string hex(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "%x", value);
  return text;
}

// stderr, every message escaped (core/text.h): whatever a peer put into a text, the log gets one
// line of printable UTF-8 per message, never a raw control byte (terminal escapes, fake lines).
class EscapingStderrSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    const std::string escaped = escape_untrusted({msg.payload.data(), msg.payload.size()}, 8192);
    spdlog::details::log_msg safe = msg;
    safe.payload = spdlog::string_view_t(escaped.data(), escaped.size());
    spdlog::memory_buf_t formatted;
    formatter_->format(safe, formatted);
    std::fwrite(formatted.data(), 1, formatted.size(), stderr);
  }
  void flush_() override { std::fflush(stderr); }
};

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = std::make_shared<spdlog::logger>("edge", std::make_shared<EscapingStderrSink>());
  logger->set_pattern(log_pattern("edge"));
  return logger;
}

std::string ids_text(const std::vector<int>& ids) {
  std::string text;
  for (int id : ids) {
    if (!text.empty()) text += ',';
    text += std::to_string(id);
  }
  return text;
}

canopen::SyncConfig sync_config(const CanSection& can) {
  return {can.sync_id, can.sync_period_ns.count(), static_cast<std::uint8_t>(can.sync_counter ? 240 : 0)};
}

}  // namespace

class EdgeLoop::Edge {
 public:
  Edge(asio::io_context& io, EdgeConfig config, EdgeRunOptions options, EdgeDevices devices)
      : config_(std::move(config)),
        options_(std::move(options)),
        log_(make_logger()),
        io_(io),
        signals_(io_),
        sync_timer_(io_),
        deadline_timer_(io_),
        bus_timer_(io_),
        report_timer_(io_),
        stop_timer_(io_),
        csv_timer_(io_),
        sync_(sync_config(config_.can)),
        injected_(std::move(devices)),
        schedule_(io_, config_.schedule, nullptr, system_clock(), log_,
                  {[this](json event) { emit(std::move(event)); },
                   [this] {
                     execute(supervisor_->on_start_request(mono_now()));
                     after_inputs();
                   }}),
        actuator_(
            nullptr, nullptr,
            {[this] { schedule_.on_nudge_begin(); }, [this](MonoTime now) { schedule_.on_nudge_end(now); }},
            system_clock()) {}

  void run() {
    // No exception ends the loop: a handler that throws is a bug, reported with what it was given
    // (guard() below, for the handlers the edge installs) or here, for anything else; then the edge
    // goes on supervising.
    run_guarded(
        io_, [this](std::string_view what) { handler_failed("event loop", what, ""); },
        [this] { resume_after_failure(); });
  }

  // ---- start-up --------------------------------------------------------------------------------

  // Opens everything; a failure is logged here, with the edge's logger, and returned.
  Result<void> start() {
    Result<void> opened = open_all();
    if (!opened) log_->error("{}", opened.error().message);
    return opened;
  }

 private:
  Result<void> open_all() {
    started_mono_ = mono_now();
    log_->info("configuration {} sha256 {}", config_.source_path, config_.sha256);
    config_.safety.inverter_expected = config_.inverter.enabled;  // freshness rules only with an inverter
    auto supervisor = safety::Supervisor::create(config_.safety);
    if (!supervisor) return supervisor.error();
    supervisor_.emplace(std::move(supervisor.value()));

    auto parsed = dbc::load_dbc(config_.can.dbc_path);
    if (!parsed) return parsed.error();
    codec_ = std::make_unique<dbc::DatabaseCodec>(std::move(parsed->database));
    auto map = ModuleMap::build(*codec_, config_.modules, *supervisor_);
    if (!map) return Error(map.error().code, config_.can.dbc_path + ": " + map.error().message);
    map_ = std::move(map.value());
    decode_buffer_.resize(std::max<std::size_t>(map_.largest_message_signals(), 1));
    presence_.resize(decode_buffer_.size());
    log_->info("DBC {}: modules {} defined, {} watched signals; expecting {} modules", config_.can.dbc_path,
               ids_text(map_.defined_modules()), map_.watched_count(), config_.modules.expected);

    if (Result<void> ok = open_recording(); !ok) return ok;
    if (Result<void> ok = open_uplink(); !ok) return ok;
    if (!config_.recording.csv_dir.empty()) {
      csv_ = std::make_unique<recorder::RigCsvWriter>(config_.recording.csv_dir);
      schedule_csv_row();
      log_->info("rig-layout CSV files in {}", config_.recording.csv_dir);
    }
    latest_values_.resize(map_.messages().size());
    if (Result<void> ok = open_events(); !ok) return ok;
    emit_limits();
    if (Result<void> ok = open_board(); !ok) return ok;
    if (Result<void> ok = open_outputs(); !ok) return ok;
    if (Result<void> ok = open_inverter(); !ok) return ok;
    connect_devices();
    if (Result<void> ok = schedule_.load(); !ok) return ok;
    if (Result<void> ok = open_control(); !ok) return ok;
    open_bus();

    // The rig's start-up state: every output off (rig: relays off, pump/fan off). Through the board
    // this is remembered and sent as soon as the board connects (it is not open yet).
    if (outputs_) {
      std::array<std::optional<bool>, devices::kOutputCount> all_off;
      all_off.fill(false);
      if (auto ok = outputs_->set_all(all_off); !ok) log_->debug("outputs: {}", ok.error().message);
    }

    if (options_.handle_signals) {
      signals_.add(SIGINT);
      signals_.add(SIGTERM);
      signals_.add(SIGHUP);
      wait_for_signals();
    }
    if (options_.duration_s > 0) {
      stop_timer_.expires_after(
          std::chrono::nanoseconds(static_cast<std::int64_t>(options_.duration_s * 1e9)));
      stop_timer_.async_wait([this](asio::error_code ec) {
        if (!ec) request_stop(safety::StopOrigin::duration_elapsed, "");
      });
    }
    if (config_.can.sync_period_ns > Duration::zero()) {
      sync_.start(mono_now().ns());
      schedule_sync();
    }
    schedule_report(kDiscoveryWindowNs);
    arm_deadline();
    if (inverter_) inverter_->start();
    if (board_) board_->start();

    json ready{{"ready", true},
               {"control", control_->path()},
               {"config_sha256", config_.sha256},
               {"modules_defined", map_.defined_modules().size()},
               {"expected_modules", config_.modules.expected},
               {"pid", ::getpid()}};
    if (options_.ready_out != nullptr) {
      const std::string line = to_json_text(ready) + "\n";
      std::fputs(line.c_str(), options_.ready_out);
      std::fflush(options_.ready_out);
    }
    service_.ready("guarding: " + std::to_string(config_.modules.expected) +
                   " modules expected, control socket " + control_->path());
    return success();
  }

  // ---- handlers that throw ----------------------------------------------------------------------

  // Wraps a handler the edge installs on a bus, the board, the inverter: an exception is reported as
  // a bug with the handler's input (escaped) and does not leave the handler, so the device's own read
  // loop that called it goes on.
  template <typename F>
  auto guard(const char* where, F handler) {
    return guard_handler(where, std::move(handler),
                         [this](const char* name, std::string_view what, const auto&... args) {
                           handler_failed(name, what, describe_inputs(args...));
                         });
  }

  static std::string describe_input(const can::Frame& frame) {
    std::string text = "CAN frame id 0x" + hex(frame.id) + (frame.error ? " (error frame)" : "") + " data";
    for (std::uint8_t byte : frame.payload()) {
      char two[4];
      std::snprintf(two, sizeof two, " %02x", byte);
      text += two;
    }
    return text;
  }
  static std::string describe_input(std::string_view text) {
    std::string quoted = "'";  // appended, not "'" + ...: GCC 12 reports a false -Wrestrict on that at -O3
    quoted += escape_untrusted(text);
    quoted += '\'';
    return quoted;
  }
  static std::string describe_input(const std::string& text) {
    return describe_input(std::string_view(text));
  }
  static std::string describe_input(const Error& error) {
    return "error '" + escape_untrusted(error.message) + "'";
  }
  template <typename T>
  static std::string describe_input(const T&) {
    return "";
  }
  template <typename... Args>
  static std::string describe_inputs(const Args&... args) {
    std::string text;
    for (std::string part : {describe_input(args)..., std::string()}) {
      if (part.empty()) continue;
      if (!text.empty()) text += ", ";
      text += part;
    }
    return text;
  }

 public:
  // Must not throw: it runs inside catch blocks.
  void handler_failed(const char* where, std::string_view what, const std::string& input) noexcept {
    try {
      ++handler_failures_;
      if (!worth_reporting(handler_failures_)) return;
      const std::string cause = escape_untrusted(what);
      log_->error("bug: the {} handler failed: {}{}{} ({} so far); the edge goes on", where, cause,
                  input.empty() ? "" : "; input: ", input, handler_failures_);
      json event = {{"t", wall_s()},
                    {"kind", "fault"},
                    {"event", "handler_failed"},
                    {"handler", where},
                    {"error", cause},
                    {"count", handler_failures_},
                    {"message", std::string("bug: the ") + where + " handler failed: " + cause}};
      if (!input.empty()) event["input"] = input;
      emit(std::move(event));
    } catch (...) {
      std::fputs("cellguard edge: bug: a handler failed, and reporting it failed too\n", stderr);
    }
  }

 private:
  // After an exception left io_.run(): the handler that threw may have been the one to re-arm a
  // timer or a read, so the edge's own timers are armed again and the bus reopened. While stopping,
  // the stop completes.
  void resume_after_failure() {
    try {
      if (leaving_) {
        finish_leaving();  // the handler that threw may have been the one to finish it
        return;
      }
      if (stopping_) {
        // The stop goes on: the supervisor's timers open the contactors, then the edge leaves.
        armed_deadline_ns_ = MonoTime::from_ns(-1);
        arm_deadline();
        check_stop_progress();
        return;
      }
      if (config_.can.sync_period_ns > Duration::zero()) {
        sync_.start((mono_now() + config_.can.sync_period_ns).ns());
        schedule_sync();
      }
      schedule_report(kDiscoveryWindowNs);
      if (csv_) schedule_csv_row();
      armed_deadline_ns_ = MonoTime::from_ns(-1);  // not a deadline: arm_deadline() arms the timer again
      arm_deadline();
      ++can_.reopens;
      open_bus();
    } catch (const std::exception& e) {
      handler_failed("recovery", e.what(), "");
    }
  }

  Result<void> open_recording() {
    if (config_.recording.path.empty()) return success();
    recorder::RecorderConfig rc;
    rc.path = config_.recording.path;
    rc.max_bytes = config_.recording.max_bytes;
    rc.max_age_ns = config_.recording.max_age_ns.count();
    // With an uplink, what the server has not acknowledged keeps its events when the bounds strike.
    rc.keep_undelivered_events = config_.uplink.enabled();
    auto opened = recorder::Recorder::open(rc);
    if (!opened) return opened.error();
    recorder_ = std::move(opened.value());
    if (auto text = read_file(config_.can.dbc_path)) (void)recorder_->set_meta("dbc", *text);
    (void)recorder_->set_meta("config_sha256", config_.sha256);
    (void)recorder_->set_meta("edge_id", config_.edge_id);
    for (const auto& [name, unit] : sample_channels()) {
      auto id = recorder_->channel(name, unit);
      if (!id) return id.error();
      record_channels_[name] = *id;
    }
    // The state the supervisor starts in, so a reader (the server's dashboard, the rig CSV export)
    // knows it before the first change.
    recorder_->record_sample(wall_now().ns(), record_channels_["safety.state"],
                             static_cast<double>(supervisor_->state()));
    recorder_->record_sample(wall_now().ns(), record_channels_[recorder::kRigFlagsChannel], 0);
    log_->info("recording to {}", config_.recording.path);
    return success();
  }

  // The uplink streams the recording to the server on a thread of its own (uplink/sender.h).
  Result<void> open_uplink() {
    const UplinkSection& u = config_.uplink;
    if (!u.enabled()) return success();
    uplink::SenderConfig sc;
    sc.recording_path = config_.recording.path;
    sc.host = u.host;
    sc.port = u.port;
    if (!u.plaintext) {
      auto context = pki::client_context({u.cert_path, u.key_path, u.ca_path, {}}, u.host);
      if (!context) return Error(context.error().code, "uplink: " + context.error().message);
      sc.tls = std::make_shared<asio::ssl::context>(std::move(*context));
    }
    sc.hello.edge_id = config_.edge_id;
    sc.hello.software_version = CELLGUARD_VERSION;
    sc.hello.config_sha256 = config_.sha256;
    if (auto text = read_file(config_.can.dbc_path)) sc.hello.dbc_sha256 = sha256_hex(*text);
    sc.keepalive = std::chrono::duration_cast<std::chrono::milliseconds>(u.keepalive_ns);
    sc.dead_after = std::chrono::duration_cast<std::chrono::milliseconds>(u.dead_after_ns);
    sc.backoff_max = std::chrono::duration_cast<std::chrono::milliseconds>(u.backoff_max_ns);
    sc.hints.module_of = [this](const dbc::Message& message) {
      uplink::ModuleOfMessage m;
      if (const ModuleMessage* mm = map_.find(message.id, message.extended); mm && mm->module_id != 0) {
        m.module = static_cast<std::uint32_t>(mm->module_id);
        m.rig_prefix = rig_prefix(config_.modules.name_pattern, mm->module_id);
      }
      return m;
    };
    // The rig CSV's device columns, from the channel catalogue (the board's carry the ADC counts).
    for (const auto& c : devices::kBoardChannels) sc.hints.rig_columns.emplace(c.raw_record, c.rig_column);
    for (const auto& c : devices::kPowerChannels) {
      if (!c.rig_column.empty()) sc.hints.rig_columns.emplace(c.record, c.rig_column);
    }
    auto sender = uplink::Sender::start(std::move(sc));
    if (!sender) return sender.error();
    sender_ = std::move(*sender);
    log_->info("uplink to {}:{} ({})", u.host, u.port,
               u.plaintext ? "plaintext, loopback" : "TLS 1.3, mutual");
    return success();
  }

  safety::ChannelId add_device_channel(std::string_view name, safety::Quantity quantity,
                                       std::string_view label) {
    auto id = supervisor_->add_channel({std::string(name), quantity, 0, std::string(label)});
    return id ? *id : safety::kNoChannel;  // only fails for module quantities without a module id
  }

  Result<void> open_events() {
    const std::string path =
        options_.events_path.empty() ? config_.operator_interface.events_path : options_.events_path;
    if (path.empty()) return success();
    auto writer = EventWriter::open(path);
    if (!writer) return writer.error();
    events_ = std::move(writer.value());
    return success();
  }

  Result<void> open_board() {
    if (!config_.board.enabled) return success();
    devices::BoardLinkConfig link = config_.board.link;
    const auto& pins = config_.outputs.board_pins;
    link.relay_pins = {pins[static_cast<std::size_t>(devices::Output::relay1)],
                       pins[static_cast<std::size_t>(devices::Output::relay2)],
                       pins[static_cast<std::size_t>(devices::Output::relay3)]};
    link.output_pins.assign(pins.begin(), pins.end());  // the only pins the board is ever told to write
    board_ = std::make_unique<devices::BoardLink>(io_, std::move(link), system_clock());
    for (std::size_t i = 0; i < devices::kBoardChannels.size(); ++i) {
      const auto& c = devices::kBoardChannels[i];
      board_channels_[i] = add_device_channel(c.supervised, c.quantity, c.fact);
    }
    board_->on_reading(
        guard("board reading", [this](const devices::BoardReading& r) { on_board_reading(r); }));
    board_->on_invalid_line(guard("board invalid line", [this](std::string_view line, const Error& error) {
      on_board_invalid_line(line, error);
    }));
    board_->on_connection(guard("board connection", [this](bool connected, const std::string& detail) {
      link_event("board", connected, detail);
    }));
    // What cellguard's board firmware says about itself: its watchdog resets and fail-safe trips.
    board_->on_event(guard("board event", [this](const devices::BoardEvent& e) { on_board_event(e); }));
    return success();
  }

  void on_board_event(const devices::BoardEvent& e) {
    using Kind = devices::BoardEvent::Kind;
    const bool bad = (e.kind == Kind::reset && e.detail == "wdt") ||
                     (e.kind == Kind::fail_safe && e.detail == "hb_lost") ||
                     e.kind == Kind::readback_mismatch || e.kind == Kind::relays_opened ||
                     e.kind == Kind::output_fault;
    if (bad)
      log_->warn("board: {} {}", devices::to_string(e.kind), e.detail);
    else
      log_->info("board: {} {}", devices::to_string(e.kind), e.detail);
    json event = {{"t", wall_s()},
                  {"kind", "link"},
                  {"link", "board"},
                  {"event", devices::to_string(e.kind)},
                  {"detail", e.detail}};
    if (e.kind == Kind::reset) event["cause"] = e.detail;
    if (e.kind == Kind::reset && e.detail == "wdt") event["watchdog"] = true;
    if (e.kind == Kind::fail_safe && e.detail == "hb_lost")
      event["message"] = "heartbeat lost: the board opened the relays";
    // Issue 13 item 4: what the board did by itself goes to the supervisor (SAFE with that cause).
    std::optional<safety::BoardFault> fault;
    if (e.kind == Kind::relays_opened) {
      fault = e.detail == "hb_lost"     ? safety::BoardFault::heartbeat_timeout
              : e.detail == "gnd_fault" ? safety::BoardFault::ground_fault
              : e.detail == "wdt"       ? safety::BoardFault::watchdog_reset
                                        : safety::BoardFault::reset;
    } else if (e.kind == Kind::output_fault) {
      fault = safety::BoardFault::output_mismatch;
    } else if (e.kind == Kind::outputs_verified) {
      fault = safety::BoardFault::none;
    }
    // Act before reporting: the supervisor's decisions first, the board's event after them.
    if (fault) execute(supervisor_->on_board_fault(*fault, mono_now()));
    if (fault) event["message"] = std::string(safety::to_string(*fault));
    emit(std::move(event));
  }

  // A line the board sent that is not a reading: the line itself only escaped (it may hold any byte).
  void on_board_invalid_line(std::string_view line, const Error& error) {
    if (!worth_reporting(++board_invalid_reported_)) return;
    const std::string shown = escape_untrusted(line, 160);
    log_->warn("board: invalid line \"{}\": {} ({} so far)", shown, error.message, board_invalid_reported_);
    emit({{"t", wall_s()},
          {"kind", "link"},
          {"link", "board"},
          {"event", "invalid_line"},
          {"line", shown},
          {"error", escape_untrusted(error.message)},
          {"count", board_invalid_reported_}});
  }

  Result<void> open_outputs() {
    if (injected_.outputs) {
      outputs_ = std::move(injected_.outputs);
    } else if (config_.outputs.driver == OutputsSection::Driver::gpio) {
      auto gpio = devices::open_gpio_outputs(config_.outputs.gpio);
      if (!gpio) return gpio.error();
      outputs_ = std::move(gpio.value());
    } else if (board_) {
      outputs_ = devices::make_board_outputs(*board_, config_.outputs.board_pins);
    } else {
      log_->warn(
          "outputs: the board is disabled and the driver is \"board\": pump, fan and relays are not "
          "switched");
    }
    return success();
  }

  Result<void> open_inverter() {
    if (!config_.inverter.enabled) return success();
    inverter_ = injected_.inverter ? std::move(injected_.inverter)
                                   : devices::make_power_device(config_.inverter.model, io_,
                                                                config_.inverter.client, system_clock());
    for (std::size_t i = 0; i < devices::kPowerChannels.size(); ++i) {
      const auto& c = devices::kPowerChannels[i];
      if (c.quantity) power_channels_[i] = add_device_channel(c.supervised, *c.quantity, c.fact);
    }
    inverter_->on_readings(
        guard("inverter readings", [this](const devices::InverterReadings& r) { on_inverter_readings(r); }));
    inverter_->on_link(guard("inverter link", [this](bool ok, MonoTime, const std::string& detail) {
      if (ok != inverter_link_ok_) {
        inverter_link_ok_ = ok;
        link_event("inverter", ok, detail);
      }
      execute(supervisor_->on_inverter_link(ok, mono_now()));
      after_inputs();
    }));
    inverter_->on_event(
        guard("inverter event", [this](const devices::InverterEvent& e) { on_inverter_event(e); }));
    inverter_->on_heartbeat(guard("inverter heartbeat", [this](MonoTime) {
      execute(supervisor_->on_inverter_heartbeat(mono_now()));
      after_inputs();
    }));
    return success();
  }

  Result<void> open_control() {
    ipc::LineServerOptions o;
    o.path = !options_.socket_path.empty() ? options_.socket_path
             : !config_.operator_interface.socket_path.empty()
                 ? config_.operator_interface.socket_path
                 : ipc::default_socket_path("cellguard-edge-" + config_.edge_id + ".sock");
    o.group = config_.operator_interface.group;
    // Every request is logged with who sent it (pid, uid, user, gid): the operators' audit trail.
    auto server =
        ipc::LineServer::start(io_, o, [this](std::string_view line, const ipc::PeerCredentials& peer) {
          std::string answer = handle_control_guarded(line);
          const json request = json::parse(line, nullptr, false);
          const std::string cmd = request.is_object() && request.contains("cmd") && request["cmd"].is_string()
                                      ? json(request["cmd"]).dump()
                                      : std::string("(unreadable request)");
          log_->info("operator request {} from {}: {}", cmd, peer.describe(),
                     answer.starts_with(R"({"ok":true)") ? "ok" : "refused");
          return answer;
        });
    if (!server) return server.error();
    control_ = std::move(server.value());
    return success();
  }

  // ---- CAN ---------------------------------------------------------------------------------------

  void open_bus() {
    if (bus_) {
      const auto retired = bus_->counters();
      retired_dropped_ += retired.frames_dropped;
      retired_overflows_ += retired.rx_queue_overflows;
      retired_restarts_ += retired.restarts_requested;
      bus_->close();
    }
    auto bus = can::open_bus(io_, config_.can.url);
    if (!bus) {
      can_error("open " + config_.can.url + ": " + bus.error().message);
      schedule_bus_reopen();
      return;
    }
    bus_ = std::move(bus.value());
    bus_open_ = false;
    bus_->on_receive(guard("CAN frame", [this](const can::Frame& frame) { on_frame(frame); }));
    bus_->on_error(guard("CAN error", [this](const Error& error) { on_bus_error(error); }));
    bus_->on_ready(guard("CAN ready", [this] {
      bus_open_ = true;
      bus_up_ = true;
      link_event("can", true, bus_->describe());
    }));
  }

  void on_bus_error(const Error& error) {
    // One element or log line that did not parse: the link is fine (bus.h), so it stays up.
    if (error.code == ErrorCode::parse_error && bus_ && !bus_->is_closed()) {
      on_malformed_input(error);
      return;
    }
    ++can_.link_errors;
    can_error(error.message);
    if (bus_ && bus_->is_closed()) schedule_bus_reopen();
  }

  void on_malformed_input(const Error& error) {
    ++can_.malformed_elements;
    if (!worth_reporting(can_.malformed_elements)) return;
    const std::string detail = escape_untrusted(error.message);
    log_->warn("can: {} ({} malformed so far; the link stays up)", detail, can_.malformed_elements);
    emit({{"t", wall_s()},
          {"kind", "link"},
          {"link", "can"},
          {"event", "malformed_element"},
          {"detail", detail},
          {"count", can_.malformed_elements}});
  }

  void on_error_frame(const can::Frame& frame, MonoTime received) {
    ++can_.error_frames;
    const can::ErrorFrameInfo info = can::classify_error_frame(frame.id, frame.payload());
    const bool changed = controller_.add(info);
    if (info.bus_off) can_error("bus-off (" + info.describe() + ")");
    if (changed) controller_state_event(info);
    if (can_.error_frames <= 10 || can_.error_frames % 1000 == 0)
      log_->warn("can: error frame: {} (class 0x{:x}, {} so far)", info.describe(), frame.id,
                 can_.error_frames);
    record_can_counters();
    if (auto storm = error_storm_.add(received)) {
      const double window_s = to_seconds(storm->window_ns);
      char text[320];
      std::snprintf(
          text, sizeof text,
          "CAN error-frame storm on %s: %llu error frames within %.1f s (warning at %llu per %.1f s)%s; "
          "check wiring, termination and bit rate",
          bus_ ? bus_->describe().c_str() : config_.can.url.c_str(),
          static_cast<unsigned long long>(storm->count), window_s,
          static_cast<unsigned long long>(kErrorStormThreshold), window_s,
          storm->since_last_ns > Duration::zero()
              ? (", " + std::to_string(storm->since_last) + " since the last warning " +
                 std::to_string(storm->since_last_ns / kSecond) + " s ago")
                    .c_str()
              : "");
      log_->warn("{}", text);
      emit({{"t", wall_s()},
            {"kind", "link"},
            {"link", "can"},
            {"event", "error_frame_storm"},
            {"message", text},
            {"count", storm->count},
            {"window_s", window_s},
            {"threshold", kErrorStormThreshold},
            {"since_last_warning", storm->since_last},
            {"total", can_.error_frames},
            {"last_class", "0x" + hex(frame.id)}});
    }
  }

  // A failure after the fact. A closed bus is reopened (schedule_bus_reopen); an open one (SocketCAN
  // interface down, bus-off) stays open and counts as up again with its next frame.
  void can_error(const std::string& raw_message) {
    const std::string message = escape_untrusted(raw_message);
    if (bus_up_ || !can_error_reported_) log_->warn("can: {}", message);
    can_error_reported_ = true;
    if (bus_up_) link_event("can", false, message);
    bus_up_ = false;
    if (bus_ && bus_->is_closed()) bus_open_ = false;
  }

  void schedule_bus_reopen() {
    if (leaving_ || bus_reopen_pending_) return;
    bus_reopen_pending_ = true;
    bus_timer_.expires_after(std::chrono::nanoseconds(kBusReopenDelayNs));
    bus_timer_.async_wait([this](asio::error_code ec) {
      bus_reopen_pending_ = false;
      if (ec || leaving_) return;
      ++can_.reopens;
      open_bus();
    });
  }

  // The SYNC producer (canopen.h) keeps the fixed rate and the counter; this only sends.
  void schedule_sync() {
    sync_timer_.expires_at(SteadyClock::time_point(std::chrono::nanoseconds(sync_.due_ns())));
    sync_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      send_sync();
      sync_.advance(mono_now().ns());
      schedule_sync();
    });
  }

  // A controller state change (error warning, error passive, bus-off, restarted, active again).
  void controller_state_event(const can::ErrorFrameInfo& info) {
    const std::string text =
        std::string("CAN controller ") + can::to_string(controller_.state) + ": " + info.describe();
    if (controller_.state == can::ControllerState::active)
      log_->info("can: {}", text);
    else
      log_->warn("can: {}", text);
    emit({{"t", wall_s()},
          {"kind", "link"},
          {"link", "can"},
          {"event", "controller_state"},
          {"state", can::to_string(controller_.state)},
          {"bus_off", controller_.bus_off},
          {"error_passive", controller_.error_passive},
          {"restarts", controller_.restarts},
          {"text", text}});
  }

  // The CAN counters as samples when any changed (checked per error frame and per SYNC).
  void record_can_counters() {
    const auto bus = bus_ ? bus_->counters() : can::BusCounters{};
    const std::array<std::pair<const char*, std::uint64_t>, 7> now = {{
        {"can.error_frames_total", can_.error_frames},
        {"can.bus_off_total", controller_.bus_off},
        {"can.error_passive_total", controller_.error_passive},
        {"can.error_warning_total", controller_.error_warning},
        {"can.restarts_total", controller_.restarts},
        {"can.restart_requests_total", bus.restarts_requested + retired_restarts_},
        {"can.rx_queue_overflows_total", bus.rx_queue_overflows + retired_overflows_},
    }};
    if (can_counters_recorded_ && now == recorded_can_counters_) return;  // the first call records the zeros
    if (now[6].second != recorded_can_counters_[6].second && now[6].second > 0)
      log_->warn("can: the kernel dropped {} frames from the receive queue so far (SO_RXQ_OVFL)",
                 now[6].second);
    recorded_can_counters_ = now;
    can_counters_recorded_ = true;
    if (!recorder_) return;
    const std::int64_t wall = wall_now().ns();  // the recorder's records carry wall-clock ns
    for (const auto& [name, value] : now)
      recorder_->record_sample(wall, record_channels_[name], static_cast<double>(value));
  }

  void send_sync() {
    record_can_counters();
    if (!bus_ || !bus_open_) {
      ++can_.sync_failed;
      return;
    }
    can::Frame sync = sync_.produce();
    if (auto sent = bus_->send(sync); !sent) {
      ++can_.sync_failed;
      return;
    }
    ++can_.sync_sent;
    if (recorder_) {
      sync.timestamp_ns = wall_now().ns();
      recorder_->record_frame(sync);
    }
    execute(supervisor_->on_sync_sent(mono_now()));
    after_inputs();
  }

  // Decode dispatch: module PDOs to the supervisor, SDO responses to the SDO report, the rest counted.
  void on_frame(const can::Frame& frame) {
    const MonoTime received = mono_now();
    ++can_.frames;
    current_frame_ = &frame;
    current_frame_received_ns_ = received;
    if (!bus_up_ && bus_open_ && !frame.error) {
      bus_up_ = true;
      link_event("can", true, "frames again on " + bus_->describe());
    }
    if (frame.error) {
      on_error_frame(frame, received);
    } else if (const ModuleMessage* message = map_.find(frame.id, frame.extended); message == nullptr) {
      ++can_.unknown;
    } else if (message->module_id == 0) {
      ++can_.other_known;
      if (const auto cob = canopen::classify(frame.id, frame.extended);
          cob && cob->function == canopen::Function::sdo_response)
        on_sdo_response(frame, cob->node);
    } else {
      const auto status = message->codec->decode(frame.payload(), decode_buffer_.data(), presence_);
      if (status != dbc::DecodeStatus::ok) {
        ++can_.malformed;
        if (can_.malformed <= 10 || can_.malformed % 1000 == 0)
          log_->warn("can: module {}: {} ({} malformed so far)", message->module_id,
                     message->codec->describe(status, frame.payload()), can_.malformed);
      } else {
        ++can_.module_frames;
        if (csv_) {
          auto& latest = latest_values_[static_cast<std::size_t>(message - map_.messages().data())];
          latest.assign(decode_buffer_.begin(),
                        decode_buffer_.begin() + static_cast<std::ptrdiff_t>(message->codec->signal_count()));
        }
        execute(supervisor_->on_module_pdo(message->module_id, received));
        for (const WatchedSignal& w : message->watched) {
          if (!presence_.test(w.signal_index)) continue;
          auto decisions = supervisor_->on_sample(w.channel, received, decode_buffer_[w.signal_index]);
          if (decisions) execute(*decisions);
        }
      }
    }
    if (recorder_) recorder_->record_frame(frame);
    frame_latency_.add(mono_now() - received);
    current_frame_ = nullptr;
    after_inputs();
  }

  // The start-up SDO downloads are fire-and-forget: a response is counted, an abort reported by name.
  void on_sdo_response(const can::Frame& frame, int node) {
    ++can_.sdo_responses;
    auto message = canopen::decode_sdo(frame.payload(), canopen::SdoDirection::response);
    // Only the command byte says abort; a short frame still reports the code bytes it has.
    if (frame.size >= 1 && frame.data[0] == 0x80) {
      ++can_.sdo_aborts;
      std::uint32_t code = 0;
      if (message)
        code = message->abort_code;
      else
        for (int i = 0; i < 4 && 4 + i < frame.size; ++i) code |= std::uint32_t{frame.data[4 + i]} << (8 * i);
      const std::string text = canopen::sdo_abort_text(code);
      log_->warn("module {}: SDO abort: {}", node, text);
      json event{{"t", wall_s()},      {"kind", "module"},
                 {"module", node},     {"event", "sdo_abort"},
                 {"abort_code", code}, {"text", "module " + std::to_string(node) + ": SDO abort: " + text}};
      if (const auto name = canopen::sdo_abort_name(code); !name.empty()) event["abort"] = std::string(name);
      if (message) {
        event["index"] = message->index;
        event["subindex"] = message->subindex;
      }
      emit(std::move(event));
    }
  }

  void send_startup_sdo(int module_id) {
    if (!bus_) return;
    for (const auto& bytes : config_.can.startup_sdo) {
      can::Frame request;
      request.id = config_.can.sdo_request_base + static_cast<std::uint32_t>(module_id);
      request.set_payload(bytes);
      if (bus_->send(request)) ++can_.sdo_sent;
    }
  }

  // ---- board and inverter ------------------------------------------------------------------------

  void on_board_reading(const devices::BoardReading& r) {
    const MonoTime now = mono_now();
    execute(supervisor_->on_board_line_valid(now));
    for (std::size_t i = 0; i < devices::kBoardChannels.size(); ++i) {
      const safety::ChannelId channel = board_channels_[i];
      const devices::Conversion* conversion = &(r.*devices::kBoardChannels[i].value);
      if (conversion->in_range != board_in_range_[i]) {
        board_in_range_[i] = conversion->in_range;
        emit({{"t", wall_s()},
              {"kind", "link"},
              {"link", "board"},
              {"sensor", supervisor_->channel(channel).name},
              {"in_range", conversion->in_range},
              {"value", conversion->value}});
      }
      if (auto d = supervisor_->on_sample(channel, now, conversion->value)) execute(*d);
    }
    if (r.ground_fault) execute(supervisor_->on_insulation_fault(*r.ground_fault, now));
    last_board_ = r;
    if (recorder_) {
      const std::int64_t wall = wall_now().ns();  // the recorder's records carry wall-clock ns
      for (const auto& c : devices::kBoardChannels) {
        recorder_->record_sample(wall, record_channels_[std::string(c.record)], (r.*c.value).value);
      }
      for (const auto& c : devices::kBoardChannels) {
        recorder_->record_sample(wall, record_channels_[std::string(c.raw_record)],
                                 static_cast<double>(r.*c.raw));
      }
    }
    after_inputs();
  }

  void on_inverter_readings(const devices::InverterReadings& r) {
    const MonoTime now = mono_now();
    execute(supervisor_->on_inverter_reading(now));  // freshness first: a valid reading arrived
    for (std::size_t i = 0; i < devices::kPowerChannels.size(); ++i) {
      if (power_channels_[i] == safety::kNoChannel) continue;
      if (auto d = supervisor_->on_sample(power_channels_[i], now, r.*devices::kPowerChannels[i].value))
        execute(*d);
    }
    last_inverter_ = r;
    schedule_.on_inverter_readings(r, now);
    if (recorder_) {
      const std::int64_t wall = wall_now().ns();  // the recorder's records carry wall-clock ns
      for (const auto& c : devices::kPowerChannels) {
        recorder_->record_sample(wall, record_channels_[std::string(c.record)], r.*c.value);
      }
    }
    after_inputs();
  }

  void on_inverter_event(const devices::InverterEvent& e) {
    using K = devices::InverterEvent::Kind;
    json j{{"t", wall_s()},
           {"kind", "link"},
           {"link", "inverter"},
           {"event", std::string(to_string(e.kind))},
           {"message", e.message}};
    if (e.kind == K::command_written || e.kind == K::command_failed)
      j["after_request_us"] = static_cast<double>((e.time_ns - e.requested_ns).count()) / 1000.0;
    if (e.kind == K::command_failed || e.kind == K::startup_failed || e.kind == K::disconnected)
      log_->warn("inverter: {}", e.message);
    else
      log_->info("inverter: {}", e.message);
    emit(std::move(j));
    if (e.kind == K::startup_done) {
      inverter_started_ = true;
      if (config_.schedule.autostart && schedule_.configured() && !autostart_done_) {
        autostart_done_ = true;
        request_schedule_start("autostart");
      }
    }
    // Leaving waits for the inverter to confirm the last mode-off (leave()).
    if (leaving_ && e.kind == K::command_written && inverter_->stats().mode == devices::InverterMode::off)
      finish_leaving();
  }

  // ---- decisions ---------------------------------------------------------------------------------

 public:
  // Two passes: first every actuation of the batch (inverter, relays, pump and fan), then the
  // events and logs, so reporting never delays an action.
  void execute(safety::Decisions decisions) {
    if (decisions.empty()) return;
    // Copies: the span dies with the next supervisor call, and reporting may make one. Decisions are
    // rare (most samples decide nothing), so the allocation is off the common path.
    const std::vector<safety::Decision> batch(decisions.begin(), decisions.end());
    std::vector<Actuation> acted(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) acted[i] = actuator_.actuate(batch[i]);
    for (std::size_t i = 0; i < batch.size(); ++i) report(batch[i], acted[i]);
  }

 private:
  void report(const safety::Decision& d, const Actuation& acted) {
    using K = safety::DecisionKind;
    json event = decision_event(*supervisor_, d, time_base());
    if (!acted.error.empty()) event["error"] = acted.error;
    if (d.kind == K::state_changed) {
      event["active_causes"] = causes_json();
      event["reset_possible"] = reset_possible(d.to);
    }
    if (acted.command && current_frame_ != nullptr) {
      // From the offending frame's arrival at the edge to the command issued (item 11).
      const Duration latency = acted.at_ns - current_frame_received_ns_;
      event["latency_us"] = static_cast<double>(latency.count()) / 1000.0;
      event["frame_age_us"] = static_cast<double>(wall_now().ns() - current_frame_->timestamp_ns) / 1000.0;
      event["frame_id"] = current_frame_->id;
      action_latency_.add(latency);
    }
    if (d.kind == K::state_changed) {
      log_->log(d.to == safety::State::normal ? spdlog::level::info : spdlog::level::warn, "{}",
                event.value("text", std::string()));
      if (d.to == safety::State::dangerous || d.to == safety::State::safe)
        schedule_.stop("state " + state_name(d.to));
      if (recorder_)
        recorder_->record_sample(wall_now().ns(), record_channels_["safety.state"],
                                 static_cast<double>(d.to));
    } else if (d.kind == K::precharge_complete) {
      schedule_.on_precharge_complete(mono_now());
    } else if (d.kind == K::start_refused || d.kind == K::precharge_lockout) {
      if (schedule_.start_pending())
        schedule_.on_start_refused(supervisor_->describe(d.reason, time_base().clock_at(d.time_ns)));
    } else if (d.kind == K::module_joined) {
      log_->info("module {} joined", d.reason.module_id);
      send_startup_sdo(d.reason.module_id);
    }
    if (d.kind != K::state_changed && d.kind != K::module_joined) {
      if (acted.error.empty())
        log_->info("{}", event.value("text", std::string()));
      else
        log_->warn("NOT issued ({}): {}", acted.error, event.value("text", std::string()));
    }
    emit(std::move(event));
  }

  // The configured limits, once at start, so a reader of the recording (the server's history charts)
  // can draw them: {"kind":"config","event":"limits","limits":{"cell_voltage":{"warning_high":4.1,...}}}.
  void emit_limits() {
    json limits = json::object();
    for (std::size_t q = 0; q < safety::kQuantityCount; ++q) {
      const safety::RuleConfig& rule = config_.safety.rules[q];
      json j = json::object();
      if (rule.warning_high) j["warning_high"] = *rule.warning_high;
      if (rule.dangerous_high) j["dangerous_high"] = *rule.dangerous_high;
      if (rule.warning_low) j["warning_low"] = *rule.warning_low;
      if (rule.dangerous_low) j["dangerous_low"] = *rule.dangerous_low;
      if (!j.empty()) limits[std::string(safety::to_string(static_cast<safety::Quantity>(q)))] = std::move(j);
    }
    emit({{"t", wall_s()}, {"kind", "config"}, {"event", "limits"}, {"limits", std::move(limits)}});
  }

  // Every active cause as JSON (reason_json), worst first as the supervisor lists them.
  json causes_json() const {
    json list = json::array();
    for (const auto& cause : supervisor_->active_causes())
      list.push_back(reason_json(*supervisor_, cause, time_base()));
    return list;
  }
  // Whether an operator reset would be accepted now, in `state` (the supervisor's rule: SAFE is left
  // only when no dangerous cause remains; DANGEROUS never; other states have nothing to reset).
  bool reset_possible(safety::State state) const {
    if (state != safety::State::safe) return false;
    for (const auto& cause : supervisor_->active_causes())
      if (cause.level == safety::Level::dangerous) return false;
    return true;
  }

  // After every input: limit events for causes that appeared, changed or cleared, and the deadline.
  void after_inputs() {
    if (supervisor_->causes_version() != causes_version_seen_) {
      causes_version_seen_ = supervisor_->causes_version();
      const std::vector<safety::Reason> causes = supervisor_->active_causes();
      std::map<std::pair<int, std::pair<safety::ChannelId, int>>, safety::Reason> now_active;
      for (const auto& cause : causes)
        now_active[{static_cast<int>(cause.rule), {cause.channel, cause.module_id}}] = cause;
      const std::uint32_t flags = rig_flags(causes);
      // Each limit event carries what is active after it, so the newest one tells a reader (the
      // server's dashboard) the whole picture: which causes remain, whether a reset would pass.
      const json snapshot = causes_json();
      auto limit_event = [&](const char* what, const safety::Reason& reason) {
        json e{{"t", wall_s()},
               {"kind", "limit"},
               {"event", what},
               {"reason", reason_json(*supervisor_, reason, time_base())}};
        e["active_causes"] = snapshot;
        e["reset_possible"] = reset_possible(supervisor_->state());
        emit(std::move(e));
      };
      for (const auto& [key, cause] : now_active) {
        auto before = active_causes_.find(key);
        if (before == active_causes_.end() || before->second.level != cause.level)
          limit_event("active", cause);
      }
      for (const auto& [key, cause] : active_causes_) {
        if (now_active.count(key) == 0) {
          safety::Reason cleared = cause;
          cleared.level = safety::Level::normal;
          limit_event("cleared", cleared);
        }
      }
      active_causes_ = std::move(now_active);
      if (flags != rig_flags_) {
        rig_flags_ = flags;
        if (recorder_)
          recorder_->record_sample(wall_now().ns(), record_channels_[recorder::kRigFlagsChannel],
                                   static_cast<double>(flags));
      }
    }
    arm_deadline();
    check_stop_progress();
  }

  void arm_deadline() {
    const MonoTime deadline = supervisor_->next_deadline_ns();
    if (deadline == armed_deadline_ns_) return;
    armed_deadline_ns_ = deadline;
    if (deadline == safety::kNever) {
      deadline_timer_.cancel();
      return;
    }
    deadline_timer_.expires_at(to_steady(deadline));
    deadline_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      armed_deadline_ns_ = safety::kNever;
      execute(supervisor_->tick(mono_now()));
      after_inputs();
    });
  }

  // ---- schedule ----------------------------------------------------------------------------------

  std::string request_schedule_start(const std::string& origin) {
    return schedule_.request_start(origin, inverter_ && inverter_started_, supervisor_->status());
  }

  // ---- operator interface ------------------------------------------------------------------------

 public:
  // The operator's request never ends the edge: an exception is a reported bug and an error answer.
  std::string handle_control_guarded(std::string_view line) {
    try {
      return to_json_text(handle_control(line));
    } catch (const std::exception& e) {
      handler_failed("operator request", e.what(), describe_input(line));
    } catch (...) {
      handler_failed("operator request", kNotAStdException, describe_input(line));
    }
    return R"json({"ok":false,"error":"internal error: the request failed (reported in the log)"})json";
  }

 private:
  json handle_control(std::string_view line) {
    json request = json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("cmd") ||
        !request["cmd"].is_string())
      return json{{"ok", false}, {"error", "expected a JSON object with a \"cmd\" string"}};
    const std::string cmd = request["cmd"];
    const MonoTime now = mono_now();
    if (cmd == "status") return json{{"ok", true}, {"status", status_json(snapshot())}};
    if (cmd == "reset") {
      emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "reset_request"}});
      auto decisions = supervisor_->on_operator_reset(now);
      json answer{{"ok", true}};
      for (const auto& d : decisions) {
        if (d.kind == safety::DecisionKind::reset_refused) {
          answer = {{"ok", false},
                    {"error", "reset refused: " + supervisor_->describe(d.reason, time_base().clock())},
                    {"reason", reason_json(*supervisor_, d.reason, time_base())}};
        }
      }
      execute(decisions);
      after_inputs();
      answer["state"] = state_name(supervisor_->state());
      return answer;
    }
    if (cmd == "start") {
      emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "start_request"}});
      auto decisions = supervisor_->on_start_request(now);
      json answer{{"ok", true}};
      for (const auto& d : decisions) {
        if (d.kind == safety::DecisionKind::start_refused)
          answer = {{"ok", false},
                    {"error", "start refused: " + supervisor_->describe(d.reason, time_base().clock())},
                    {"reason", reason_json(*supervisor_, d.reason, time_base())}};
      }
      execute(decisions);
      after_inputs();
      return answer;
    }
    if (cmd == "schedule") {
      const std::string action = request.value("action", "");
      if (action == "start") {
        const std::string refused = request_schedule_start("operator");
        if (!refused.empty()) return json{{"ok", false}, {"error", "schedule start refused: " + refused}};
        return json{
            {"ok", true}, {"running", schedule_.running()}, {"precharging", schedule_.start_pending()}};
      }
      if (action == "stop") {
        schedule_.stop_by_operator(now);
        return json{{"ok", true}};
      }
      return json{{"ok", false}, {"error", "schedule: \"action\" must be \"start\" or \"stop\""}};
    }
    if (cmd == "stop") {
      // The answer goes out before the edge leaves: leaving waits for the contactors and the board.
      request_stop(safety::StopOrigin::operator_command, "");
      return json{{"ok", true},
                  {"stopping", true},
                  {"state", state_name(supervisor_->state())},
                  {"contactor_open_current_a", config_.safety.contactor_open_current_a},
                  {"max_delay_s", to_seconds(config_.safety.contactor_max_delay_ns)}};
    }
    return json{{"ok", false},
                {"error", "unknown cmd \"" + cmd + "\" (status, reset, start, schedule, stop)"}};
  }

 public:
  // Everything status shows, as values (status.h turns it into the JSON).
  StatusSnapshot snapshot() const {
    StatusSnapshot s;
    s.now_ns = mono_now();
    s.time = time_base();
    s.edge_id = config_.edge_id;
    s.config_path = config_.source_path;
    s.config_sha256 = config_.sha256;
    s.uptime_s = to_seconds(s.now_ns - started_mono_);
    s.handler_failures = handler_failures_;
    s.supervisor = &*supervisor_;
    s.safety = supervisor_->status();
    s.can.url = config_.can.url;
    s.can.connected = bus_up_;
    s.can.counters = can_;
    s.can.bus = bus_ ? bus_->counters() : can::BusCounters{};
    s.can.bus.frames_dropped += retired_dropped_;
    s.can.bus.rx_queue_overflows += retired_overflows_;
    s.can.bus.restarts_requested += retired_restarts_;
    s.can.controller = controller_;
    s.can.storm_threshold = kErrorStormThreshold;
    s.can.storm_window_s = to_seconds(kErrorStormWindowNs);
    if (board_) s.board = BoardStatus{config_.board.link.device, board_->stats(), last_board_};
    if (outputs_) {
      OutputsStatus o;
      o.driver = outputs_->describe();
      for (std::size_t i = 0; i < devices::kOutputCount; ++i)
        o.states[i] = outputs_->state(static_cast<devices::Output>(i));
      s.outputs = std::move(o);
    }
    if (inverter_) s.inverter = InverterStatus{config_.inverter.url, inverter_->stats(), last_inverter_};
    if (schedule_.configured()) s.schedule = schedule_.status();
    if (recorder_) s.recording.emplace(config_.recording.path, recorder_->stats());
    if (sender_)
      s.uplink.emplace(config_.uplink.host + ":" + std::to_string(config_.uplink.port), sender_->stats());
    s.frame_handling_latency = frame_latency_.to_json();
    s.frame_to_action_latency = action_latency_.to_json();
    s.events_dropped = events_ ? events_->dropped() : 0;
    return s;
  }

 private:
  // ---- events and reports ------------------------------------------------------------------------

  // One wall-minus-monotonic offset for a second at a time: reading both clocks afresh for every
  // event maps one monotonic instant (a stop request and its decision) to wall times some µs apart,
  // out of order. Refreshed each second, so a stepped wall clock shows within a second.
  TimeBase time_base() const {
    const MonoTime mono = mono_now();
    if (wall_offset_at_ns_ == MonoTime() || mono - wall_offset_at_ns_ > 1000 * kMs) {
      wall_offset_ns_ = Duration(wall_now().ns() - mono.ns());
      wall_offset_at_ns_ = mono;
    }
    return {WallTime::from_ns(mono.ns()) + wall_offset_ns_, mono};
  }

  void emit(json event) {
    const std::string line = to_json_text(event);  // never throws: strings escaped, bad UTF-8 replaced
    if (events_) events_->write(line);
    if (recorder_) recorder_->record_event(wall_now().ns(), event.value("kind", "event"), line);
  }

  void link_event(const char* link, bool up, const std::string& detail) {
    if (up)
      log_->info("{}: up ({})", link, detail);
    else
      log_->warn("{}: down ({})", link, detail);
    emit({{"t", wall_s()}, {"kind", "link"}, {"link", link}, {"up", up}, {"detail", detail}});
  }

  // The module count after the discovery window, then whenever it changes, and "no module yet"
  // every few seconds while none answers (the rig retried forever in silence).
  void schedule_report(Duration after) {
    report_timer_.expires_after(after);
    report_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      const auto s = supervisor_->status();
      std::vector<int> ids;
      for (const auto& m : s.modules) ids.push_back(m.module_id);
      std::sort(ids.begin(), ids.end());
      if (ids != reported_modules_ || !discovery_reported_) {
        discovery_reported_ = true;
        reported_modules_ = ids;
        if (ids.empty()) {
          log_->warn("discovery: no module answers yet on {}", config_.can.url);
        } else {
          const bool short_count = static_cast<int>(ids.size()) < config_.modules.expected;
          log_->log(short_count ? spdlog::level::warn : spdlog::level::info,
                    "discovery: {} modules found ({}), {} expected{}", ids.size(), ids_text(ids),
                    config_.modules.expected,
                    short_count ? ": charging and discharging will be refused" : "");
        }
        emit({{"t", wall_s()},
              {"kind", "module"},
              {"event", "discovered"},
              {"modules", ids},
              {"expected", config_.modules.expected}});
      } else if (ids.empty()) {
        log_->warn("discovery: still no module on {}", config_.can.url);
      }
      schedule_report(ids.empty() ? kNoModuleReportNs : kDiscoveryWindowNs);
    });
  }

  // The rig's CSV row (rig_csv_row.h) once a second.
  void schedule_csv_row() {
    csv_timer_.expires_after(std::chrono::seconds(1));
    csv_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      write_csv_row();
      schedule_csv_row();
    });
  }

  void write_csv_row() {
    RigCsvInputs in;
    for (const auto& m : supervisor_->status().modules) in.modules_found.insert(m.module_id);
    if (!in.modules_found.empty() && first_module_mono_ == MonoTime()) first_module_mono_ = mono_now();
    if (!rig_csv_ready(in.modules_found.size(), config_.modules.expected, first_module_mono_, mono_now(),
                       kDiscoveryWindowNs))
      return;
    in.map = &map_;
    in.latest_values = &latest_values_;
    in.name_pattern = config_.modules.name_pattern;
    in.board = last_board_;
    in.board_converted = config_.recording.csv_board_converted;
    in.inverter = last_inverter_;
    in.rig_flags = rig_flags_;
    in.state = supervisor_->state();
    in.extra_columns = config_.recording.csv_extra_columns;
    const RigCsvRow row = build_rig_csv_row(in);
    if (auto ok = csv_->write(wall_now().ns(), row.columns, row.values); !ok) {
      if (!csv_error_reported_) log_->warn("CSV: {}", ok.error().message);
      csv_error_reported_ = true;
    }
  }

  // ---- stopping ----------------------------------------------------------------------------------

  // SIGINT and SIGTERM stop (safely, see request_stop); SIGHUP re-reads the configuration.
  void wait_for_signals() {
    signals_.async_wait([this](asio::error_code ec, int signal) {
      if (ec) return;
      if (signal == SIGHUP)
        reload_config();
      else
        request_stop(
            signal == SIGINT ? safety::StopOrigin::interrupt_signal : safety::StopOrigin::terminate_signal,
            "");
      wait_for_signals();
    });
  }

  // SIGHUP: the configuration file is checked completely, as at start-up. With errors the edge must
  // not go on guarding with a configuration its operator no longer has: it stops safely, the located
  // errors as the reason. A valid, changed file is reported; it takes effect at the next start (the
  // running guard is not rebuilt under load).
  void reload_config() {
    if (stopping_) return;
    EdgeConfig fresh;
    ConfigCheck check = load_edge_config(config_.source_path, fresh);
    if (check.ok()) check = apply_overrides(fresh, options_.overrides);
    if (check.ok()) check = check_edge_config(fresh);
    if (!check.ok()) {
      const std::string problems = check.to_string();
      log_->error("reload: {} problem{} in {}:\n{}", check.problems.size(),
                  check.problems.size() == 1 ? "" : "s", config_.source_path, problems);
      stopped_for_config_error_ = true;
      request_stop(safety::StopOrigin::configuration_error, problems);
      return;
    }
    const bool changed = fresh.sha256 != config_.sha256;
    if (changed)
      log_->warn("reload: {} is valid but changed (sha256 {}); it takes effect when the edge is restarted",
                 config_.source_path, fresh.sha256);
    else
      log_->info("reload: {} unchanged", config_.source_path);
    emit({{"t", wall_s()},
          {"kind", "operator"},
          {"operator", "reload"},
          {"valid", true},
          {"changed", changed},
          {"config_sha256", fresh.sha256},
          {"text",
           changed ? "configuration " + config_.source_path + " changed and valid; applied at the next start"
                   : "configuration " + config_.source_path + " unchanged"}});
  }

 public:
  // Every stop (SIGTERM, SIGINT, `edge stop`, a configuration error at reload, --duration) is a safe
  // stop, the same as a trip: the supervisor gets a stop request and decides (inverter off at once,
  // the contactors open once |pack current| is below the threshold or after the maximum delay, pump
  // and fan by temperature). The loop keeps reading CAN, the board and the inverter meanwhile, so the
  // current is seen falling. The process leaves once the contactors are commanded open and the board
  // had time to write them, and never later than the maximum delay plus a margin. kill -9 skips all
  // this; then the inverter's heartbeat timeout and the board firmware's fail-safe act.
  void request_stop(safety::StopOrigin origin, const std::string& detail) {
    const double max_delay_s = to_seconds(config_.safety.contactor_max_delay_ns);
    if (stopping_) {
      log_->warn("{}: already stopping (the contactors open within {:.1f} s of the first request)",
                 to_string(origin), max_delay_s);
      return;
    }
    stopping_ = true;
    service_.stopping();
    stop_requested_ns_ = mono_now();
    const safety::Reason reason{safety::RuleKind::stop_request,
                                safety::Level::dangerous,
                                safety::Quantity::cell_voltage,
                                safety::kNoChannel,
                                0,
                                0,
                                0,
                                stop_requested_ns_,
                                static_cast<std::uint8_t>(origin)};
    const std::string text = supervisor_->describe(reason, time_base().clock_at(stop_requested_ns_));
    log_->warn("{}: inverter off, then the contactors open once |I| < {} A (at most {:.1f} s){}{}", text,
               config_.safety.contactor_open_current_a, max_delay_s, detail.empty() ? "" : "\n", detail);
    json event{{"t", time_base().wall_s(stop_requested_ns_)},
               {"kind", "operator"},
               {"operator", "stop_request"},
               {"origin", std::string(to_string(origin))},
               {"text", text}};
    if (!detail.empty()) event["detail"] = detail;
    emit(std::move(event));
    schedule_.stop(text);
    execute(supervisor_->on_stop_request(origin, stop_requested_ns_));
    // The bound: the supervisor's own maximum delay fires first; this only guards the loop itself.
    stop_timer_.cancel();
    stop_timer_.expires_after(
        std::chrono::nanoseconds(config_.safety.contactor_max_delay_ns + kStopMarginNs));
    stop_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      log_->error(
          "stopping: the contactors were not commanded open within the maximum delay; leaving anyway");
      leave();
    });
    after_inputs();  // arms the supervisor's deadline and checks whether the stop is already complete
  }

 private:
  // After every input while stopping: once the supervisor has opened the contactors (SAFE), the
  // board gets time to write the command, then the edge leaves.
  void check_stop_progress() {
    if (!stopping_ || stop_finishing_ || leaving_ || !supervisor_->stop_complete()) return;
    stop_finishing_ = true;
    const double after_ms = static_cast<double>((mono_now() - stop_requested_ns_).count()) / 1e6;
    log_->info("stopping: contactors open {:.1f} ms after the stop request", after_ms);
    emit({{"t", wall_s()},
          {"kind", "operator"},
          {"operator", "stop_complete"},
          {"after_request_ms", after_ms},
          {"text", fmt::format("stop complete: inverter off and contactors open {:.1f} ms after the request",
                               after_ms)}});
    stop_timer_.cancel();
    // The rig's sketch takes a command only once per cycle: wait until the board took the opening
    // (its next line, or the read-back), bounded by three cycles and a margin.
    const Duration bound =
        board_ ? 3 * config_.board.link.writer.cycle_ns + kBoardWriteGraceNs : Duration::zero();
    wait_outputs_then_leave(mono_now() + bound);
  }

  void wait_outputs_then_leave(MonoTime deadline_ns) {
    const bool settled = !board_ || !board_->connected() || board_->outputs_settled();
    if (settled || mono_now() >= deadline_ns) {
      if (!settled) log_->warn("stopping: the board did not take the last output command in time");
      leave();
      return;
    }
    stop_timer_.expires_after(std::chrono::milliseconds(20));
    stop_timer_.async_wait([this, deadline_ns](asio::error_code ec) {
      if (!ec) wait_outputs_then_leave(deadline_ns);
    });
  }

 public:
  // Tears the loop down. The inverter was commanded off by the stop sequence; a last mode-off goes
  // out if it is not confirmed (a link that was down at the trip). The loop keeps running while the
  // inverter's confirmation is awaited (its event arrives on the loop), bounded by a timer; nothing
  // blocks the loop thread.
  void leave() {
    if (leaving_) return;
    leaving_ = true;
    service_.cancel();
    signals_.cancel();
    sync_timer_.cancel();
    deadline_timer_.cancel();
    bus_timer_.cancel();
    schedule_.cancel_timers();
    report_timer_.cancel();
    stop_timer_.cancel();
    csv_timer_.cancel();
    if (control_) control_->close();
    if (bus_) bus_->close();
    if (!inverter_ || inverter_->stats().mode == devices::InverterMode::off) {
      finish_leaving();
      return;
    }
    inverter_->command_off(mono_now());
    stop_timer_.expires_after(std::chrono::nanoseconds(kInverterOffWaitNs));
    stop_timer_.async_wait([this](asio::error_code ec) {
      if (!ec) finish_leaving();
    });
  }

  void finish_leaving() {
    if (left_) return;
    left_ = true;
    stop_timer_.cancel();
    if (inverter_) {
      if (inverter_->stats().mode != devices::InverterMode::off)
        log_->warn("stopping: the inverter did not confirm mode off");
      inverter_->stop();
    }
    if (board_) board_->stop();
    io_.stop();
  }

  void shutdown() {
    leave();
    finish_leaving();  // when the loop no longer runs (a failed start), the wait ends here
    if (csv_) csv_->close();
    if (recorder_) {
      if (auto ok = recorder_->flush(); !ok) log_->warn("recording: {}", ok.error().message);
    }
    // What the sender did not get acknowledged stays undelivered in the recording for the next start.
    if (sender_) sender_->stop();
    if (recorder_) recorder_->close();
    if (events_) events_->flush();
    log_->info("stopped");
  }

  bool left() const { return left_; }
  bool stopped_for_config_error() const { return stopped_for_config_error_; }

 private:
  // The devices the actuator and the schedule command, once opened (null: not configured).
  void connect_devices() {
    actuator_ = Actuator(
        outputs_.get(), inverter_.get(),
        {[this] { schedule_.on_nudge_begin(); }, [this](MonoTime now) { schedule_.on_nudge_end(now); }},
        system_clock());
    schedule_.set_inverter(inverter_.get());
  }

 private:
  EdgeConfig config_;
  EdgeRunOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context& io_;
  asio::signal_set signals_;
  ipc::LoopWatchdog service_{io_};  // systemd: READY=1, then WATCHDOG=1 from this loop (service_notify.h)
  asio::steady_timer sync_timer_, deadline_timer_, bus_timer_, report_timer_, stop_timer_, csv_timer_;
  canopen::SyncProducer sync_;
  EdgeDevices injected_;

  std::optional<safety::Supervisor> supervisor_;
  std::unique_ptr<dbc::DatabaseCodec> codec_;
  ModuleMap map_;
  std::vector<double> decode_buffer_;
  dbc::PresenceMask presence_;
  std::unique_ptr<can::Bus> bus_;
  std::unique_ptr<devices::BoardLink> board_;
  std::unique_ptr<devices::Outputs> outputs_;
  std::unique_ptr<devices::PowerDevice> inverter_;  // the configured model (devices/power_device.h)
  std::unique_ptr<recorder::Recorder> recorder_;
  std::unique_ptr<uplink::Sender> sender_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<recorder::RigCsvWriter> csv_;
  std::vector<std::vector<double>> latest_values_;  // per ModuleMap message: its latest decoded values (CSV)
  bool csv_error_reported_ = false;
  std::unique_ptr<ipc::LineServer> control_;
  ScheduleDriver schedule_;
  Actuator actuator_;
  std::map<std::string, std::uint32_t> record_channels_;

  CanCounters can_;
  can::ControllerCounters controller_;  // from the error frames
  std::array<std::pair<const char*, std::uint64_t>, 7> recorded_can_counters_{};
  bool can_counters_recorded_ = false;
  std::uint64_t retired_dropped_ = 0;
  std::uint64_t retired_overflows_ = 0, retired_restarts_ = 0;  // of buses closed and replaced
  bool bus_open_ = false;  // the bus carries frames (socketcand: after its handshake), not closed
  bool bus_up_ = false;    // for reports: no failure since the last frame
  bool bus_reopen_pending_ = false;
  bool can_error_reported_ = false;
  MonoTime started_mono_{};
  MonoTime armed_deadline_ns_ = safety::kNever;
  const can::Frame* current_frame_ = nullptr;
  MonoTime current_frame_received_ns_{};
  LatencyHistogram frame_latency_;
  LatencyHistogram action_latency_;  // offending frame arrived -> command issued

  // Supervised channels of the devices, by their row in the channel catalogue (devices/channels.h).
  std::array<safety::ChannelId, devices::kBoardChannels.size()> board_channels_ = {
      safety::kNoChannel, safety::kNoChannel, safety::kNoChannel};
  std::array<safety::ChannelId, devices::kPowerChannels.size()> power_channels_ = {
      safety::kNoChannel, safety::kNoChannel, safety::kNoChannel,
      safety::kNoChannel, safety::kNoChannel, safety::kNoChannel};
  std::array<bool, 3> board_in_range_{true, true, true};
  std::uint64_t board_invalid_reported_ = 0;
  std::optional<devices::BoardReading> last_board_;
  std::optional<devices::InverterReadings> last_inverter_;
  bool inverter_link_ok_ = false;
  bool inverter_started_ = false;
  bool autostart_done_ = false;

  std::uint64_t causes_version_seen_ = 0;
  std::map<std::pair<int, std::pair<safety::ChannelId, int>>, safety::Reason> active_causes_;
  std::uint32_t rig_flags_ = 0;   // the rig's violation flags now (bit i: recorder::kRigFlagColumns[i])
  MonoTime first_module_mono_{};  // when the CSV first saw a module (its discovery window)
  std::vector<int> reported_modules_;
  bool discovery_reported_ = false;
  bool stopping_ = false;        // a stop was requested: the supervisor runs the trip's sequence
  bool stop_finishing_ = false;  // the contactors are commanded open: the board gets its write
  bool leaving_ = false;         // tearing down: no reopening, no new work
  bool left_ = false;            // torn down: devices stopped, the loop told to stop
  bool stopped_for_config_error_ = false;
  MonoTime stop_requested_ns_{};
  mutable Duration wall_offset_ns_{};     // time_base(): wall minus monotonic ...
  mutable MonoTime wall_offset_at_ns_{};  // ... as read at this monotonic time
  RateWatch error_storm_{kErrorStormThreshold, kErrorStormWindowNs, kErrorStormRepeatNs};
  std::uint64_t handler_failures_ = 0;  // handlers that threw: bugs, reported
};

// ---- EdgeLoop ------------------------------------------------------------------------------------

EdgeLoop::EdgeLoop(asio::io_context& io, EdgeConfig config, EdgeRunOptions options, EdgeDevices devices)
    : edge_(std::make_unique<Edge>(io, std::move(config), std::move(options), std::move(devices))) {}
EdgeLoop::~EdgeLoop() = default;

Result<void> EdgeLoop::start() { return edge_->start(); }
void EdgeLoop::run() { edge_->run(); }
std::string EdgeLoop::handle_control(std::string_view line) { return edge_->handle_control_guarded(line); }
StatusSnapshot EdgeLoop::snapshot() const { return edge_->snapshot(); }
void EdgeLoop::request_stop() { edge_->request_stop(safety::StopOrigin::operator_command, ""); }
bool EdgeLoop::left() const { return edge_->left(); }
void EdgeLoop::shutdown() { edge_->shutdown(); }
bool EdgeLoop::stopped_for_config_error() const { return edge_->stopped_for_config_error(); }

int run_edge(EdgeConfig config, const EdgeRunOptions& options) {
  asio::io_context io;
  EdgeLoop edge(io, std::move(config), options);
  if (Result<void> started = edge.start(); !started) {
    edge.shutdown();
    return 1;
  }
  edge.run();
  edge.shutdown();
  return edge.stopped_for_config_error() ? 1 : 0;
}

}  // namespace cellguard::edge
