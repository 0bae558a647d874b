// CAN log files: reading and writing the formats of the field.
//
//   candump_log      `candump -L`:   (1700000000.000250) can0 181#F2A7...   FD: 181##<flags><data>
//   candump_console  `candump can0`: "  can0  181   [8]  F2 A7 ..." and the timestamped `candump -ta` form
//   asc              Vector ASCII log (CANalyzer/CANoe), classic and CAN FD lines
//   trc              PEAK PCAN-View trace, versions 1.1 and 2.x
//
// Readers are pull-based: `next()` fills one Frame at a time, without allocating per frame.
// A malformed line yields an Error naming the source, line number and cause; the reader then moves
// on to the next line, so a caller may report and continue. Lines that are valid but carry no frame
// (headers, comments, status events) are skipped silently.
//
// Conventions of the readers (details in candump.cpp, asc.cpp, trc.cpp):
// - Times keep every digit the text has, down to nanoseconds. Dates without a zone (ASC "date",
//   TRC $STARTTIME, candump -tA) are read as UTC. Without a start date (candump console -td/-tz,
//   ASC without a date, TRC without $STARTTIME) times count from the start of the log.
// - Bus: the candump interface name ("can0"); the ASC channel and TRC bus number as written ("1");
//   "" where the format has none (TRC 1.0/1.1/2.0).
// - Error frames: candump keeps the CAN_ERR_* class bits of the id; ASC ErrorFrame and TRC ER/Error
//   lines give CAN_ERR_BUSERROR (0x80) without data.
// - Lines are limited to 4096 bytes; a longer line is one Error.
// Writers write times to microseconds (what the formats hold) and refuse negative times and frames
// out of range (invalid_argument).
//
// Thread safety: a reader or writer is used by one thread at a time.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "can/frame.h"
#include "core/result.h"

namespace cellguard::can {

enum class LogFormat { candump_log, candump_console, asc, trc };

std::string_view to_string(LogFormat format);
// Parses a format name as given on the command line ("candump", "candump-log", "asc", "trc", ...).
std::optional<LogFormat> parse_log_format(std::string_view name);
// Guesses the format from a file name's extension (.log -> candump_log, .asc, .trc); nullopt if none.
std::optional<LogFormat> log_format_from_extension(std::string_view path);
// Detects the format from the first bytes of a log (at least its first few lines).
std::optional<LogFormat> detect_log_format(std::string_view head);

class LogReader {
 public:
  virtual ~LogReader() = default;
  LogReader() = default;
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // Reads the next frame into `frame`. Returns true if a frame was read, false at the end of the
  // input, or an Error for a malformed line (the next call continues after it).
  virtual Result<bool> next(Frame& frame) = 0;

  virtual LogFormat format() const = 0;
  // Bytes consumed so far (for progress display).
  virtual std::uint64_t bytes_read() const = 0;

  // Lines that were neither a frame nor blank and were skipped as something else the format allows
  // (headers, comments, other events). A file of nothing but such lines is not a log of frames; the
  // first one is named ("FILE:LINE: 'text'", escaped) so a tool can say where it went wrong.
  struct SkippedLines {
    std::uint64_t count = 0;
    std::string first;  // "FILE:LINE: 'text'" of the first, empty if none
  };
  virtual SkippedLines skipped_lines() const { return {}; }
};

// Opens `path` ("-" for standard input) and reads it in `format`, or in the detected format.
// Errors: the file cannot be opened, or its format cannot be recognised.
Result<std::unique_ptr<LogReader>> open_log_reader(const std::string& path,
                                                   std::optional<LogFormat> format = std::nullopt);

// Reads from a stream the caller keeps alive; `source_name` is used in error messages.
Result<std::unique_ptr<LogReader>> make_log_reader(std::istream& in, const std::string& source_name,
                                                   std::optional<LogFormat> format = std::nullopt);

class LogWriter {
 public:
  virtual ~LogWriter() = default;
  LogWriter() = default;
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  virtual Result<void> write(const Frame& frame) = 0;
  // Writes any trailer the format needs (e.g. ASC "End TriggerBlock") and flushes.
  virtual Result<void> finish() = 0;
};

// Writes `format` to a stream the caller keeps alive. Writing candump_console is not supported.
Result<std::unique_ptr<LogWriter>> make_log_writer(LogFormat format, std::ostream& out);

}  // namespace cellguard::can
