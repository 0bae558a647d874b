// Exports an edge's stored data: the rig's wide CSV layout (RigCsvWriter, a file per day) or JSON lines.
//
// CSV: one row every `interval` from `from` to `to` (row times from + k * interval), each value the
// last sample at or before the row time; a row is written only when some channel had a sample in the
// interval ending at the row time (so an edge's outage leaves no rows, as the rig wrote none), and
// none before the modules are found (every module that answers within 0.5 s, 5 SYNC cycles, of
// the first one has a value, or those 0.5 s have passed).
// Columns as the rig's file (seed/sample-record-log.csv) and the edge's own CSV (edge.cpp
// write_csv_row): `date`, `time`, the rig columns of every module channel that has had a value,
// sorted by name, then recorder::kRigDeviceColumns (Ardu_Press, Ardu_Temp1, Ardu_Temp2 as raw ADC
// counts from "board.*_adc", or converted from "board.pressure"/"board.temp*_c" with
// board_converted; modbus_Power, modbus_Current, modbus_Voltage), the eight pcan_is* flags (from the
// channel recorder::kRigFlagsChannel), warning, dangerous (from "safety.state": 0 normal, 1 warning,
// 2 dangerous, 3 safe); with extra_columns also CurrentState. Values not recorded are empty. Module
// column names come from Channel::rig_column; channels with Channel::integral are written as integers.
// Files: <out>/Battery-System-database/Battery-System MM-YYYY/log-Battery-System DD-MM-YYYY-HH-MM-SS.csv
//
// JSON lines: one object per sample, lossless, time order:
//   {"time":"2026-12-01T10:00:00.123456789Z","time_ns":N,"channel":"BMU01_pdo1.CMA_Current","value":-25.3}
// (non-finite values as the strings "inf"/"-inf"), and one per event:
//   {"time":"...","time_ns":N,"event":"state","data":{...the event's JSON...}}
//
// Memory: the range is read in windows (default 5 minutes), never whole.
// Thread safety: as the Store's queries.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "store/store.h"

namespace cellguard::store {

enum class ExportFormat { csv, jsonl };

struct ExportOptions {
  std::string edge_id;
  TimeNs from_ns = 0, to_ns = 0;        // inclusive
  TimeNs interval_ns = 1'000'000'000;   // CSV rows
  bool utc = false;                     // CSV dates and file names in UTC (default: local, as the rig)
  bool board_converted = false;         // CSV: Ardu_* as degC and the pressure unit, not ADC counts
  bool extra_columns = false;           // CSV: columns the rig did not log (CurrentState)
  TimeNs window_ns = 300'000'000'000;   // read in windows of this length
  TimeNs lookback_ns = 60'000'000'000;  // CSV: values this far before `from` count for the first rows
  // Budget: at most this many rows/lines (0: no limit), and `cancelled` (when set) is asked before
  // every window and row; either stops the export with an invalid_argument / io_error naming why.
  std::uint64_t max_rows = 0;
  std::function<bool()> cancelled;
};

struct ExportResult {
  std::uint64_t rows = 0;     // CSV rows, or JSON lines
  std::uint64_t samples = 0;  // samples read
  std::uint64_t events = 0;
  std::vector<std::string> files;  // CSV files written
};

// Writes the CSV files under `out_dir`.
Result<ExportResult> export_csv(Store& store, const ExportOptions& options, const std::string& out_dir);
// Writes JSON lines to `out`.
Result<ExportResult> export_jsonl(Store& store, const ExportOptions& options, std::FILE* out);

// "2026-12-01T10:00:00Z", "2026-12-01T10:00:00.5+01:00", "2026-12-01" (no zone = UTC) or Unix
// seconds ("1796119200", "1796119200.25"), to ns since the epoch.
Result<TimeNs> parse_time(std::string_view text);
// "2026-12-01T10:00:00.123456789Z" (fraction only when not zero).
std::string format_time_utc(TimeNs t);
// "1s", "500ms", "2m", "1h", "250us" or plain seconds ("0.5").
Result<TimeNs> parse_duration(std::string_view text);

}  // namespace cellguard::store
