// `cellguard export`: writes an edge's stored data (the server's store) as the rig's CSV files or
// JSON lines. Reads the store while a server writes it (SQLite WAL).
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "store/export.h"
#include "store/store.h"

namespace cellguard::cli {
namespace {

struct ExportCliOptions {
  std::string data;
  std::string edge;
  std::string from;
  std::string to;
  std::string format = "csv";
  std::string interval = "1s";
  std::string out;
  bool utc = false;
  bool board_converted = false;
  bool extra_columns = false;
};

int run_export(const ExportCliOptions& o) {
  auto fail = [](const std::string& message) {
    std::fprintf(stderr, "cellguard export: %s\n", message.c_str());
    return 2;
  };
  auto from = store::parse_time(o.from);
  if (!from) return fail(from.error().message);
  auto to = store::parse_time(o.to);
  if (!to) return fail(to.error().message);
  auto interval = store::parse_duration(o.interval);
  if (!interval) return fail(interval.error().message);
  if (o.format != "csv" && o.format != "jsonl")
    return fail("unknown format '" + o.format + "': csv or jsonl");
  const std::string path = store::sqlite_store_path(o.data);
  if (!std::filesystem::exists(path)) return fail("no store at " + path);
  store::SqliteStoreConfig config;
  config.path = path;
  config.background_compaction = false;
  auto opened = store::open_sqlite_store(config);
  if (!opened) return fail(opened.error().message);
  store::ExportOptions options;
  options.edge_id = o.edge;
  options.from_ns = *from;
  options.to_ns = *to;
  options.interval_ns = *interval;
  options.utc = o.utc;
  options.board_converted = o.board_converted;
  options.extra_columns = o.extra_columns;
  if (o.format == "csv") {
    auto r = store::export_csv(**opened, options, o.out.empty() ? "." : o.out);
    if (!r) return fail(r.error().message);
    std::fprintf(stderr, "export: %llu rows in %zu files from %llu samples\n",
                 static_cast<unsigned long long>(r->rows), r->files.size(),
                 static_cast<unsigned long long>(r->samples));
    for (const auto& f : r->files) std::printf("%s\n", f.c_str());
    return 0;
  }
  std::FILE* out = stdout;
  if (!o.out.empty() && o.out != "-") {
    out = std::fopen(o.out.c_str(), "w");
    if (!out) return fail("cannot create " + o.out);
  }
  auto r = store::export_jsonl(**opened, options, out);
  if (out != stdout) std::fclose(out);
  if (!r) return fail(r.error().message);
  std::fprintf(stderr, "export: %llu samples and %llu events\n", static_cast<unsigned long long>(r->samples),
               static_cast<unsigned long long>(r->events));
  return 0;
}

}  // namespace

void register_export(CLI::App& app, Action& action) {
  auto o = std::make_shared<ExportCliOptions>();
  CLI::App* cmd = app.add_subcommand("export",
                                     "Export an edge's stored data as the rig's CSV files (a file per day) "
                                     "or JSON lines (one object per sample)");
  cmd->add_option("--data", o->data, "the server's data folder (holds store.sqlite)")->required();
  cmd->add_option("--edge", o->edge, "edge id")->required();
  cmd->add_option("--from", o->from, "start, ISO-8601 (2026-12-01T10:00:00Z) or Unix seconds")->required();
  cmd->add_option("--to", o->to, "end (inclusive), ISO-8601 or Unix seconds")->required();
  cmd->add_option("--format", o->format, "csv (the rig's layout) or jsonl")->capture_default_str();
  cmd->add_option("--interval", o->interval, "CSV row interval (1s, 500ms, 1m)")->capture_default_str();
  cmd->add_option("--out", o->out,
                  "csv: the folder that gets Battery-System-database/ (default: .); jsonl: a file (default: "
                  "standard output)");
  cmd->add_flag("--utc", o->utc, "CSV dates, times and file names in UTC (default: local time, as the rig)");
  cmd->add_flag(
      "--board-converted", o->board_converted,
      "CSV: Ardu_Temp1/2 in degC and Ardu_Press in the pressure unit (default: raw ADC counts, as the rig)");
  cmd->add_flag("--extra-columns", o->extra_columns, "CSV: also columns the rig did not log (CurrentState)");
  cmd->callback([o, &action] { action = [o] { return run_export(*o); }; });
}

}  // namespace cellguard::cli
