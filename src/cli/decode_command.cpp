// `cellguard decode`: decodes a CAN log with a DBC database, one line per frame (JSON or text).
#include <sys/stat.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "can/log.h"
#include "cli/commands.h"
#include "cli/decode_csv.h"
#include "cli/output.h"
#include "cli/progress.h"
#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace cellguard::cli {
namespace {

struct DecodeOptions {
  std::string dbc_path;
  std::string input = "-";
  std::string input_format;
  std::string output_format = "json";
  bool known_only = false;
  bool choices = false;
  bool raw = false;
  bool quiet = false;
  bool no_progress = false;
  std::vector<std::string> signals;  // csv columns
  std::string resample;              // csv: interval, e.g. "100ms"
  std::string aggregate = "last";    // csv with --resample: last or mean
};

// Per-message output pieces, prepared on the message's first frame and reused for every later one.
// The JSON text of every value of a scaled signal of at most 8 bits, filled as values appear.
// Formatting a double is most of the cost of a decoded line, and most rig signals (cell voltages,
// SOCs, temperatures) are 8-bit: 256 texts per signal replace it with a copy.
class ValueTextCache {
 public:
  static constexpr std::size_t kMaxBits = 8;
  // The text for raw value `raw`, or empty if not yet known.
  std::string_view find(std::uint64_t raw) const {
    const Entry& e = entries_[raw & 0xFF];
    return {e.text.data(), e.size};
  }
  void store(std::uint64_t raw, std::string_view text) {
    Entry& e = entries_[raw & 0xFF];
    e.size = static_cast<std::uint8_t>(text.size() < e.text.size() ? text.size() : 0);
    std::memcpy(e.text.data(), text.data(), e.size);
  }

 private:
  struct Entry {
    std::array<char, 31> text{};
    std::uint8_t size = 0;
  };
  std::array<Entry, 256> entries_{};
};

struct MessageOutput {
  std::string head;               // ,"name":"X"
  std::vector<std::string> keys;  // "signal": (JSON) or signal name (text)
  std::vector<std::string> units;
  std::vector<dbc::PhysicalValue> values;
  std::vector<std::uint64_t> raw;
  dbc::PresenceMask present;
  std::vector<std::unique_ptr<ValueTextCache>> text_caches;  // per signal; null if not cacheable
  bool uses_text_caches = false;
};

class FrameDecoder {
 public:
  FrameDecoder(const dbc::DatabaseCodec& codec, const DecodeOptions& options, OutputBuffer& out)
      : codec_(codec), options_(options), out_(out), json_(options.output_format == "json") {}

  void write(const can::Frame& frame) {
    const dbc::MessageCodec* message = frame.error ? nullptr : codec_.find(frame.id, frame.extended);
    if (message == nullptr && options_.known_only) return;
    if (json_) {
      write_json(frame, message);
    } else {
      write_text(frame, message);
    }
    out_.maybe_flush();
  }

  std::uint64_t decode_errors() const { return decode_errors_; }

 private:
  MessageOutput& output_for(const dbc::MessageCodec& message) {
    auto [it, inserted] = outputs_.try_emplace(&message);
    MessageOutput& o = it->second;
    if (inserted) {
      const auto& signals = message.message().signals;
      o.head = json_ ? ",\"name\":\"" + json_escape(message.message().name) + "\"" : message.message().name;
      for (std::size_t i = 0; i < signals.size(); ++i) {
        o.keys.push_back(json_ ? "\"" + json_escape(signals[i].name) + "\":" : signals[i].name);
        o.units.push_back(signals[i].unit);
      }
      o.values.resize(signals.size());
      o.raw.resize(signals.size());
      o.present.resize(signals.size());
      o.text_caches.resize(signals.size());
      for (std::size_t i = 0; i < signals.size() && json_ && !options_.raw; ++i) {
        const auto& signal = signals[i];
        const bool integral =
            signal.scale == std::floor(signal.scale) && signal.offset == std::floor(signal.offset);
        if (signal.length <= ValueTextCache::kMaxBits && signal.value_type == dbc::ValueType::integer &&
            !integral) {
          o.text_caches[i] = std::make_unique<ValueTextCache>();
          o.uses_text_caches = true;
        }
      }
    }
    return o;
  }

  void write_timestamp_json(std::int64_t ns) {
    // Seconds and nanoseconds converted apart, so the double is the one nearest the true time.
    const std::int64_t seconds = ns / 1'000'000'000;
    const std::int64_t rest = ns % 1'000'000'000;
    out_.append_json_double(static_cast<double>(seconds) + static_cast<double>(rest) / 1e9);
  }

  const std::string& bus_json(const can::BusName& bus) {
    if (!(bus == last_bus_)) {
      last_bus_ = bus;
      last_bus_json_ = "\"" + json_escape(bus.view()) + "\"";
    }
    return last_bus_json_;
  }

  // Decodes into `o`; false (with the reason in `reason`) if the frame does not fit its message.
  // With --choices the raw values are decoded too, to look up value-table texts.
  bool decode(const dbc::MessageCodec& message, const can::Frame& frame, MessageOutput& o,
              std::string& reason) {
    const auto payload = frame.payload();
    dbc::DecodeStatus status = dbc::DecodeStatus::ok;
    if (options_.raw || options_.choices || o.uses_text_caches) {
      status = message.decode_raw(payload, o.raw.data(), o.present);
    }
    if (status == dbc::DecodeStatus::ok && !options_.raw) {
      status = message.decode_exact(payload, o.values.data(), o.present);
    }
    if (status == dbc::DecodeStatus::ok) return true;
    ++decode_errors_;
    reason = message.describe(status, payload);
    return false;
  }

  // Appends one decoded value: value-table text if asked and present, else the number.
  void append_value(const dbc::MessageCodec& message, const MessageOutput& o, std::size_t i, bool json) {
    const auto& signal = message.message().signals[i];
    if (options_.choices && !signal.value_descriptions.empty()) {
      const auto text = message.choice(i, static_cast<std::int64_t>(o.raw[i]));
      if (!text.empty()) {
        if (json) {
          out_.append_json_string(text);
        } else {
          out_.append(text);
        }
        return;
      }
    }
    if (options_.raw) {
      if (signal.value_type == dbc::ValueType::integer && signal.is_signed) {
        out_.append_int(static_cast<std::int64_t>(o.raw[i]));
      } else {
        out_.append_uint(o.raw[i]);
      }
    } else if (o.values[i].is_integer) {
      out_.append_int128(o.values[i].integer);
    } else if (json) {
      append_cached_json_double(o, i);
    } else {
      out_.append(format_shortest(o.values[i].real));
    }
  }

  void append_cached_json_double(const MessageOutput& o, std::size_t i) {
    ValueTextCache* cache = o.text_caches[i].get();
    if (cache == nullptr) {
      out_.append_json_double(o.values[i].real);
      return;
    }
    std::string_view text = cache->find(o.raw[i]);
    if (text.empty()) {
      char buf[40];
      cache->store(o.raw[i], std::string_view(buf, format_shortest(o.values[i].real, buf, true)));
      text = cache->find(o.raw[i]);
    }
    out_.append(text);
  }

  void write_json(const can::Frame& frame, const dbc::MessageCodec* message) {
    out_.append("{\"t\":");
    write_timestamp_json(frame.timestamp_ns);
    out_.append(",\"bus\":");
    out_.append(bus_json(frame.bus));
    out_.append(",\"id\":");
    out_.append_uint(frame.id);
    out_.append(frame.extended ? ",\"extended\":true" : ",\"extended\":false");
    if (frame.fd) out_.append(",\"fd\":true");
    if (frame.error) {
      out_.append(",\"error_frame\":true}\n");
      return;
    }
    if (message == nullptr) {
      out_.append(",\"unknown\":true}\n");
      return;
    }
    MessageOutput& o = output_for(*message);
    out_.append(o.head);
    if (frame.remote) {
      out_.append(",\"remote\":true}\n");
      return;
    }
    std::string reason;
    if (!decode(*message, frame, o, reason)) {
      out_.append(",\"error\":");
      out_.append_json_string(reason);
      out_.append("}\n");
      return;
    }
    out_.append(",\"signals\":{");
    bool first = true;
    for (std::size_t i = 0; i < o.keys.size(); ++i) {
      if (!o.present.test(i)) continue;
      if (!first) out_.append(',');
      first = false;
      out_.append(o.keys[i]);
      append_value(*message, o, i, true);
    }
    out_.append("}}\n");
  }

  void write_text(const can::Frame& frame, const dbc::MessageCodec* message) {
    // The frame as `candump -L` prints it, then " :: " and the decoded message, like
    // `cantools decode --single-line`.
    char ts[40];
    const std::int64_t seconds = frame.timestamp_ns / 1'000'000'000;
    const std::int64_t rest = frame.timestamp_ns % 1'000'000'000;
    std::snprintf(ts, sizeof ts, "(%lld.%06lld) ", static_cast<long long>(seconds),
                  static_cast<long long>(rest / 1000));
    out_.append(ts);
    out_.append(frame.bus.view());
    char id[16];
    std::snprintf(id, sizeof id, frame.extended ? " %08X" : " %03X", frame.id);
    out_.append(id);
    out_.append(frame.fd ? "##" : "#");
    if (frame.remote) {
      out_.append('R');
    } else {
      out_.append_hex(frame.data.data(), frame.size, false);
    }
    if (frame.error) {
      out_.append(" :: error frame\n");
      return;
    }
    if (message == nullptr) {
      out_.append('\n');
      return;
    }
    MessageOutput& o = output_for(*message);
    out_.append(" :: ");
    out_.append(o.head);
    if (frame.remote) {
      out_.append(" (remote request)\n");
      return;
    }
    std::string reason;
    if (!decode(*message, frame, o, reason)) {
      out_.append(" error: ");
      out_.append(reason);
      out_.append('\n');
      return;
    }
    out_.append('(');
    bool first = true;
    for (std::size_t i = 0; i < o.keys.size(); ++i) {
      if (!o.present.test(i)) continue;
      if (!first) out_.append(", ");
      first = false;
      out_.append(o.keys[i]);
      out_.append(": ");
      append_value(*message, o, i, false);
      if (!options_.raw && !o.units[i].empty()) {
        out_.append(' ');
        out_.append(o.units[i]);
      }
    }
    out_.append(")\n");
  }

  const dbc::DatabaseCodec& codec_;
  const DecodeOptions& options_;
  OutputBuffer& out_;
  const bool json_;
  std::unordered_map<const dbc::MessageCodec*, MessageOutput> outputs_;
  can::BusName last_bus_;
  std::string last_bus_json_ = "\"\"";
  std::uint64_t decode_errors_ = 0;
};

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  if (path == "-" || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  return static_cast<std::uint64_t>(st.st_size);
}

int run_decode(const DecodeOptions& options) {
  auto parsed = dbc::load_dbc(options.dbc_path);
  if (!parsed) {
    std::fprintf(stderr, "cellguard decode: %s\n", parsed.error().message.c_str());
    return 2;
  }
  if (!options.quiet) {
    for (const auto& w : parsed->warnings) std::fprintf(stderr, "warning: %s\n", w.message.c_str());
  }
  const dbc::DatabaseCodec codec(std::move(parsed->database));

  const bool csv = options.output_format == "csv";
  if (!csv && (!options.signals.empty() || !options.resample.empty())) {
    std::fprintf(stderr, "cellguard decode: --signals and --resample need --format csv\n");
    return 2;
  }
  CsvOptions csv_options;
  csv_options.signals = options.signals;
  csv_options.mean = options.aggregate == "mean";
  csv_options.choices = options.choices;
  csv_options.raw = options.raw;
  csv_options.known_only = options.known_only;
  if (!options.resample.empty()) {
    auto interval = parse_interval(options.resample);
    if (!interval) {
      std::fprintf(stderr, "cellguard decode: --resample %s\n", interval.error().message.c_str());
      return 2;
    }
    if (options.signals.empty()) {
      std::fprintf(stderr, "cellguard decode: --resample needs --signals (the columns to align)\n");
      return 2;
    }
    csv_options.resample_ns = *interval;
  } else if (csv_options.mean) {
    std::fprintf(stderr, "cellguard decode: --aggregate mean needs --resample\n");
    return 2;
  }
  if (csv_options.mean && options.choices) {
    std::fprintf(stderr, "cellguard decode: --choices cannot be averaged: use --aggregate last\n");
    return 2;
  }

  std::optional<can::LogFormat> format;
  if (!options.input_format.empty()) {
    format = can::parse_log_format(options.input_format);
    if (!format) {
      std::fprintf(stderr, "cellguard decode: unknown log format '%s'\n", options.input_format.c_str());
      return 2;
    }
  }
  auto reader = can::open_log_reader(options.input, format);
  if (!reader) {
    std::fprintf(stderr, "cellguard decode: %s\n", reader.error().message.c_str());
    return 2;
  }

  OutputBuffer out(stdout);
  FrameDecoder decoder(codec, options, out);
  std::unique_ptr<CsvDecoder> csv_decoder;
  if (csv) {
    auto created = CsvDecoder::create(codec, csv_options, out);
    if (!created) {
      std::fprintf(stderr, "cellguard decode: %s: %s\n", options.dbc_path.c_str(),
                   created.error().message.c_str());
      return 2;
    }
    csv_decoder = std::move(*created);
  }
  Progress progress("decode", file_size(options.input),
                    !options.no_progress && Progress::stderr_is_terminal());
  can::Frame frame;
  std::uint64_t frames = 0;
  std::uint64_t bad_lines = 0;
  constexpr std::uint64_t kReportedBadLines = 10;
  while (true) {
    auto next = (*reader)->next(frame);
    if (!next) {
      if (++bad_lines <= kReportedBadLines && !options.quiet) {
        out.flush();
        std::fprintf(stderr, "warning: %s\n", next.error().message.c_str());
      }
      continue;
    }
    if (!*next) break;
    ++frames;
    if (csv_decoder)
      csv_decoder->write(frame);
    else
      decoder.write(frame);
    if (!out.good()) break;  // the reader of our output went away (e.g. `| head`)
    progress.update((*reader)->bytes_read(), frames);
  }
  if (csv_decoder) csv_decoder->finish();
  out.flush();
  progress.finish((*reader)->bytes_read(), frames);
  if (bad_lines > kReportedBadLines && !options.quiet) {
    std::fprintf(stderr, "warning: %llu further malformed lines not shown\n",
                 static_cast<unsigned long long>(bad_lines - kReportedBadLines));
  }
  const std::uint64_t decode_errors = csv_decoder ? csv_decoder->decode_errors() : decoder.decode_errors();
  if (!options.quiet && csv_decoder && csv_decoder->skipped_intervals() > 0) {
    std::fprintf(stderr, "warning: %llu empty intervals of long gaps in the log left out\n",
                 static_cast<unsigned long long>(csv_decoder->skipped_intervals()));
  }
  if (!options.quiet && (bad_lines > 0 || decode_errors > 0)) {
    std::fprintf(stderr, "decode: %llu frames, %llu malformed lines, %llu failed to decode\n",
                 static_cast<unsigned long long>(frames), static_cast<unsigned long long>(bad_lines),
                 static_cast<unsigned long long>(decode_errors));
  }
  // Input that holds text but not one frame is not a CAN log (or not in this format): an error, even
  // with --quiet, naming the first line that was not a frame.
  const auto skipped = (*reader)->skipped_lines();
  if (frames == 0 && (bad_lines > 0 || skipped.count > 0)) {
    std::fprintf(
        stderr,
        "cellguard decode: %s: no CAN frame in the input as %s: %llu malformed lines, %llu other lines%s%s\n",
        options.input == "-" ? "standard input" : options.input.c_str(),
        std::string(can::to_string((*reader)->format())).c_str(), static_cast<unsigned long long>(bad_lines),
        static_cast<unsigned long long>(skipped.count),
        skipped.first.empty() ? "" : "; the first other line: ", skipped.first.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

void register_decode(CLI::App& app, Action& action) {
  auto options = std::make_shared<DecodeOptions>();
  CLI::App* cmd =
      app.add_subcommand("decode", "Decode a CAN log with a DBC file, one line per frame, or CSV");
  cmd->footer(
      "Input formats: candump -L logs, candump console output, Vector ASC, PEAK TRC (detected).\n"
      "CSV: one row per frame (time,bus,id,message, then a column per signal: all of the DBC, or "
      "--signals),\n"
      "or with --resample one row per interval of the --signals columns (time = interval start; the last\n"
      "value known at its end, or --aggregate mean of the values within it). Headers carry units:\n"
      "'Cell_V_01 [V]', or 'BMU01_pdo3.Cell_V_01 [V]' where a name occurs in several messages.\n"
      "Frames that fail to decode get no CSV row (counted on stderr).\n"
      "Examples: candump -L can0 | cellguard decode --dbc rig.dbc\n"
      "          cellguard decode --dbc rig.dbc run.log --format csv --signals 'BMU0?_pdo3.Cell_V_0*' \\\n"
      "              --resample 100ms --aggregate mean > cells.csv");
  cmd->add_option("--dbc", options->dbc_path, "DBC file")->required()->check(CLI::ExistingFile);
  cmd->add_option("log", options->input, "log file, or - for standard input")->capture_default_str();
  cmd->add_option("--input-format", options->input_format,
                  "candump-log, candump, asc or trc (default: detect)");
  cmd->add_option("--format", options->output_format, "json (one object per line), text, or csv")
      ->check(CLI::IsMember({"json", "text", "csv"}))
      ->capture_default_str();
  cmd->add_option("--signals", options->signals,
                  "csv: the columns: signal names, MESSAGE.SIGNAL, wildcards * and ? (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--resample", options->resample, "csv: one row per interval (100ms, 1s, 250us, 2min)");
  cmd->add_option("--aggregate", options->aggregate, "csv with --resample: last or mean per interval")
      ->check(CLI::IsMember({"last", "mean"}))
      ->capture_default_str();
  cmd->add_flag("--known-only", options->known_only, "omit frames whose id is not in the DBC");
  cmd->add_flag("--choices", options->choices, "print value-table names instead of numbers");
  cmd->add_flag("--raw", options->raw, "print raw signal values (no scaling)");
  cmd->add_flag("-q,--quiet", options->quiet, "no warnings on stderr");
  cmd->add_flag("--no-progress", options->no_progress, "no progress line on stderr");
  cmd->callback([options, &action] { action = [options] { return run_decode(*options); }; });
}

}  // namespace cellguard::cli
