// `cellguard recording export`: a time window of an edge's recording (recorder/recorder.h) as a raw
// CAN log (candump -L, ASC, TRC). Opens the recording read-only, so it runs while the edge writes.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "can/log.h"
#include "cli/commands.h"
#include "cli/output.h"
#include "recorder/log_export.h"
#include "recorder/recorder.h"
#include "store/export.h"

namespace cellguard::cli {
namespace {

struct RecordingExportOptions {
  std::string recording;
  std::string from = "start";
  std::string to = "end";
  std::string format;
  std::string out = "-";
};

// A time: ISO 8601 or Unix seconds (absolute), or relative: start[+D], end[-D], now[-D], with D a
// duration (30s, 5m, 1h, 250ms).
Result<recorder::TimeNs> parse_export_time(const std::string& option, const std::string& text,
                                           std::pair<recorder::TimeNs, recorder::TimeNs> range) {
  auto bad = [&](const std::string& why) {
    return Error(ErrorCode::invalid_argument, option + " " + text + ": " + why);
  };
  for (const char* anchor : {"start", "end", "now"}) {
    const std::string a(anchor);
    if (text.rfind(a, 0) != 0) continue;
    recorder::TimeNs base = a == "start" ? range.first
                            : a == "end" ? range.second
                                         : std::chrono::duration_cast<std::chrono::nanoseconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                               .count();
    const std::string rest = text.substr(a.size());
    if (rest.empty()) return base;
    if (rest[0] != '+' && rest[0] != '-')
      return bad("expected " + a + "+DURATION or " + a + "-DURATION (e.g. " + a + "-5m)");
    auto d = store::parse_duration(rest.substr(1));
    if (!d) return bad("'" + rest.substr(1) + "' is not a duration (30s, 5m, 1h, 250ms)");
    return rest[0] == '+' ? base + *d : base - *d;
  }
  auto t = store::parse_time(text);
  if (!t) {
    return bad(
        "expected ISO 8601 (2026-12-07T04:00:00Z), Unix seconds, or start, end, now with +/-DURATION "
        "(end-5m)");
  }
  return *t;
}

int run_recording_export(const RecordingExportOptions& o) {
  auto fail = [](const std::string& message, int code = 2) {
    std::fprintf(stderr, "cellguard recording export: %s\n", message.c_str());
    return code;
  };
  std::optional<can::LogFormat> format;
  if (!o.format.empty()) {
    format = can::parse_log_format(o.format);
    if (!format || *format == can::LogFormat::candump_console)
      return fail("--format " + o.format + ": unknown log format: candump, asc or trc");
  } else {
    format = o.out == "-" ? std::optional<can::LogFormat>(can::LogFormat::candump_log)
                          : can::log_format_from_extension(o.out);
    if (!format)
      return fail("--out " + o.out +
                  ": cannot tell the format from the extension: give --format candump|asc|trc");
  }
  auto reader = recorder::RecordingReader::open_read_only(o.recording);
  if (!reader) return fail(reader.error().message);
  auto range = reader->time_range();
  if (!range) return fail(range.error().message, 1);
  if (!*range) return fail("recording " + o.recording + ": holds no records yet", 1);
  auto from = parse_export_time("--from", o.from, **range);
  if (!from) return fail(from.error().message);
  auto to = parse_export_time("--to", o.to, **range);
  if (!to) return fail(to.error().message);
  if (*from > *to)
    return fail("--from " + o.from + " (" + store::format_time_utc(*from) + ") is after --to " + o.to + " (" +
                store::format_time_utc(*to) + ")");
  auto output = LogOutput::open(o.out, *format);
  if (!output) return fail(output.error().message);
  auto stats = recorder::export_frames(*reader, *from, *to, (*output)->writer());
  if (!stats) return fail(stats.error().message, 1);
  std::fprintf(stderr, "export: %llu frames from %s to %s as %s (recording holds %s to %s)\n",
               static_cast<unsigned long long>(stats->frames), store::format_time_utc(*from).c_str(),
               store::format_time_utc(*to).c_str(), std::string(can::to_string(*format)).c_str(),
               store::format_time_utc((*range)->first).c_str(),
               store::format_time_utc((*range)->second).c_str());
  if (stats->lost_records > 0) {
    std::fprintf(stderr,
                 "export: %llu frames and samples of this window were dropped by the recording's size/age "
                 "bounds before the server had them\n",
                 static_cast<unsigned long long>(stats->lost_records));
  }
  return 0;
}

}  // namespace

void register_recording(CLI::App& app, Action& action) {
  CLI::App* cmd = app.add_subcommand("recording", "Work with an edge's local recording (recording.sqlite)");
  cmd->require_subcommand(1);
  auto o = std::make_shared<RecordingExportOptions>();
  CLI::App* ex = cmd->add_subcommand(
      "export",
      "Write the raw CAN frames of a time window of a recording as a candump -L, ASC or TRC log "
      "(read-only: works while the edge records)");
  ex->footer(
      "Times: ISO 8601 (2026-12-07T04:00:00Z, 2026-12-07T05:00:00+01:00), Unix seconds (1796616000.5),\n"
      "or relative: start, end (the recording's first and last record), now, each with +/-DURATION\n"
      "(start+30s, end-5m, now-1h). Both ends are included.\n"
      "Examples:\n"
      "  cellguard recording export /var/lib/cellguard-edge/recording.sqlite --from end-5m --out "
      "last5min.log\n"
      "  cellguard recording export rec.sqlite --from 2026-12-07T04:00:00Z --to 2026-12-07T04:01:00Z "
      "--format asc "
      "--out trip.asc");
  ex->add_option("recording", o->recording,
                 "the edge's recording (SQLite file, [recording] path of its configuration)")
      ->required();
  ex->add_option("--from", o->from, "window start")->capture_default_str();
  ex->add_option("--to", o->to, "window end (included)")->capture_default_str();
  ex->add_option(
      "--format", o->format,
      "candump (candump -L), asc (Vector) or trc (PEAK); default: from --out's extension (.log, .asc, "
      ".trc), candump on standard output");
  ex->add_option("--out", o->out, "output file, - for standard output")->capture_default_str();
  ex->callback([o, &action] { action = [o] { return run_recording_export(*o); }; });
}

}  // namespace cellguard::cli
