// The sensor board link: pure protocol parts first, then the asio I/O shell (BoardLink).
#include "devices/board_link.h"

#include <algorithm>
#include <array>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <asio/serial_port.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cmath>
#include <deque>
#include <utility>

#include "core/text.h"

namespace cellguard::devices {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view text) {
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

std::optional<double> parse_number(std::string_view text) {
  text = trim(text);
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);  // from_chars rejects '+'
  double value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

// Quoted, escaped and shortened for error messages, so a babbling device can neither make them huge
// nor put control bytes or invalid UTF-8 into logs and JSON.
std::string quoted(std::string_view text) {
  constexpr std::size_t kMax = 24;
  std::string out = "'";
  out.append(escape_untrusted(text.substr(0, kMax)));
  if (text.size() > kMax) out += "...";
  out += "'";
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Thermistor table and conversions

Result<std::vector<ThermistorPoint>> parse_thermistor_table(std::string_view csv, std::string_view origin) {
  struct Row {
    ThermistorPoint point;
    int line = 0;
  };
  const std::string where(origin);
  if (csv.substr(0, 3) == "\xEF\xBB\xBF") csv.remove_prefix(3);
  std::vector<Row> rows;
  bool seen_content = false;
  int line_number = 0;
  while (!csv.empty()) {
    ++line_number;
    const std::size_t newline = csv.find('\n');
    std::string_view line = trim(csv.substr(0, newline));
    csv.remove_prefix(newline == std::string_view::npos ? csv.size() : newline + 1);
    if (line.empty()) continue;
    const bool first_content = !seen_content;
    seen_content = true;
    const std::size_t comma = line.find(',');
    const auto temperature =
        comma == std::string_view::npos ? std::nullopt : parse_number(line.substr(0, comma));
    const auto resistance =
        comma == std::string_view::npos ? std::nullopt : parse_number(line.substr(comma + 1));
    if (!temperature && first_content) continue;  // a header such as `Temperature [°C],Resistance [Ω]`
    if (!temperature || !resistance) {
      return Error(ErrorCode::parse_error,
                   where + ":" + std::to_string(line_number) + ": expected `°C,Ω`, found " + quoted(line));
    }
    if (*resistance <= 0) {
      return Error(ErrorCode::parse_error, where + ":" + std::to_string(line_number) +
                                               ": resistance must be > 0 Ω, found " + quoted(line));
    }
    rows.push_back({{*temperature, *resistance}, line_number});
  }
  if (rows.size() < 2) {
    return Error(ErrorCode::parse_error,
                 where + ": a thermistor table needs at least 2 rows, found " + std::to_string(rows.size()));
  }
  // Rows may come in either order; the conversion wants them by falling temperature.
  std::stable_sort(rows.begin(), rows.end(),
                   [](const Row& a, const Row& b) { return a.point.temperature_c > b.point.temperature_c; });
  const bool rising = rows[1].point.resistance_ohm > rows[0].point.resistance_ohm;
  for (std::size_t i = 1; i < rows.size(); ++i) {
    const Row& prev = rows[i - 1];
    const Row& row = rows[i];
    if (row.point.temperature_c == prev.point.temperature_c) {
      return Error(ErrorCode::parse_error, where + ":" + std::to_string(row.line) + ": temperature " +
                                               std::to_string(row.point.temperature_c) + " °C repeats line " +
                                               std::to_string(prev.line));
    }
    const bool step_rising = row.point.resistance_ohm > prev.point.resistance_ohm;
    if (row.point.resistance_ohm == prev.point.resistance_ohm || step_rising != rising) {
      return Error(ErrorCode::parse_error,
                   where + ":" + std::to_string(row.line) +
                       ": resistance is not strictly monotonic in temperature (compare line " +
                       std::to_string(prev.line) + ")");
    }
  }
  std::vector<ThermistorPoint> table;
  table.reserve(rows.size());
  for (const Row& row : rows) table.push_back(row.point);
  return table;
}

Conversion thermistor_temperature_c(const BoardConversion& conversion, int adc) {
  const std::vector<ThermistorPoint>& table =
      conversion.thermistor.size() >= 2 ? conversion.thermistor : rig_thermistor_table();
  // Ends of the table by resistance (the table may be NTC or PTC).
  const ThermistorPoint& low_r =
      table.front().resistance_ohm < table.back().resistance_ohm ? table.front() : table.back();
  const ThermistorPoint& high_r = &low_r == &table.front() ? table.back() : table.front();

  const double volts = adc / conversion.adc_full_scale * conversion.supply_v;
  if (!(volts < conversion.supply_v)) {
    return {high_r.temperature_c, false};  // open circuit: infinite resistance
  }
  const double r = conversion.series_ohm * volts / (conversion.supply_v - volts);
  if (!(r >= low_r.resistance_ohm)) return {low_r.temperature_c, false};  // shorted sensor (or NaN)
  if (r > high_r.resistance_ohm) return {high_r.temperature_c, false};
  for (std::size_t i = 1; i < table.size(); ++i) {
    const ThermistorPoint& a = table[i - 1];
    const ThermistorPoint& b = table[i];
    const double lo = std::min(a.resistance_ohm, b.resistance_ohm);
    const double hi = std::max(a.resistance_ohm, b.resistance_ohm);
    if (r >= lo && r <= hi) {
      const double fraction = (r - a.resistance_ohm) / (b.resistance_ohm - a.resistance_ohm);
      return {a.temperature_c + fraction * (b.temperature_c - a.temperature_c), true};
    }
  }
  return {high_r.temperature_c, false};  // not reached for a valid table
}

Conversion pressure(const BoardConversion& conversion, int adc) {
  const double volts = adc / conversion.adc_full_scale * conversion.supply_v;
  // One ADC step of slack: a sensor at exactly 0 or full scale quantizes to just outside the band
  // (0.5 V is 102.4 counts), which is not a fault; farther out is (open or shorted sensor).
  const double step_v = conversion.supply_v / conversion.adc_full_scale;
  if (volts < conversion.pressure_min_v) {
    return {0, volts >= conversion.pressure_min_v - step_v};
  }
  if (volts > conversion.pressure_max_v) {
    return {conversion.pressure_full_scale, volts <= conversion.pressure_max_v + step_v};
  }
  const double fraction =
      (volts - conversion.pressure_min_v) / (conversion.pressure_max_v - conversion.pressure_min_v);
  return {fraction * conversion.pressure_full_scale, true};
}

// ---------------------------------------------------------------------------------------------
// Board line

namespace {

enum class Field { temp1, temp2, press, ground_fault };
constexpr std::array<std::string_view, 4> kFieldNames = {"Ardu_Temp1", "Ardu_Temp2", "Ardu_Press",
                                                         "Ardu_GndFault"};

std::optional<Field> field_from_name(std::string_view name) {
  for (std::size_t i = 0; i < kFieldNames.size(); ++i) {
    if (kFieldNames[i] == name) return static_cast<Field>(i);
  }
  return std::nullopt;
}

Error line_error(std::string message) {
  return Error(ErrorCode::parse_error, "board line: " + std::move(message));
}

std::optional<int> parse_hex(std::string_view text, std::size_t max_digits) {
  if (text.empty() || text.size() > max_digits) return std::nullopt;
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc{} || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

bool is_word(std::string_view text) {
  return !text.empty() && text.size() <= 40 && std::all_of(text.begin(), text.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '/' || c == '.';
  });
}

// The extension's text fields; false with the field's name when a value is malformed.
bool read_extension_field(std::string_view name, std::string_view text, BoardExtension& ext,
                          std::string& bad) {
  if (name == "Ardu_Hello" || name == "Ardu_Reset" || name == "Ardu_Fs") {
    if (!is_word(text)) return bad = std::string(name), false;
    (name == "Ardu_Hello"   ? ext.hello
     : name == "Ardu_Reset" ? ext.reset_cause
                            : ext.fail_safe) = std::string(text);
  } else if (name == "Ardu_Out") {
    const auto value = parse_hex(text, 4);
    if (!value) return bad = std::string(name), false;
    ext.outputs = static_cast<std::uint16_t>(*value);
  } else if (name == "Ardu_Hb") {
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || value <= 0) {
      return bad = std::string(name), false;
    }
    ext.heartbeat_timeout_ms = value;
  } else if (name == "Ardu_Re") {
    ext.reply = text == "1";
  }
  return true;
}

}  // namespace

std::uint8_t board_crc8(std::string_view bytes) {
  std::uint8_t crc = 0;
  for (const char c : bytes) {
    crc ^= static_cast<std::uint8_t>(c);
    for (int bit = 0; bit < 8; ++bit) {
      crc = static_cast<std::uint8_t>((crc & 0x80) != 0 ? (crc << 1) ^ 0x07 : crc << 1);
    }
  }
  return crc;
}

std::string_view to_string(BoardEvent::Kind kind) {
  switch (kind) {
    case BoardEvent::Kind::extension:
      return "extension";
    case BoardEvent::Kind::reset:
      return "reset";
    case BoardEvent::Kind::fail_safe:
      return "fail_safe";
    case BoardEvent::Kind::readback_mismatch:
      return "readback_mismatch";
    case BoardEvent::Kind::relays_opened:
      return "relays_opened";
    case BoardEvent::Kind::outputs_verified:
      return "outputs_verified";
    case BoardEvent::Kind::output_fault:
      return "output_fault";
  }
  return "unknown";
}

Result<BoardReading> parse_board_line(std::string_view line, const BoardConversion& conversion,
                                      MonoTime time) {
  line = trim(line);
  if (line.empty()) return line_error("empty line");
  // Extension: the last field is `Ardu_Crc:XX` over every byte before its comma.
  std::optional<BoardExtension> extension;
  if (const std::size_t at = line.rfind(",Ardu_Crc:"); at != std::string_view::npos) {
    const auto sent = parse_hex(trim(line.substr(at + 10)), 2);
    if (!sent) return line_error("Ardu_Crc: " + quoted(line.substr(at + 10)) + " is not two hex digits");
    const std::uint8_t computed = board_crc8(line.substr(0, at));
    if (*sent != computed) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      return line_error(std::string("checksum mismatch: Ardu_Crc ") + quoted(line.substr(at + 10)) +
                        ", computed '" + kHex[computed >> 4] + kHex[computed & 15] + "'");
    }
    line = line.substr(0, at);
    extension.emplace();
  }
  std::array<std::optional<int>, kFieldNames.size()> values;
  while (true) {
    const std::size_t comma = line.find(',');
    const std::string_view field = trim(line.substr(0, comma));
    const std::size_t colon = field.find(':');
    if (colon == std::string_view::npos) {
      return line_error("field " + quoted(field) + " is not `name:value`");
    }
    const std::string_view name = trim(field.substr(0, colon));
    const std::string_view text = trim(field.substr(colon + 1));
    if (const auto known = field_from_name(name)) {
      const std::size_t index = static_cast<std::size_t>(*known);
      const std::string field_name(kFieldNames[index]);
      if (values[index]) return line_error(field_name + " appears twice");
      // Digits only: no sign, no spaces inside, no fraction.
      const bool digits =
          !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
      if (!digits) return line_error(field_name + ": " + quoted(text) + " is not a number");
      int value = 0;
      const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
      const int max = *known == Field::ground_fault ? 1 : 1023;
      if (ec != std::errc{} || end != text.data() + text.size() || value > max) {
        return line_error(field_name + ": " + quoted(text) + " is outside 0.." + std::to_string(max));
      }
      values[index] = value;
    } else if (extension) {
      std::string bad;
      if (!read_extension_field(name, text, *extension, bad))
        return line_error(bad + ": " + quoted(text) + " is malformed");
    }
    // Unknown fields are ignored: a newer sketch may report more.
    if (comma == std::string_view::npos) break;
    line.remove_prefix(comma + 1);
  }
  for (const Field required : {Field::temp1, Field::temp2, Field::press}) {
    if (!values[static_cast<std::size_t>(required)]) {
      return line_error(std::string(kFieldNames[static_cast<std::size_t>(required)]) + " is missing");
    }
  }
  BoardReading reading;
  reading.time = time;
  reading.temp1_adc = *values[static_cast<std::size_t>(Field::temp1)];
  reading.temp2_adc = *values[static_cast<std::size_t>(Field::temp2)];
  reading.pressure_adc = *values[static_cast<std::size_t>(Field::press)];
  reading.temp1_c = thermistor_temperature_c(conversion, reading.temp1_adc);
  reading.temp2_c = thermistor_temperature_c(conversion, reading.temp2_adc);
  reading.pressure = pressure(conversion, reading.pressure_adc);
  if (const auto& fault = values[static_cast<std::size_t>(Field::ground_fault)])
    reading.ground_fault = *fault == 1;
  reading.extension = std::move(extension);
  return reading;
}

void BoardLineSplitter::feed(std::string_view bytes,
                             const std::function<void(std::string_view line)>& on_line) {
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    const std::string_view chunk = bytes.substr(0, newline);
    bytes.remove_prefix(newline == std::string_view::npos ? bytes.size() : newline + 1);
    if (!discarding_) {
      partial_.append(chunk);
      // A CR that ends the line does not count towards the limit.
      const std::size_t length =
          (!partial_.empty() && partial_.back() == '\r') ? partial_.size() - 1 : partial_.size();
      if (length > max_bytes_) {
        ++overlong_;
        discarding_ = true;
        partial_.clear();
      }
    }
    if (newline == std::string_view::npos) break;
    if (!discarding_) {
      std::string_view line = partial_;
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      on_line(line);
    }
    partial_.clear();
    discarding_ = false;
  }
}

std::vector<std::string> format_pin_commands(std::span<const PinWrite> writes) {
  constexpr std::size_t kMaxCommand = 30;  // the board's receive buffer
  std::vector<std::string> commands;
  std::string current;
  for (const PinWrite& write : writes) {
    const std::string pair = std::to_string(write.pin) + (write.on ? ":1" : ":0");
    if (!current.empty() && current.size() + 1 + pair.size() > kMaxCommand) {
      commands.push_back(std::move(current));
      current.clear();
    }
    if (!current.empty()) current += '&';
    current += pair;
  }
  if (!current.empty()) commands.push_back(std::move(current));
  return commands;
}

// ---------------------------------------------------------------------------------------------
// BoardLink

// Everything the asio handlers touch. Handlers hold a shared_ptr to it, so a BoardLink destroyed
// while operations are pending leaves them a live (stopped) object to complete against.
struct BoardLinkCore : std::enable_shared_from_this<BoardLinkCore> {
  BoardLinkCore(asio::io_context& io, BoardLinkConfig link_config, const Clock& link_clock)
      : context(io),
        config(std::move(link_config)),
        clock_(&link_clock),
        port(io),
        reopen_timer(io),
        heartbeat_timer(io),
        splitter(config.max_line_bytes),
        writer(config.writer, config.output_pins, config.relay_pins) {
    if (config.protocol == BoardProtocol::rig_sketch) config.extension = false;
    writer.set_line_synced(config.protocol != BoardProtocol::cellguard);
  }

  asio::io_context& context;
  BoardLinkConfig config;
  const Clock* clock_;  // monotonic time only
  MonoTime clock() const { return clock_->mono_now(); }
  bool pump_posted = false;  // a pump_writer() is queued on the loop
  asio::serial_port port;
  asio::steady_timer reopen_timer;
  asio::steady_timer heartbeat_timer;
  BoardLineSplitter splitter;
  BoardOutputWriter writer;  // the one writer of the outputs
  bool readback_pending = false;
  bool verify_pending = false;  // after the board opened relays or a pin faulted: report when all agree
  MonoTime last_query;          // when the last `?` was queued
  int replies_expected = 0;     // commands sent that the board answers (`T`, `R`, `?`), not yet answered
  std::array<char, 256> read_buffer{};
  std::deque<std::string> write_queue;  // commands not yet handed to the port
  bool writing = false;
  bool running = false;
  bool connected = false;
  // Bumped on every open and close so completions of an earlier connection are ignored.
  std::uint64_t generation = 0;
  std::string last_failure;  // reported once per distinct reason, not on every retry
  BoardLinkStats stats;

  BoardLink::ReadingHandler on_reading;
  BoardLink::InvalidLineHandler on_invalid_line;
  std::vector<BoardLink::ConnectionHandler> on_connection;
  BoardLink::EventHandler on_event;

  void notify_event(BoardEvent::Kind kind, const std::string& detail) {
    if (on_event) on_event(BoardEvent{kind, escape_untrusted(detail, 128)});  // the board's words, escaped
  }

  // Extension: what a line of cellguard's firmware says about the board.
  void on_extension(const BoardExtension& ext) {
    if (!config.extension) return;
    const bool announced = !ext.hello.empty() || !ext.fail_safe.empty();
    const bool newly = !stats.extension && announced;
    if (!ext.hello.empty()) {
      replies_expected = 0;  // what was in flight before the reset is lost (before anything new is sent)
      readback_pending = false;
    }
    if (newly) {
      stats.extension = true;
      writer.set_line_synced(false);  // the firmware parses by grammar: no need to wait for its cycle
      notify_event(BoardEvent::Kind::extension, ext.hello.empty() ? "cellguard board firmware" : ext.hello);
      configure_board();
      schedule_heartbeat();
    }
    if (!ext.hello.empty()) {
      stats.firmware = ext.hello;
      ++stats.board_resets;
      if (ext.reset_cause == "wdt") ++stats.watchdog_resets;
      stats.fail_safe = "off";  // a reset board starts with every output low, not armed
      notify_event(BoardEvent::Kind::reset, ext.reset_cause.empty() ? "unknown" : ext.reset_cause);
      // A reset board has every output low: closed relays were opened by it.
      board_opened_relays(ext.reset_cause.empty() ? "unknown" : ext.reset_cause);
      // It forgot everything: send the commanded outputs again (the read-back checks them).
      writer.forget_sent();
      verify_pending = true;
      // It forgot the timeout; the heartbeats (still running) arm it again.
      if (stats.extension && !newly) configure_board();
    }
    if (!ext.fail_safe.empty() && ext.fail_safe != stats.fail_safe) {
      stats.fail_safe = ext.fail_safe;
      notify_event(BoardEvent::Kind::fail_safe, ext.fail_safe);
      if (ext.fail_safe == "hb_lost" || ext.fail_safe == "gnd_fault") {
        board_opened_relays(ext.fail_safe);
        request_readback();  // confirm they are open as the writer now expects
        verify_pending = true;
      }
    }
    if (ext.reply && replies_expected > 0) --replies_expected;
    // The read-back is the answer to the last `?`: earlier answers reflect earlier commands.
    if (ext.reply && ext.outputs && readback_pending && replies_expected == 0) {
      readback_pending = false;
      const auto result = writer.on_readback(*ext.outputs, clock());
      if (result.mismatch.empty()) {
        ++stats.readbacks_ok;
        if (verify_pending && !writer.pending()) {
          verify_pending = false;
          notify_event(BoardEvent::Kind::outputs_verified, "read-back agrees with every commanded output");
        }
      } else {
        ++stats.readback_mismatches;
        notify_event(
            BoardEvent::Kind::readback_mismatch,
            result.mismatch + (stats.fail_safe == "hb_lost" ? " (board fail-safe tripped: hb_lost)" : ""));
        if (!result.fault.empty()) {
          verify_pending = true;
          notify_event(BoardEvent::Kind::output_fault, result.fault);
        }
      }
      pump_writer();  // re-sends of what read back wrong
    }
  }

  // The board opened its relays by itself: the writer adopts that (it must not close them again on
  // its own); reported when a relay was commanded closed. cause: hb_lost, gnd_fault (its fail-safe)
  // or the reset cause (wdt, por, ext, bod).
  void board_opened_relays(const std::string& cause) {
    bool any_closed = false;
    const MonoTime now = clock();
    for (const int pin : config.relay_pins) {
      const BoardPinState* state = writer.pin(pin);
      if (state == nullptr) continue;
      any_closed = any_closed || state->desired || state->sent.value_or(false);
      writer.board_switched(pin, false, now);
    }
    if (any_closed) notify_event(BoardEvent::Kind::relays_opened, cause);
  }

  void request_readback() {
    if (!stats.extension) return;
    last_query = clock();
    write_queue.push_back("?");
    readback_pending = true;
    ++replies_expected;
    start_write();
  }

  bool closes_relay(const std::string& command) const {
    for (const int pin : config.relay_pins) {
      const std::string pair = std::to_string(pin) + ":1&";
      for (std::size_t at = command.find(pair); at != std::string::npos; at = command.find(pair, at + 1)) {
        if (at == 0 || command[at - 1] == '&') return true;
      }
    }
    return false;
  }

  // Pumps once the current handler is done: every output the caller sets in one go (e.g. the
  // supervisor's decisions of one input: close main positive, open precharge) lands in ONE command.
  void post_pump() {
    if (pump_posted) return;
    pump_posted = true;
    asio::post(context, [self = shared_from_this()] {
      self->pump_posted = false;
      if (self->running) self->pump_writer();
    });
  }

  // Hands the writer's next command (if it may send one now) to the port.
  void pump_writer() {
    if (!connected) return;
    auto command = writer.next_command(clock());
    if (!command) return;
    // After a fail-safe trip the board refuses to close a relay until re-armed: a heartbeat (so the
    // board knows they resumed) and `R`, on this explicit closing command only.
    if (stats.extension && (stats.fail_safe == "hb_lost" || stats.fail_safe == "gnd_fault") &&
        closes_relay(*command)) {
      write_queue.push_back("HR");
      ++stats.heartbeats_sent;
      ++replies_expected;
    }
    write_queue.push_back(std::move(*command));
    start_write();
    request_readback();  // the reply reflects this command
  }

  void configure_board() {
    const int ms = std::clamp(config.heartbeat_timeout_ms, 100, 5000);
    std::string command = "T0000";
    for (int i = 4, v = ms; i >= 1; --i, v /= 10)
      command[static_cast<std::size_t>(i)] = static_cast<char>('0' + v % 10);
    write_queue.push_back(command + "H");  // the first heartbeat arms the board's fail-safe
    ++stats.heartbeats_sent;
    ++replies_expected;
    start_write();
  }

  // On the link's own timer, whatever else the loop is doing (CAN, inverter): a stalled or killed
  // edge stops them, and the board opens the relays.
  void schedule_heartbeat() {
    heartbeat_timer.expires_after(
        std::max<Duration>(config.heartbeat_interval_ns, std::chrono::milliseconds(1)));
    heartbeat_timer.async_wait([self = shared_from_this(), gen = generation](const std::error_code& ec) {
      if (ec || gen != self->generation || !self->running || !self->connected || !self->stats.extension)
        return;
      self->write_queue.push_back("H");
      ++self->stats.heartbeats_sent;
      // A reply lost on the way (a garbled line) would leave the read-back waiting forever: after
      // 1 s without it, ask again.
      if (self->replies_expected > 0 && self->clock() - self->last_query > std::chrono::seconds(1)) {
        self->replies_expected = 0;
        if (self->readback_pending || self->verify_pending) self->request_readback();
      }
      self->start_write();
      self->schedule_heartbeat();
    });
  }

  void notify_connection(bool is_connected, const std::string& detail) {
    // By index over a copy: a listener may register another one or stop the link.
    const auto listeners = on_connection;
    for (const auto& listener : listeners) {
      if (listener) listener(is_connected, detail);
    }
  }

  void try_open() {
    if (!running) return;
    std::error_code ec;
    port.open(config.device, ec);
    const char* step = "open";
    if (!ec) {
      step = "configure";
      port.set_option(asio::serial_port_base::baud_rate(config.baud), ec);
      if (!ec) port.set_option(asio::serial_port_base::character_size(8), ec);
      if (!ec) port.set_option(asio::serial_port_base::parity(asio::serial_port_base::parity::none), ec);
      if (!ec) port.set_option(asio::serial_port_base::stop_bits(asio::serial_port_base::stop_bits::one), ec);
      if (!ec)
        port.set_option(asio::serial_port_base::flow_control(asio::serial_port_base::flow_control::none), ec);
    }
    if (ec) {
      std::error_code ignored;
      port.close(ignored);
      const std::string reason = "board " + config.device + ": cannot " + step + ": " + ec.message();
      if (reason != last_failure) {
        last_failure = reason;
        notify_connection(false, reason);
      }
      schedule_reopen();
      return;
    }
    last_failure.clear();
    ++generation;
    connected = true;
    ++stats.opens;
    splitter = BoardLineSplitter(config.max_line_bytes);  // a partial line of the old connection is void
    stats.extension = false;                              // detected again on this connection
    stats.fail_safe.clear();
    readback_pending = false;
    replies_expected = 0;
    writer.forget_sent();  // a board that reconnects may have reset: everything is sent again
    writer.set_line_synced(config.protocol != BoardProtocol::cellguard);
    start_read();
    notify_connection(true,
                      "board " + config.device + ": opened at " + std::to_string(config.baud) + " baud");
  }

  void schedule_reopen() {
    if (!running) return;
    reopen_timer.expires_after(std::max<Duration>(config.reopen_interval_ns, std::chrono::milliseconds(1)));
    reopen_timer.async_wait([self = shared_from_this()](const std::error_code& ec) {
      if (ec || !self->running || self->connected) return;
      self->try_open();
    });
  }

  void lose(const std::string& reason) {
    if (!connected) return;
    close_port();
    ++stats.disconnects;
    last_failure = reason;
    notify_connection(false, reason);
    schedule_reopen();
  }

  void close_port() {
    ++generation;
    connected = false;
    writing = false;
    write_queue.clear();
    std::error_code ignored;
    heartbeat_timer.cancel();
    port.cancel(ignored);
    port.close(ignored);
  }

  void start_read() {
    port.async_read_some(asio::buffer(read_buffer),
                         [self = shared_from_this(), gen = generation](
                             const std::error_code& ec, std::size_t n) { self->on_read(gen, ec, n); });
  }

  void on_read(std::uint64_t gen, const std::error_code& ec, std::size_t n) {
    if (gen != generation || !running) return;
    if (ec) {
      lose("board " + config.device + ": " +
           (ec == asio::error::eof ? std::string("end of file") : ec.message()) + " (device gone?)");
      return;
    }
    stats.bytes_received += n;
    const MonoTime now = clock();
    const auto on_line = [&](std::string_view line) {
      if (gen != generation) return;  // a handler stopped or closed the link
      writer.on_board_line(now);      // the rig's sketch reads commands in the second after its line
      auto reading = parse_board_line(line, config.conversion, now);
      if (reading) {
        ++stats.lines_valid;
        if (reading->extension) on_extension(*reading->extension);
        if (gen != generation) return;
        if (on_reading) on_reading(*reading);
      } else {
        ++stats.lines_invalid;
        if (reading.error().message.find("checksum mismatch") != std::string::npos) ++stats.checksum_errors;
        if (on_invalid_line) on_invalid_line(line, reading.error());
      }
    };
    // Fed up to each LF at a time, so an overlong line is reported in its place among the others.
    std::string_view bytes(read_buffer.data(), n);
    while (!bytes.empty() && gen == generation) {
      const std::size_t newline = bytes.find('\n');
      const std::size_t take = newline == std::string_view::npos ? bytes.size() : newline + 1;
      const std::uint64_t overlong_before = splitter.overlong_lines();
      splitter.feed(bytes.substr(0, take), on_line);
      bytes.remove_prefix(take);
      if (splitter.overlong_lines() != overlong_before) {
        ++stats.lines_overlong;
        if (on_invalid_line) {
          on_invalid_line({}, Error(ErrorCode::parse_error, "board line: longer than " +
                                                                std::to_string(config.max_line_bytes) +
                                                                " bytes, discarded up to its end"));
        }
      }
    }
    if (gen == generation && running) {
      pump_writer();
      start_read();
    }
  }

  void start_write() {
    if (writing || write_queue.empty() || !connected) return;
    writing = true;
    // The command lives in the handler, so closing the port mid-write frees nothing in use.
    auto command = std::make_shared<std::string>(std::move(write_queue.front()));
    write_queue.pop_front();
    asio::async_write(
        port, asio::buffer(*command),
        [self = shared_from_this(), gen = generation, command](const std::error_code& ec, std::size_t) {
          if (gen != self->generation || !self->running) return;
          self->writing = false;
          if (ec) {
            self->lose("board " + self->config.device + ": write failed: " + ec.message());
            return;
          }
          ++self->stats.commands_sent;
          self->start_write();
        });
  }

  void stop() {
    running = false;
    reopen_timer.cancel();
    heartbeat_timer.cancel();
    close_port();
  }
};

struct BoardLink::Impl {
  std::shared_ptr<BoardLinkCore> core;
};

BoardLink::BoardLink(asio::io_context& io, BoardLinkConfig config, const Clock& clock)
    : impl_(std::make_unique<Impl>(Impl{std::make_shared<BoardLinkCore>(io, std::move(config), clock)})) {}

BoardLink::~BoardLink() {
  auto& core = *impl_->core;
  core.stop();
  // Pending completions may still run (and find the core stopped); they must not call back into
  // objects of the owner, which may be gone.
  core.on_reading = nullptr;
  core.on_invalid_line = nullptr;
  core.on_connection.clear();
  core.on_event = nullptr;
}

void BoardLink::on_reading(ReadingHandler handler) { impl_->core->on_reading = std::move(handler); }
void BoardLink::on_invalid_line(InvalidLineHandler handler) {
  impl_->core->on_invalid_line = std::move(handler);
}
void BoardLink::on_connection(ConnectionHandler handler) {
  impl_->core->on_connection.push_back(std::move(handler));
}
void BoardLink::on_event(EventHandler handler) { impl_->core->on_event = std::move(handler); }

void BoardLink::start() {
  auto& core = *impl_->core;
  if (core.running) return;
  core.running = true;
  core.last_failure.clear();
  core.try_open();
}

bool BoardLink::write_pins(std::span<const PinWrite> writes) {
  auto& core = *impl_->core;
  for (const PinWrite& write : writes) {
    if (core.writer.pin(write.pin) == nullptr) return false;  // never a pin outside the configured set
  }
  for (const PinWrite& write : writes) core.writer.set_desired(write.pin, write.on);
  if (!core.connected) return false;
  core.post_pump();
  return true;
}

void BoardLink::resend_outputs() {
  auto& core = *impl_->core;
  core.writer.forget_sent();
  if (core.stats.extension) core.writer.on_board_line(core.clock());  // no cycle to wait for
  core.post_pump();
}

std::vector<BoardPinState> BoardLink::output_states() const { return impl_->core->writer.pins(); }

bool BoardLink::has_readback() const { return impl_->core->stats.extension; }

bool BoardLink::outputs_settled() const {
  const auto& core = *impl_->core;
  if (!core.connected || core.writer.pending()) return false;
  return core.stats.extension ? !core.readback_pending : core.writer.settled();
}

void BoardLink::stop() { impl_->core->stop(); }

bool BoardLink::connected() const { return impl_->core->connected; }

BoardLinkStats BoardLink::stats() const {
  BoardLinkStats stats = impl_->core->stats;
  stats.connected = impl_->core->connected;
  return stats;
}

const BoardLinkConfig& BoardLink::config() const { return impl_->core->config; }

}  // namespace cellguard::devices
