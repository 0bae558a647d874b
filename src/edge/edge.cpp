#include "edge/edge.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <asio.hpp>
#include <algorithm>
#include <chrono>
#include <span>
#include <cmath>
#include <map>
#include <set>
#include <thread>

#include "can/bus.h"
#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "devices/board_link.h"
#include "devices/inverter_client.h"
#include "devices/outputs.h"
#include "edge/events.h"
#include "edge/latency.h"
#include "edge/module_map.h"
#include "ipc/line_socket.h"
#include "recorder/recorder.h"
#include "recorder/rig_csv.h"
#include "safety/safety.h"
#include "pki/tls.h"
#include "schedule/schedule.h"
#include "uplink/sender.h"

namespace cellguard::edge {
namespace {

// Non-CAN channels of the recording, with their units.
constexpr std::pair<const char*, const char*> kSampleChannels[] = {
    {"board.temp1_c", "degC"},           {"board.temp2_c", "degC"},
    {"board.pressure", "bar"},           {"inverter.battery_voltage_v", "V"},
    {"inverter.dc_link_voltage_v", "V"}, {"inverter.dc_link_current_a", "A"},
    {"inverter.dc_link_power_kw", "kW"}, {"inverter.heatsink_c", "degC"},
    {"inverter.ambient_c", "degC"},      {"safety.state", ""},
    // The board as the rig logged it (its CSV's Ardu_* columns) and the rig's violation flags.
    {"board.temp1_adc", "count"},        {"board.temp2_adc", "count"},
    {"board.pressure_adc", "count"},     {recorder::kRigFlagsChannel, ""}};

// The rig's violation flag (bit of recorder::kRigFlagColumns) a limit on this quantity raises, or -1.
int rig_flag_bit(safety::Quantity quantity) {
  using Q = safety::Quantity;
  switch (quantity) {
    case Q::module_max_temperature:
    case Q::module_min_temperature: return 0;   // pcan_isCMATempVio
    case Q::module_voltage: return 1;           // pcan_isCMAVolVio
    case Q::cell_voltage: return 2;             // pcan_isCellVolVio
    case Q::board_temperature: return 3;        // pcan_isArduTempHigh
    case Q::board_pressure: return 4;           // pcan_isArduPressViolated
    case Q::pack_current: return 5;             // pcan_isModbusCurrentViolated (the inverter's current)
    case Q::inverter_battery_voltage: return 6; // pcan_isModbusVoltageViolated
    default: return -1;                         // pcan_isModbusPowerViolated: no power limit
  }
}

using nlohmann::json;
using safety::TimeNs;
using SteadyClock = std::chrono::steady_clock;

constexpr TimeNs kMs = 1'000'000;
constexpr TimeNs kSecond = 1'000'000'000;
constexpr TimeNs kBusReopenDelayNs = 1 * kSecond;
constexpr TimeNs kDiscoveryWindowNs = 1 * kSecond;  // traffic watched before the first module report
constexpr TimeNs kNoModuleReportNs = 5 * kSecond;    // "no module yet" repeated this often
constexpr std::uint32_t kSdoResponseBase = 0x580;
constexpr std::uint32_t kCanErrBusOff = 0x40;  // linux/can/error.h CAN_ERR_BUSOFF
// The relays of the contactor and precharge circuit, opened together.
constexpr std::array<devices::Output, 3> kContactorRelays = {devices::Output::relay1, devices::Output::relay2,
                                                             devices::Output::relay3};

std::string hex(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "%x", value);
  return text;
}

TimeNs mono_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(SteadyClock::now().time_since_epoch()).count();
}
TimeNs wall_now() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::shared_ptr<spdlog::logger> make_logger() {
  auto logger = std::make_shared<spdlog::logger>("edge", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ edge: %v");
  return logger;
}

devices::Output relay_output(int relay) {
  switch (relay) {
    case 1: return devices::Output::relay1;
    case 2: return devices::Output::relay2;
    default: return devices::Output::relay3;
  }
}

std::string ids_text(const std::vector<int>& ids) {
  std::string text;
  for (int id : ids) {
    if (!text.empty()) text += ',';
    text += std::to_string(id);
  }
  return text;
}

// Counters of the CAN side, for status.
struct CanCounters {
  std::uint64_t frames = 0;
  std::uint64_t module_frames = 0;
  std::uint64_t other_known = 0;
  std::uint64_t unknown = 0;
  std::uint64_t malformed = 0;
  std::uint64_t error_frames = 0;
  std::uint64_t sync_sent = 0;
  std::uint64_t sync_failed = 0;
  std::uint64_t sdo_sent = 0;
  std::uint64_t sdo_responses = 0;
  std::uint64_t sdo_aborts = 0;
  std::uint64_t link_errors = 0;
  std::uint64_t reopens = 0;
  std::uint64_t dropped_closed_buses = 0;  // frames dropped by buses that were closed and replaced
};

class Edge {
 public:
  Edge(EdgeConfig config, const EdgeRunOptions& options)
      : config_(std::move(config)),
        options_(options),
        log_(make_logger()),
        signals_(io_, SIGINT, SIGTERM),
        sync_timer_(io_),
        deadline_timer_(io_),
        bus_timer_(io_),
        schedule_timer_(io_),
        report_timer_(io_),
        stop_timer_(io_),
        csv_timer_(io_) {}

  int run() {
    if (Result<void> started = start(); !started) {
      log_->error("{}", started.error().message);
      shutdown();
      return 1;
    }
    io_.run();
    shutdown();
    return 0;
  }

 private:
  // ---- start-up --------------------------------------------------------------------------------

  Result<void> start() {
    started_mono_ = mono_now();
    log_->info("configuration {} sha256 {}", config_.source_path, config_.sha256);
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
    if (Result<void> ok = load_schedule(); !ok) return ok;
    if (Result<void> ok = open_control(); !ok) return ok;
    open_bus();

    // The rig's start-up state: every output off (rig: relays off, pump/fan off). Through the board
    // this is remembered and sent as soon as the board connects (it is not open yet).
    if (outputs_) {
      using devices::Output;
      if (auto ok = switch_outputs(std::array{Output::pump, Output::fan, Output::relay1, Output::relay2, Output::relay3}, false); !ok)
        log_->debug("outputs: {}", ok.error().message);
    }

    signals_.async_wait([this](asio::error_code ec, int signal) {
      if (ec) return;
      log_->info("signal {}: stopping", signal);
      stop();
    });
    if (options_.duration_s > 0) {
      stop_timer_.expires_after(std::chrono::nanoseconds(static_cast<TimeNs>(options_.duration_s * 1e9)));
      stop_timer_.async_wait([this](asio::error_code ec) {
        if (!ec) stop();
      });
    }
    if (config_.can.sync_period_ns > 0) schedule_sync(mono_now());
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
      const std::string line = ready.dump() + "\n";
      std::fputs(line.c_str(), options_.ready_out);
      std::fflush(options_.ready_out);
    }
    return success();
  }

  Result<void> open_recording() {
    if (config_.recording.path.empty()) return success();
    recorder::RecorderConfig rc;
    rc.path = config_.recording.path;
    rc.max_bytes = config_.recording.max_bytes;
    rc.max_age_ns = config_.recording.max_age_ns;
    // With an uplink, what the server has not acknowledged keeps its events when the bounds strike.
    rc.keep_undelivered_events = config_.uplink.enabled();
    auto opened = recorder::Recorder::open(rc);
    if (!opened) return opened.error();
    recorder_ = std::move(opened.value());
    if (auto text = read_file(config_.can.dbc_path)) (void)recorder_->set_meta("dbc", *text);
    (void)recorder_->set_meta("config_sha256", config_.sha256);
    (void)recorder_->set_meta("edge_id", config_.edge_id);
    for (const auto& [name, unit] : kSampleChannels) {
      auto id = recorder_->channel(name, unit);
      if (!id) return id.error();
      record_channels_[name] = *id;
    }
    // The state the supervisor starts in, so a reader (the server's dashboard, the rig CSV export)
    // knows it before the first change.
    recorder_->record_sample(wall_now(), record_channels_["safety.state"], static_cast<double>(supervisor_->state()));
    recorder_->record_sample(wall_now(), record_channels_[recorder::kRigFlagsChannel], 0);
    log_->info("recording to {}", config_.recording.path);
    return success();
  }

  // The rig's CSV column prefix of a module's signals ("BMU03_"), from modules.name_pattern.
  std::string rig_prefix(int module_id) const {
    std::string prefix = config_.modules.name_pattern;
    char id[8];
    std::snprintf(id, sizeof id, "%02d", module_id);
    if (const auto at = prefix.find("{id}"); at != std::string::npos) prefix.replace(at, 4, id);
    else prefix = std::string("BMU") + id + "_";
    return prefix;
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
    sc.keepalive = std::chrono::milliseconds(u.keepalive_ns / 1'000'000);
    sc.dead_after = std::chrono::milliseconds(u.dead_after_ns / 1'000'000);
    sc.backoff_max = std::chrono::milliseconds(u.backoff_max_ns / 1'000'000);
    sc.hints.module_of = [this](const dbc::Message& message) {
      uplink::ModuleOfMessage m;
      if (const ModuleMessage* mm = map_.find(message.id, message.extended); mm && mm->module_id != 0) {
        m.module = static_cast<std::uint32_t>(mm->module_id);
        m.rig_prefix = rig_prefix(mm->module_id);
      }
      return m;
    };
    sc.hints.rig_columns = {{"board.temp1_adc", "Ardu_Temp1"},       {"board.temp2_adc", "Ardu_Temp2"},
                            {"board.pressure_adc", "Ardu_Press"},    {"inverter.dc_link_power_kw", "modbus_Power"},
                            {"inverter.dc_link_current_a", "modbus_Current"}, {"inverter.battery_voltage_v", "modbus_Voltage"}};
    auto sender = uplink::Sender::start(std::move(sc));
    if (!sender) return sender.error();
    sender_ = std::move(*sender);
    log_->info("uplink to {}:{} ({})", u.host, u.port, u.plaintext ? "plaintext, loopback" : "TLS 1.3, mutual");
    return success();
  }

  // Several outputs in one command (one board line where it fits).
  Result<void> switch_outputs(std::span<const devices::Output> which, bool on) {
    std::array<std::optional<bool>, devices::kOutputCount> states{};
    for (devices::Output output : which) states[static_cast<std::size_t>(output)] = on;
    return outputs_->set_all(states);
  }

  safety::ChannelId add_device_channel(const char* name, safety::Quantity quantity) {
    auto id = supervisor_->add_channel({name, quantity, 0});
    return id ? *id : safety::kNoChannel;  // only fails for module quantities without a module id
  }

  Result<void> open_events() {
    const std::string path = options_.events_path.empty() ? config_.operator_interface.events_path : options_.events_path;
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
    board_ = std::make_unique<devices::BoardLink>(io_, std::move(link), mono_now);
    board_temp1_ = add_device_channel("board.Temp1", safety::Quantity::board_temperature);
    board_temp2_ = add_device_channel("board.Temp2", safety::Quantity::board_temperature);
    board_pressure_ = add_device_channel("board.Press", safety::Quantity::board_pressure);
    board_->on_reading([this](const devices::BoardReading& r) { on_board_reading(r); });
    board_->on_invalid_line([this](std::string_view line, const Error& error) {
      if (++board_invalid_reported_ <= 10 || board_invalid_reported_ % 100 == 0)
        log_->warn("board: invalid line \"{}\": {}", std::string(line.substr(0, 80)), error.message);
    });
    board_->on_connection([this](bool connected, const std::string& detail) {
      link_event("board", connected, detail);
    });
    // What cellguard's board firmware says about itself: its watchdog resets and fail-safe trips.
    board_->on_event([this](const devices::BoardEvent& e) {
      using Kind = devices::BoardEvent::Kind;
      const bool bad = (e.kind == Kind::reset && e.detail == "wdt") || (e.kind == Kind::fail_safe && e.detail == "hb_lost") ||
                       e.kind == Kind::readback_mismatch;
      if (bad) log_->warn("board: {} {}", devices::to_string(e.kind), e.detail);
      else log_->info("board: {} {}", devices::to_string(e.kind), e.detail);
      json event = {{"t", wall_s()}, {"kind", "link"}, {"link", "board"}, {"event", devices::to_string(e.kind)},
                    {"detail", e.detail}};
      if (e.kind == Kind::reset) event["cause"] = e.detail;
      if (e.kind == Kind::reset && e.detail == "wdt") event["watchdog"] = true;
      if (e.kind == Kind::fail_safe && e.detail == "hb_lost") event["message"] = "heartbeat lost: the board opened the relays";
      emit(std::move(event));
    });
    return success();
  }

  Result<void> open_outputs() {
    if (config_.outputs.driver == OutputsSection::Driver::gpio) {
      auto gpio = devices::open_gpio_outputs(config_.outputs.gpio);
      if (!gpio) return gpio.error();
      outputs_ = std::move(gpio.value());
    } else if (board_) {
      outputs_ = devices::make_board_outputs(*board_, config_.outputs.board_pins);
    } else {
      log_->warn("outputs: the board is disabled and the driver is \"board\": pump, fan and relays are not switched");
    }
    return success();
  }

  Result<void> open_inverter() {
    if (!config_.inverter.enabled) return success();
    inverter_ = std::make_unique<devices::InverterClient>(io_, config_.inverter.client, mono_now);
    inverter_battery_ = add_device_channel("inverter.battery_voltage", safety::Quantity::inverter_battery_voltage);
    inverter_dc_link_ = add_device_channel("inverter.dc_link_voltage", safety::Quantity::dc_link_voltage);
    inverter_current_ = add_device_channel("inverter.dc_link_current", safety::Quantity::pack_current);
    inverter_->on_readings([this](const devices::InverterReadings& r) { on_inverter_readings(r); });
    inverter_->on_link([this](bool ok, TimeNs, const std::string& detail) {
      if (ok != inverter_link_ok_) {
        inverter_link_ok_ = ok;
        link_event("inverter", ok, detail);
      }
      execute(supervisor_->on_inverter_link(ok, mono_now()));
      after_inputs();
    });
    inverter_->on_event([this](const devices::InverterEvent& e) { on_inverter_event(e); });
    return success();
  }

  Result<void> load_schedule() {
    if (config_.schedule.path.empty()) return success();
    auto loaded = schedule::load_schedule(config_.schedule.path);
    if (!loaded) return loaded.error();
    log_->info("schedule {}: {} steps, {} mode, {} at the end", config_.schedule.path, loaded->steps.size(),
               to_string(loaded->kind), config_.schedule.at_end == schedule::EndAction::loop ? "loop" : "stop");
    runner_.emplace(std::move(loaded.value()), config_.schedule.at_end);
    readback_.emplace(config_.schedule.readback_tolerance, config_.schedule.readback_timeout_ns);
    return success();
  }

  Result<void> open_control() {
    ipc::LineServerOptions o;
    o.path = !options_.socket_path.empty()                         ? options_.socket_path
             : !config_.operator_interface.socket_path.empty()    ? config_.operator_interface.socket_path
                                                                   : ipc::default_socket_path("cellguard-edge-" + config_.edge_id + ".sock");
    auto server = ipc::LineServer::start(io_, o, [this](std::string_view line) { return handle_control(line); });
    if (!server) return server.error();
    control_ = std::move(server.value());
    return success();
  }

  // ---- CAN ---------------------------------------------------------------------------------------

  void open_bus() {
    if (bus_) {
      retired_dropped_ += bus_->counters().frames_dropped;
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
    bus_->on_receive([this](const can::Frame& frame) { on_frame(frame); });
    bus_->on_error([this](const Error& error) {
      ++can_.link_errors;
      can_error(error.message);
      if (bus_ && bus_->is_closed()) schedule_bus_reopen();
    });
    bus_->on_ready([this] {
      bus_open_ = true;
      bus_up_ = true;
      link_event("can", true, bus_->describe());
    });
  }

  // A failure after the fact. A closed bus is reopened (schedule_bus_reopen); an open one (SocketCAN
  // interface down, bus-off) stays open and counts as up again with its next frame.
  void can_error(const std::string& message) {
    if (bus_up_ || !can_error_reported_) log_->warn("can: {}", message);
    can_error_reported_ = true;
    if (bus_up_) link_event("can", false, message);
    bus_up_ = false;
    if (bus_ && bus_->is_closed()) bus_open_ = false;
  }

  void schedule_bus_reopen() {
    if (stopping_ || bus_reopen_pending_) return;
    bus_reopen_pending_ = true;
    bus_timer_.expires_after(std::chrono::nanoseconds(kBusReopenDelayNs));
    bus_timer_.async_wait([this](asio::error_code ec) {
      bus_reopen_pending_ = false;
      if (ec || stopping_) return;
      ++can_.reopens;
      open_bus();
    });
  }

  void schedule_sync(TimeNs due) {
    next_sync_ns_ = due;
    sync_timer_.expires_at(SteadyClock::time_point(std::chrono::nanoseconds(due)));
    sync_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      send_sync();
      // Fixed rate: the next SYNC is due one period after this one was due, not after it went out.
      TimeNs next = next_sync_ns_ + config_.can.sync_period_ns;
      const TimeNs now = mono_now();
      if (next < now) next = now + config_.can.sync_period_ns;  // we fell behind (suspended?): skip, do not burst
      schedule_sync(next);
    });
  }

  void send_sync() {
    if (!bus_ || !bus_open_) {
      ++can_.sync_failed;
      return;
    }
    can::Frame sync;
    sync.id = config_.can.sync_id;
    if (config_.can.sync_counter) {
      sync_counter_ = sync_counter_ >= 240 ? 1 : sync_counter_ + 1;  // CiA 301: counter 1..240
      sync.size = 1;
      sync.data[0] = static_cast<std::uint8_t>(sync_counter_);
    }
    if (auto sent = bus_->send(sync); !sent) {
      ++can_.sync_failed;
      return;
    }
    ++can_.sync_sent;
    if (recorder_) {
      sync.timestamp_ns = wall_now();
      recorder_->record_frame(sync);
    }
    execute(supervisor_->on_sync_sent(mono_now()));
    after_inputs();
  }

  void on_frame(const can::Frame& frame) {
    const TimeNs received = mono_now();
    ++can_.frames;
    current_frame_ = &frame;
    current_frame_received_ns_ = received;
    if (!bus_up_ && bus_open_ && !frame.error) {
      bus_up_ = true;
      link_event("can", true, "frames again on " + bus_->describe());
    }
    if (frame.error) {
      ++can_.error_frames;
      if ((frame.id & kCanErrBusOff) != 0) can_error("bus-off (error frame class 0x" + hex(frame.id) + ")");
      if (can_.error_frames <= 10 || can_.error_frames % 1000 == 0)
        log_->warn("can: error frame class 0x{:x} ({} so far)", frame.id, can_.error_frames);
    } else if (const ModuleMessage* message = map_.find(frame.id, frame.extended); message == nullptr) {
      ++can_.unknown;
    } else if (message->module_id == 0) {
      ++can_.other_known;
      if (!frame.extended && (frame.id & ~0x7Fu) == kSdoResponseBase) on_sdo_response(frame);
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
          latest.assign(decode_buffer_.begin(), decode_buffer_.begin() + static_cast<std::ptrdiff_t>(message->codec->signal_count()));
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

  void on_sdo_response(const can::Frame& frame) {
    ++can_.sdo_responses;
    const int node = static_cast<int>(frame.id & 0x7F);
    if (frame.size >= 1 && frame.data[0] == 0x80) {
      ++can_.sdo_aborts;
      std::uint32_t code = 0;
      for (int i = 0; i < 4 && 4 + i < frame.size; ++i) code |= std::uint32_t{frame.data[4 + i]} << (8 * i);
      log_->warn("module {}: SDO abort 0x{:08x}", node, code);
      emit({{"t", wall_s()}, {"kind", "module"}, {"module", node}, {"event", "sdo_abort"}, {"abort_code", code}});
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
    const TimeNs now = mono_now();
    execute(supervisor_->on_board_line_valid(now));
    const std::array<std::pair<safety::ChannelId, const devices::Conversion*>, 3> values = {
        {{board_temp1_, &r.temp1_c}, {board_temp2_, &r.temp2_c}, {board_pressure_, &r.pressure}}};
    for (std::size_t i = 0; i < values.size(); ++i) {
      const auto& [channel, conversion] = values[i];
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
      const TimeNs wall = wall_now();
      recorder_->record_sample(wall, record_channels_["board.temp1_c"], r.temp1_c.value);
      recorder_->record_sample(wall, record_channels_["board.temp2_c"], r.temp2_c.value);
      recorder_->record_sample(wall, record_channels_["board.pressure"], r.pressure.value);
      recorder_->record_sample(wall, record_channels_["board.temp1_adc"], static_cast<double>(r.temp1_adc));
      recorder_->record_sample(wall, record_channels_["board.temp2_adc"], static_cast<double>(r.temp2_adc));
      recorder_->record_sample(wall, record_channels_["board.pressure_adc"], static_cast<double>(r.pressure_adc));
    }
    after_inputs();
  }

  void on_inverter_readings(const devices::InverterReadings& r) {
    const TimeNs now = mono_now();
    if (auto d = supervisor_->on_sample(inverter_battery_, now, r.battery_voltage_v)) execute(*d);
    if (auto d = supervisor_->on_sample(inverter_dc_link_, now, r.dc_link_voltage_v)) execute(*d);
    if (auto d = supervisor_->on_sample(inverter_current_, now, r.dc_link_current_a)) execute(*d);
    last_inverter_ = r;
    if (readback_ && readback_->pending()) {
      const double measured = runner_->schedule().kind == schedule::SetpointKind::current_a ? r.dc_link_current_a
                                                                                            : r.dc_link_power_kw;
      if (auto result = readback_->on_measurement(measured, now)) readback_event(*result);
    }
    if (recorder_) {
      const TimeNs wall = wall_now();
      recorder_->record_sample(wall, record_channels_["inverter.battery_voltage_v"], r.battery_voltage_v);
      recorder_->record_sample(wall, record_channels_["inverter.dc_link_voltage_v"], r.dc_link_voltage_v);
      recorder_->record_sample(wall, record_channels_["inverter.dc_link_current_a"], r.dc_link_current_a);
      recorder_->record_sample(wall, record_channels_["inverter.dc_link_power_kw"], r.dc_link_power_kw);
      recorder_->record_sample(wall, record_channels_["inverter.heatsink_c"], r.heatsink_c);
      recorder_->record_sample(wall, record_channels_["inverter.ambient_c"], r.ambient_c);
    }
    after_inputs();
  }

  void on_inverter_event(const devices::InverterEvent& e) {
    using K = devices::InverterEvent::Kind;
    json j{{"t", wall_s()}, {"kind", "link"}, {"link", "inverter"}, {"event", std::string(to_string(e.kind))},
           {"message", e.message}};
    if (e.kind == K::command_written || e.kind == K::command_failed)
      j["after_request_us"] = static_cast<double>(e.time_ns - e.requested_ns) / 1000.0;
    if (e.kind == K::command_failed || e.kind == K::startup_failed || e.kind == K::disconnected)
      log_->warn("inverter: {}", e.message);
    else
      log_->info("inverter: {}", e.message);
    emit(std::move(j));
    if (e.kind == K::startup_done) {
      inverter_started_ = true;
      if (config_.schedule.autostart && runner_ && !autostart_done_) {
        autostart_done_ = true;
        request_schedule_start("autostart");
      }
    }
  }

  // ---- decisions ---------------------------------------------------------------------------------

  // Two passes: first every actuation of the batch (inverter, relays, pump and fan), then the
  // events and logs, so reporting never delays an action.
  void execute(safety::Decisions decisions) {
    if (decisions.empty()) return;
    // Copies: the span dies with the next supervisor call, and reporting may make one. Decisions are
    // rare (most samples decide nothing), so the allocation is off the common path.
    const std::vector<safety::Decision> batch(decisions.begin(), decisions.end());
    std::vector<Acted> acted(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) acted[i] = actuate(batch[i]);
    for (std::size_t i = 0; i < batch.size(); ++i) report(batch[i], acted[i]);
  }

  struct Acted {
    TimeNs at_ns = 0;
    std::string error;  // empty: the command was issued
  };

  Acted actuate(const safety::Decision& d) {
    using K = safety::DecisionKind;
    using devices::Output;
    Acted acted;
    auto issue = [&](Result<void> result) {
      if (!result) acted.error = result.error().message;
    };
    switch (d.kind) {
      case K::inverter_off:
        if (inverter_) inverter_->command_off(mono_now());
        break;
      case K::inverter_nudge_charge:
      case K::inverter_nudge_discharge:
      case K::inverter_hold:
        nudging_ = true;
        if (inverter_) inverter_->command_setpoint(devices::InverterMode::current, d.setpoint_a, mono_now());
        if (readback_) readback_->cancel();  // the schedule's setpoint is not what the inverter runs now
        break;
      case K::inverter_nudge_end:
        nudging_ = false;
        apply_schedule_setpoint(mono_now());
        break;
      case K::contactors_open:
        if (outputs_) issue(switch_outputs(kContactorRelays, false));
        break;
      case K::cooling_on:
      case K::cooling_off:
        if (outputs_) issue(switch_outputs(std::array{Output::pump, Output::fan}, d.kind == K::cooling_on));
        break;
      case K::relay_set:
        if (outputs_) issue(outputs_->set(relay_output(d.relay), d.closed));
        break;
      default:
        break;
    }
    acted.at_ns = mono_now();
    return acted;
  }

  void report(const safety::Decision& d, const Acted& acted) {
    using K = safety::DecisionKind;
    json event = decision_event(*supervisor_, d, time_base());
    if (!acted.error.empty()) event["error"] = acted.error;
    if (d.kind == K::state_changed) {
      event["active_causes"] = causes_json();
      event["reset_possible"] = reset_possible(d.to);
    }
    const bool command = d.kind == K::inverter_off || d.kind == K::contactors_open || d.kind == K::cooling_on ||
                         d.kind == K::cooling_off || d.kind == K::relay_set || d.kind == K::inverter_nudge_charge ||
                         d.kind == K::inverter_nudge_discharge || d.kind == K::inverter_hold;
    if (command && current_frame_ != nullptr) {
      // From the offending frame's arrival at the edge to the command issued (item 11).
      const TimeNs latency = acted.at_ns - current_frame_received_ns_;
      event["latency_us"] = static_cast<double>(latency) / 1000.0;
      event["frame_age_us"] = static_cast<double>(wall_now() - current_frame_->timestamp_ns) / 1000.0;
      event["frame_id"] = current_frame_->id;
      action_latency_.add(latency);
    }
    switch (d.kind) {
      case K::state_changed:
        log_->log(d.to == safety::State::normal ? spdlog::level::info : spdlog::level::warn, "state {} -> {}: {}",
                  to_string(d.from), to_string(d.to), supervisor_->describe(d.reason));
        if (d.to == safety::State::dangerous || d.to == safety::State::safe) stop_schedule("state " + state_name(d.to));
        if (recorder_) recorder_->record_sample(wall_now(), record_channels_["safety.state"], static_cast<double>(d.to));
        break;
      case K::precharge_complete:
        if (schedule_start_pending_) {
          schedule_start_pending_ = false;
          start_schedule_now(mono_now());
        }
        break;
      case K::start_refused:
      case K::precharge_lockout:
        if (schedule_start_pending_) {
          schedule_start_pending_ = false;
          last_refusal_ = supervisor_->describe(d.reason);
        }
        break;
      case K::module_joined:
        log_->info("module {} joined", d.reason.module_id);
        send_startup_sdo(d.reason.module_id);
        break;
      default:
        break;
    }
    if (d.kind != K::state_changed && d.kind != K::module_joined) {
      if (acted.error.empty()) log_->info("{}: {}", to_string(d.kind), supervisor_->describe(d.reason));
      else log_->warn("{} NOT issued ({}): {}", to_string(d.kind), acted.error, supervisor_->describe(d.reason));
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
    for (const auto& cause : supervisor_->active_causes()) list.push_back(reason_json(*supervisor_, cause, time_base()));
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
      std::map<std::pair<int, std::pair<safety::ChannelId, int>>, safety::Reason> now_active;
      std::uint32_t flags = 0;
      for (const auto& cause : supervisor_->active_causes()) {
        now_active[{static_cast<int>(cause.rule), {cause.channel, cause.module_id}}] = cause;
        const bool limit = cause.rule == safety::RuleKind::limit_high || cause.rule == safety::RuleKind::limit_low;
        if (const int bit = rig_flag_bit(cause.quantity); limit && bit >= 0) flags |= 1u << bit;
      }
      // Each limit event carries what is active after it, so the newest one tells a reader (the
      // server's dashboard) the whole picture: which causes remain, whether a reset would pass.
      const json snapshot = causes_json();
      auto limit_event = [&](const char* what, const safety::Reason& reason) {
        json e{{"t", wall_s()}, {"kind", "limit"}, {"event", what}, {"reason", reason_json(*supervisor_, reason, time_base())}};
        e["active_causes"] = snapshot;
        e["reset_possible"] = reset_possible(supervisor_->state());
        emit(std::move(e));
      };
      for (const auto& [key, cause] : now_active) {
        auto before = active_causes_.find(key);
        if (before == active_causes_.end() || before->second.level != cause.level) limit_event("active", cause);
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
        if (recorder_) recorder_->record_sample(wall_now(), record_channels_[recorder::kRigFlagsChannel], static_cast<double>(flags));
      }
    }
    arm_deadline();
  }

  void arm_deadline() {
    const TimeNs deadline = supervisor_->next_deadline_ns();
    if (deadline == armed_deadline_ns_) return;
    armed_deadline_ns_ = deadline;
    if (deadline == safety::kNever) {
      deadline_timer_.cancel();
      return;
    }
    deadline_timer_.expires_at(SteadyClock::time_point(std::chrono::nanoseconds(deadline)));
    deadline_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      armed_deadline_ns_ = safety::kNever;
      execute(supervisor_->tick(mono_now()));
      after_inputs();
    });
  }

  // ---- schedule ----------------------------------------------------------------------------------

  // Starts the schedule: precharge first unless the contactors are already closed.
  std::string request_schedule_start(const std::string& origin) {
    if (!runner_) return "no schedule configured ([schedule] file)";
    if (runner_->position().running) return "";
    if (!inverter_ || !inverter_started_) return "the inverter has not completed its start-up";
    last_refusal_.clear();
    const auto status = supervisor_->status();
    if (status.precharge == safety::PrechargePhase::running) {
      if (status.state == safety::State::dangerous || status.state == safety::State::safe)
        return "state " + state_name(status.state);
      start_schedule_now(mono_now());
      return "";
    }
    schedule_start_pending_ = true;
    emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "schedule_start"}, {"origin", origin}});
    execute(supervisor_->on_start_request(mono_now()));
    after_inputs();
    return last_refusal_;
  }

  void start_schedule_now(TimeNs now) {
    runner_->start(now);
    emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "started"}, {"file", config_.schedule.path}});
    log_->info("schedule started");
    schedule_changed(now);
  }

  void stop_schedule(const std::string& why) {
    schedule_start_pending_ = false;
    if (!runner_ || !runner_->position().running) return;
    runner_->stop(mono_now());
    schedule_timer_.cancel();
    if (readback_) readback_->cancel();
    emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "stopped"}, {"why", why}});
    log_->info("schedule stopped: {}", why);
  }

  void schedule_changed(TimeNs now) {
    const auto& p = runner_->position();
    if (!p.running) {
      emit({{"t", wall_s()}, {"kind", "schedule"}, {"event", "ended"}});
      if (inverter_ && !nudging_) inverter_->command_setpoint(setpoint_mode(), 0, now);
      return;
    }
    emit({{"t", wall_s()},
          {"kind", "schedule"},
          {"event", "step"},
          {"step", p.step},
          {"cycle", p.cycle},
          {"setpoint", p.setpoint},
          {"unit", runner_->schedule().kind == schedule::SetpointKind::current_a ? "A" : "kW"}});
    apply_schedule_setpoint(now);
    schedule_timer_.expires_at(SteadyClock::time_point(std::chrono::nanoseconds(p.next_change_ns)));
    schedule_timer_.async_wait([this](asio::error_code ec) {
      if (ec || !runner_->position().running) return;
      const TimeNs t = mono_now();
      if (runner_->advance(t)) schedule_changed(t);
    });
  }

  devices::InverterMode setpoint_mode() const {
    return runner_ && runner_->schedule().kind == schedule::SetpointKind::power_kw ? devices::InverterMode::power
                                                                                   : devices::InverterMode::current;
  }

  void apply_schedule_setpoint(TimeNs now) {
    if (!inverter_ || nudging_) return;
    if (!runner_ || !runner_->position().running) {
      return;
    }
    const double setpoint = runner_->position().setpoint;
    inverter_->command_setpoint(setpoint_mode(), setpoint, now);
    if (readback_) readback_->expect(setpoint, now);
    arm_readback_timer();
  }

  void arm_readback_timer() {
    if (!readback_ || !readback_->pending()) return;
    auto timer = std::make_shared<asio::steady_timer>(io_);
    timer->expires_at(SteadyClock::time_point(std::chrono::nanoseconds(readback_->deadline_ns() + kMs)));
    timer->async_wait([this, timer](asio::error_code ec) {
      if (ec || !readback_) return;
      if (auto result = readback_->tick(mono_now())) readback_event(*result);
    });
  }

  void readback_event(const schedule::ReadbackResult& r) {
    ++(r.ok ? readback_ok_ : readback_failed_);
    json j{{"t", wall_s()},   {"kind", "schedule"},        {"event", r.ok ? "readback_ok" : "readback_failed"},
           {"expected", r.expected}, {"measured", r.measured}, {"tolerance", r.tolerance},
           {"after_s", static_cast<double>(r.after_ns) / 1e9}};
    if (!r.ok) log_->warn("readback: expected {} ± {}, measured {} after {:.1f} s", r.expected, r.tolerance, r.measured,
                          static_cast<double>(r.after_ns) / 1e9);
    last_readback_ = j;
    emit(std::move(j));
  }

  // ---- operator interface ------------------------------------------------------------------------

  std::string handle_control(std::string_view line) {
    json request = json::parse(line, nullptr, false);
    if (request.is_discarded() || !request.is_object() || !request.contains("cmd") || !request["cmd"].is_string())
      return json{{"ok", false}, {"error", "expected a JSON object with a \"cmd\" string"}}.dump();
    const std::string cmd = request["cmd"];
    const TimeNs now = mono_now();
    if (cmd == "status") return json{{"ok", true}, {"status", status_json()}}.dump();
    if (cmd == "reset") {
      emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "reset_request"}});
      auto decisions = supervisor_->on_operator_reset(now);
      json answer{{"ok", true}};
      for (const auto& d : decisions) {
        if (d.kind == safety::DecisionKind::reset_refused) {
          answer = {{"ok", false}, {"error", "reset refused: " + supervisor_->describe(d.reason)},
                    {"reason", reason_json(*supervisor_, d.reason, time_base())}};
        }
      }
      execute(decisions);
      after_inputs();
      answer["state"] = state_name(supervisor_->state());
      return answer.dump();
    }
    if (cmd == "start") {
      emit({{"t", wall_s()}, {"kind", "operator"}, {"operator", "start_request"}});
      auto decisions = supervisor_->on_start_request(now);
      json answer{{"ok", true}};
      for (const auto& d : decisions) {
        if (d.kind == safety::DecisionKind::start_refused)
          answer = {{"ok", false}, {"error", "start refused: " + supervisor_->describe(d.reason)},
                    {"reason", reason_json(*supervisor_, d.reason, time_base())}};
      }
      execute(decisions);
      after_inputs();
      return answer.dump();
    }
    if (cmd == "schedule") {
      const std::string action = request.value("action", "");
      if (action == "start") {
        const std::string refused = request_schedule_start("operator");
        if (!refused.empty()) return json{{"ok", false}, {"error", "schedule start refused: " + refused}}.dump();
        return json{{"ok", true}, {"running", runner_->position().running}, {"precharging", schedule_start_pending_}}.dump();
      }
      if (action == "stop") {
        stop_schedule("operator");
        if (inverter_ && !nudging_) inverter_->command_setpoint(setpoint_mode(), 0, now);
        return json{{"ok", true}}.dump();
      }
      return json{{"ok", false}, {"error", "schedule: \"action\" must be \"start\" or \"stop\""}}.dump();
    }
    return json{{"ok", false}, {"error", "unknown cmd \"" + cmd + "\" (status, reset, start, schedule)"}}.dump();
  }

  json status_json() {
    const TimeNs now = mono_now();
    const auto s = supervisor_->status();
    const TimeBase tb = time_base();
    json j;
    j["edge_id"] = config_.edge_id;
    j["config"] = config_.source_path;
    j["config_sha256"] = config_.sha256;
    j["uptime_s"] = static_cast<double>(now - started_mono_) / 1e9;
    j["state"] = state_name(s.state);
    j["state_since_s"] = tb.wall_s(s.state_since_ns);
    j["state_reason"] = reason_json(*supervisor_, s.state_reason, tb);
    j["causes"] = json::array();
    for (const auto& c : s.causes) j["causes"].push_back(reason_json(*supervisor_, c, tb));
    json modules = json::array();
    for (const auto& m : s.modules) {
      modules.push_back({{"id", m.module_id},
                         {"age_ms", static_cast<double>(now - m.last_seen_ns) / 1e6},
                         {"missed_sync_cycles", m.missed_sync_cycles},
                         {"level", std::string(to_string(m.level))}});
    }
    j["modules"] = {{"expected", s.expected_module_count}, {"found", modules.size()}, {"list", modules}};
    j["contactors_closed"] = s.contactors_closed;
    j["cooling_on"] = s.cooling_on;
    j["precharge"] = {{"phase", std::string(to_string(s.precharge))}, {"attempts", s.precharge_attempts}};
    const auto bus_counters = bus_ ? bus_->counters() : can::BusCounters{};
    j["can"] = {{"url", config_.can.url},
                {"connected", bus_up_},
                {"frames", can_.frames},
                {"module_frames", can_.module_frames},
                {"other_known", can_.other_known},
                {"unknown", can_.unknown},
                {"malformed", can_.malformed},
                {"error_frames", can_.error_frames},
                {"dropped", bus_counters.frames_dropped + retired_dropped_},
                {"sync_sent", can_.sync_sent},
                {"sync_failed", can_.sync_failed},
                {"sdo_sent", can_.sdo_sent},
                {"sdo_responses", can_.sdo_responses},
                {"sdo_aborts", can_.sdo_aborts},
                {"link_errors", can_.link_errors},
                {"reopens", can_.reopens}};
    if (board_) {
      const auto b = board_->stats();
      j["board"] = {{"device", config_.board.link.device}, {"connected", b.connected},   {"lines_valid", b.lines_valid},
                    {"lines_invalid", b.lines_invalid},      {"lines_overlong", b.lines_overlong},
                    {"opens", b.opens},                      {"disconnects", b.disconnects},
                    {"checksum_errors", b.checksum_errors},  {"extension", b.extension},
                    {"firmware", b.firmware},                {"fail_safe", b.fail_safe},
                    {"heartbeats_sent", b.heartbeats_sent},  {"readbacks_ok", b.readbacks_ok},
                    {"readback_mismatches", b.readback_mismatches}, {"board_resets", b.board_resets},
                    {"watchdog_resets", b.watchdog_resets}};
      if (last_board_)
        j["board"]["last"] = {{"temp1_c", last_board_->temp1_c.value},
                              {"temp2_c", last_board_->temp2_c.value},
                              {"pressure", last_board_->pressure.value},
                              {"age_ms", static_cast<double>(now - last_board_->time_ns) / 1e6}};
    }
    if (outputs_) {
      json o;
      for (std::size_t i = 0; i < devices::kOutputCount; ++i) {
        const auto output = static_cast<devices::Output>(i);
        o[std::string(to_string(output))] = outputs_->commanded(output);
      }
      j["outputs"] = {{"driver", outputs_->describe()}, {"commanded", o}};
    }
    if (inverter_) {
      const auto st = inverter_->stats();
      j["inverter"] = {{"url", config_.inverter.url},
                       {"phase", std::string(to_string(st.phase))},
                       {"transactions", st.transactions},
                       {"timeouts", st.timeouts},
                       {"crc_errors", st.crc_errors},
                       {"exceptions", st.exceptions},
                       {"retries", st.retries},
                       {"reconnects", st.reconnects},
                       {"heartbeats", st.heartbeats},
                       {"consecutive_failures", st.consecutive_failures},
                       {"last_error", st.last_error},
                       {"mode", std::string(to_string(st.mode))},
                       {"setpoint", st.setpoint}};
      if (last_inverter_)
        j["inverter"]["last"] = {{"battery_voltage_v", last_inverter_->battery_voltage_v},
                                 {"dc_link_voltage_v", last_inverter_->dc_link_voltage_v},
                                 {"dc_link_current_a", last_inverter_->dc_link_current_a},
                                 {"dc_link_power_kw", last_inverter_->dc_link_power_kw},
                                 {"ready", last_inverter_->ready},
                                 {"age_ms", static_cast<double>(now - last_inverter_->time_ns) / 1e6}};
    }
    if (runner_) {
      const auto& p = runner_->position();
      j["schedule"] = {{"file", config_.schedule.path},
                       {"steps", runner_->schedule().steps.size()},
                       {"running", p.running},
                       {"precharging", schedule_start_pending_},
                       {"step", p.step},
                       {"cycle", p.cycle},
                       {"setpoint", p.setpoint},
                       {"nudging", nudging_},
                       {"readback_ok", readback_ok_},
                       {"readback_failed", readback_failed_}};
      if (!last_readback_.is_null()) j["schedule"]["last_readback"] = last_readback_;
    }
    if (recorder_) {
      const auto r = recorder_->stats();
      j["recording"] = {{"path", config_.recording.path},   {"records_committed", r.records_committed},
                        {"records_dropped", r.records_dropped}, {"blocks", r.blocks_committed},
                        {"blocks_deleted", r.blocks_deleted}, {"file_bytes", r.file_bytes},
                        {"last_error", r.last_error}};
    }
    if (sender_) {
      const auto u = sender_->stats();
      j["uplink"] = {{"server", config_.uplink.host + ":" + std::to_string(config_.uplink.port)},
                     {"connected", u.connected}, {"connects", u.connects}, {"connect_failures", u.connect_failures},
                     {"disconnects", u.disconnects}, {"batches_sent", u.batches_sent}, {"batches_acked", u.batches_acked},
                     {"live_sent", u.live_sent}, {"backlog_sent", u.backlog_sent}, {"samples_sent", u.samples_sent},
                     {"bytes_sent", u.bytes_sent}, {"backlog_batches", u.backlog_batches},
                     {"lost_records", u.lost_records}, {"last_acked_seq", u.last_acked_seq}, {"last_error", u.last_error}};
    }
    j["latency"] = {{"frame_handling", frame_latency_.to_json()}, {"frame_to_action", action_latency_.to_json()}};
    j["events_dropped"] = events_ ? events_->dropped() : 0;
    return j;
  }

  // ---- events and reports ------------------------------------------------------------------------

  TimeBase time_base() const { return {wall_now(), mono_now()}; }
  static double wall_s() { return static_cast<double>(wall_now()) / 1e9; }

  void emit(json event) {
    const std::string line = event.dump();
    if (events_) events_->write(line);
    if (recorder_) recorder_->record_event(wall_now(), event.value("kind", "event"), line);
  }

  void link_event(const char* link, bool up, const std::string& detail) {
    if (up) log_->info("{}: up ({})", link, detail);
    else log_->warn("{}: down ({})", link, detail);
    emit({{"t", wall_s()}, {"kind", "link"}, {"link", link}, {"up", up}, {"detail", detail}});
  }

  // The module count after the discovery window, then whenever it changes, and "no module yet"
  // every few seconds while none answers (the rig retried forever in silence).
  void schedule_report(TimeNs after) {
    report_timer_.expires_after(std::chrono::nanoseconds(after));
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
          log_->log(short_count ? spdlog::level::warn : spdlog::level::info, "discovery: {} modules found ({}), {} expected{}",
                    ids.size(), ids_text(ids), config_.modules.expected,
                    short_count ? ": charging and discharging will be refused" : "");
        }
        emit({{"t", wall_s()}, {"kind", "module"}, {"event", "discovered"}, {"modules", ids},
              {"expected", config_.modules.expected}});
      } else if (ids.empty()) {
        log_->warn("discovery: still no module on {}", config_.can.url);
      }
      schedule_report(ids.empty() ? kNoModuleReportNs : kDiscoveryWindowNs);
    });
  }

  // The rig's wide CSV record (recording.csv_dir), once a second, in the rig's layout
  // (seed/sample-record-log.csv): BMUnn_<signal> for every decoded signal of every module found
  // (sorted by name, as the rig wrote them), the board (ADC counts unless csv_board = "converted"),
  // the inverter, the pcan_is* flags, warning, dangerous (CurrentState with csv_extra_columns).
  void schedule_csv_row() {
    csv_timer_.expires_after(std::chrono::seconds(1));
    csv_timer_.async_wait([this](asio::error_code ec) {
      if (ec) return;
      write_csv_row();
      schedule_csv_row();
    });
  }

  void write_csv_row() {
    std::vector<std::pair<std::string, recorder::CsvValue>> row;
    std::set<int> known;
    for (const auto& m : supervisor_->status().modules) known.insert(m.module_id);
    // No file before the modules are found (all expected, or the discovery window since the first):
    // a file with the board alone and then another with the modules is a stray for the lab's tools.
    if (known.empty()) return;
    if (first_module_mono_ == 0) first_module_mono_ = mono_now();
    if (known.size() < static_cast<std::size_t>(config_.modules.expected) &&
        mono_now() - first_module_mono_ < kDiscoveryWindowNs)
      return;
    const auto& messages = map_.messages();
    for (std::size_t i = 0; i < messages.size(); ++i) {
      const ModuleMessage& message = messages[i];
      if (message.module_id == 0 || known.count(message.module_id) == 0) continue;
      if (latest_values_[i].empty()) continue;  // not received: the rig logged decoded signals only
      const std::string prefix = rig_prefix(message.module_id);
      const auto& signals = message.codec->message().signals;
      for (std::size_t k = 0; k < signals.size(); ++k) {
        recorder::CsvValue value;
        if (k < latest_values_[i].size()) {
          const double v = latest_values_[i][k];
          const bool integral = signals[k].scale == std::floor(signals[k].scale) &&
                                signals[k].offset == std::floor(signals[k].offset) && v == std::floor(v) &&
                                std::fabs(v) < 9e15;
          if (integral) value = static_cast<std::int64_t>(v);
          else value = v;
        }
        row.emplace_back(prefix + signals[k].name, value);
      }
    }
    std::sort(row.begin(), row.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    auto add = [&row](const char* name, recorder::CsvValue v) { row.emplace_back(name, std::move(v)); };
    const bool have_board = last_board_.has_value();
    auto board = [&](int adc, double converted) {
      if (!have_board) return recorder::CsvValue();
      return config_.recording.csv_board_converted ? recorder::CsvValue(converted) : recorder::CsvValue(std::int64_t{adc});
    };
    add("Ardu_Press", have_board ? board(last_board_->pressure_adc, last_board_->pressure.value) : recorder::CsvValue());
    add("Ardu_Temp1", have_board ? board(last_board_->temp1_adc, last_board_->temp1_c.value) : recorder::CsvValue());
    add("Ardu_Temp2", have_board ? board(last_board_->temp2_adc, last_board_->temp2_c.value) : recorder::CsvValue());
    const bool have_inverter = last_inverter_.has_value();
    add("modbus_Power", have_inverter ? recorder::CsvValue(last_inverter_->dc_link_power_kw) : recorder::CsvValue());
    add("modbus_Current", have_inverter ? recorder::CsvValue(last_inverter_->dc_link_current_a) : recorder::CsvValue());
    add("modbus_Voltage", have_inverter ? recorder::CsvValue(last_inverter_->battery_voltage_v) : recorder::CsvValue());
    for (std::size_t i = 0; i < recorder::kRigFlagCount; ++i) add(recorder::kRigFlagColumns[i], ((rig_flags_ >> i) & 1u) != 0);
    const safety::State state = supervisor_->state();
    add("warning", state == safety::State::warning);
    add("dangerous", state == safety::State::dangerous || state == safety::State::safe);
    if (config_.recording.csv_extra_columns) add("CurrentState", state_name(state));
    std::vector<std::string> columns;
    std::vector<recorder::CsvValue> values;
    columns.reserve(row.size());
    values.reserve(row.size());
    for (auto& [name, value] : row) {
      columns.push_back(std::move(name));
      values.push_back(std::move(value));
    }
    if (auto ok = csv_->write(wall_now(), columns, values); !ok) {
      if (!csv_error_reported_) log_->warn("CSV: {}", ok.error().message);
      csv_error_reported_ = true;
    }
  }

  // The guard is going away (SIGTERM, --duration): leave the rig safe first. The inverter goes to
  // mode off and the contactors open (the heartbeat would stop the converter anyway, but only after
  // its timeout, and the board keeps its relays as last commanded). kill -9 skips this; then the
  // inverter's heartbeat timeout is the fail-safe.
  void stop() {
    if (stopping_) return;
    stopping_ = true;
    signals_.cancel();
    sync_timer_.cancel();
    deadline_timer_.cancel();
    bus_timer_.cancel();
    schedule_timer_.cancel();
    report_timer_.cancel();
    stop_timer_.cancel();
    csv_timer_.cancel();
    if (control_) control_->close();
    if (bus_) bus_->close();
    bool leaving_safe = false;
    if (inverter_ && inverter_->stats().mode != devices::InverterMode::off) {
      inverter_->command_off(mono_now());
      leaving_safe = true;
    }
    if (outputs_ && std::any_of(kContactorRelays.begin(), kContactorRelays.end(),
                                [this](devices::Output relay) { return outputs_->commanded(relay); })) {
      if (auto ok = switch_outputs(kContactorRelays, false); !ok) log_->warn("stopping: contactors: {}", ok.error().message);
      leaving_safe = true;
    }
    if (!leaving_safe) {
      finish_stop();
      return;
    }
    log_->info("stopping: inverter off and contactors open before leaving");
    // Let the loop write the board command; the inverter's thread writes mode off meanwhile.
    stop_timer_.expires_after(std::chrono::milliseconds(300));
    stop_timer_.async_wait([this](asio::error_code) { finish_stop(); });
  }

  void finish_stop() {
    if (inverter_) {
      const auto deadline = SteadyClock::now() + std::chrono::seconds(1);
      while (inverter_->stats().mode != devices::InverterMode::off && SteadyClock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      if (inverter_->stats().mode != devices::InverterMode::off) log_->warn("stopping: the inverter did not confirm mode off");
      inverter_->stop();
    }
    if (board_) board_->stop();
    io_.stop();
  }

  void shutdown() {
    stop();
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

  EdgeConfig config_;
  EdgeRunOptions options_;
  std::shared_ptr<spdlog::logger> log_;
  asio::io_context io_;
  asio::signal_set signals_;
  asio::steady_timer sync_timer_, deadline_timer_, bus_timer_, schedule_timer_, report_timer_, stop_timer_, csv_timer_;

  std::optional<safety::Supervisor> supervisor_;
  std::unique_ptr<dbc::DatabaseCodec> codec_;
  ModuleMap map_;
  std::vector<double> decode_buffer_;
  dbc::PresenceMask presence_;
  std::unique_ptr<can::Bus> bus_;
  std::unique_ptr<devices::BoardLink> board_;
  std::unique_ptr<devices::Outputs> outputs_;
  std::unique_ptr<devices::InverterClient> inverter_;
  std::unique_ptr<recorder::Recorder> recorder_;
  std::unique_ptr<uplink::Sender> sender_;
  std::unique_ptr<EventWriter> events_;
  std::unique_ptr<recorder::RigCsvWriter> csv_;
  std::vector<std::vector<double>> latest_values_;  // per ModuleMap message: its latest decoded values (CSV)
  bool csv_error_reported_ = false;
  std::unique_ptr<ipc::LineServer> control_;
  std::optional<schedule::Runner> runner_;
  std::optional<schedule::ReadbackCheck> readback_;
  std::map<std::string, std::uint32_t> record_channels_;

  CanCounters can_;
  std::uint64_t retired_dropped_ = 0;
  bool bus_open_ = false;  // the bus carries frames (socketcand: after its handshake), not closed
  bool bus_up_ = false;    // for reports: no failure since the last frame
  bool bus_reopen_pending_ = false;
  bool can_error_reported_ = false;
  int sync_counter_ = 0;
  TimeNs next_sync_ns_ = 0;
  TimeNs started_mono_ = 0;
  TimeNs armed_deadline_ns_ = safety::kNever;
  const can::Frame* current_frame_ = nullptr;
  TimeNs current_frame_received_ns_ = 0;
  LatencyHistogram frame_latency_;
  LatencyHistogram action_latency_;  // offending frame arrived -> command issued

  safety::ChannelId board_temp1_ = safety::kNoChannel, board_temp2_ = safety::kNoChannel,
                    board_pressure_ = safety::kNoChannel;
  safety::ChannelId inverter_battery_ = safety::kNoChannel, inverter_dc_link_ = safety::kNoChannel,
                    inverter_current_ = safety::kNoChannel;
  std::array<bool, 3> board_in_range_{true, true, true};
  std::uint64_t board_invalid_reported_ = 0;
  std::optional<devices::BoardReading> last_board_;
  std::optional<devices::InverterReadings> last_inverter_;
  bool inverter_link_ok_ = false;
  bool inverter_started_ = false;
  bool autostart_done_ = false;

  bool nudging_ = false;
  bool schedule_start_pending_ = false;
  std::string last_refusal_;
  std::uint64_t readback_ok_ = 0, readback_failed_ = 0;
  json last_readback_;

  std::uint64_t causes_version_seen_ = 0;
  std::map<std::pair<int, std::pair<safety::ChannelId, int>>, safety::Reason> active_causes_;
  std::uint32_t rig_flags_ = 0;
  TimeNs first_module_mono_ = 0;  // when the CSV first saw a module (its discovery window)  // the rig's violation flags now (bit i: recorder::kRigFlagColumns[i])
  std::vector<int> reported_modules_;
  bool discovery_reported_ = false;
  bool stopping_ = false;
};

}  // namespace

int run_edge(EdgeConfig config, const EdgeRunOptions& options) {
  Edge edge(std::move(config), options);
  return edge.run();
}

}  // namespace cellguard::edge
