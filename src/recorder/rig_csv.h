// The rig's historical wide CSV log, for the lab's existing spreadsheets and scripts: one row per
// record with `date` (dd-mm-yyyy), `time` (HH:MM:SS), then the given columns; files under
//   <base_dir>/Battery-System MM-YYYY/log-Battery-System DD-MM-YYYY-HH-MM-SS.csv
// (the time of the file's first row), a header row first, a new file whenever the day or the column
// set changes. Values are written as the original Python tool wrote them: integers as integers,
// doubles as Python's repr (47.300000000000004), booleans True/False, missing values empty; lines end
// in CRLF (Python's csv module, which wrote the rig's files).
//
// The layout after the module columns (seed/sample-record-log.csv): the board as raw ADC counts, the
// inverter, the eight pcan_is* violation flags, warning, dangerous (kRigTailColumns). The edge records
// the flags as one bit mask channel (kRigFlagsChannel, bit i = kRigFlagColumns[i]) so the server's
// export writes the same columns as the edge's own CSV.
//
// Not a durable store (the recording is); rows are flushed to the OS after each write.
// Thread safety: one writer per object.
#pragma once

#include <cstdint>
#include <cstdio>
#include <iterator>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "core/result.h"
#include "recorder/recorder.h"

namespace cellguard::recorder {

using CsvValue = std::variant<std::monostate, bool, std::int64_t, double, std::string>;

// The board and inverter columns, in the rig's order.
inline constexpr const char* kRigDeviceColumns[] = {"Ardu_Press",   "Ardu_Temp1",     "Ardu_Temp2",
                                                    "modbus_Power", "modbus_Current", "modbus_Voltage"};
// The rig's violation flags, in its order; bit i of the flags channel is column i.
inline constexpr const char* kRigFlagColumns[] = {"pcan_isCMATempVio",
                                                  "pcan_isCMAVolVio",
                                                  "pcan_isCellVolVio",
                                                  "pcan_isArduTempHigh",
                                                  "pcan_isArduPressViolated",
                                                  "pcan_isModbusCurrentViolated",
                                                  "pcan_isModbusVoltageViolated",
                                                  "pcan_isModbusPowerViolated"};
inline constexpr std::size_t kRigFlagCount = std::size(kRigFlagColumns);
// The recording channel of the flags (a bit mask, recorded whenever it changes).
inline constexpr const char* kRigFlagsChannel = "safety.flags";

class RigCsvWriter {
 public:
  // `utc` = false: dates, times and file names in the local time zone, as the original tool.
  explicit RigCsvWriter(std::string base_dir, bool utc = false);
  ~RigCsvWriter();
  RigCsvWriter(const RigCsvWriter&) = delete;
  RigCsvWriter& operator=(const RigCsvWriter&) = delete;

  // One row at `time_ns` (ns since the Unix epoch). columns.size() must equal values.size().
  Result<void> write(TimeNs time_ns, std::span<const std::string> columns, std::span<const CsvValue> values);
  void close();
  const std::string& current_path() const { return path_; }

  // The text of one value as written (exposed for tests).
  static void append_value(std::string& out, const CsvValue& value);

 private:
  std::string base_dir_;
  bool utc_;
  std::FILE* file_ = nullptr;
  std::string path_;
  std::vector<std::string> columns_;
  int year_ = 0, yday_ = -1;
  std::string line_;
};

}  // namespace cellguard::recorder
