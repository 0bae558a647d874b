// `cellguard decode --format csv`: decoded frames as CSV (RFC 4180 quoting), two shapes:
//
//  - per frame (default): one row per frame: time,bus,id,message, then one column per chosen signal
//    (all signals of the DBC unless --signals); a row fills the columns of its message's signals.
//  - resampled (--resample 100ms): one row per interval of the chosen signals, the time being the
//    interval's start (multiples of the interval since the Unix epoch, so files line up). `last`
//    gives the latest value known at the interval's end (a value holds until a newer frame
//    replaces it); `mean` the mean of the values within the interval (empty if none).
//
// Columns: "SIGNAL [UNIT]", or "MESSAGE.SIGNAL [UNIT]" where a signal name occurs in several chosen
// messages. --signals takes names, MESSAGE.SIGNAL, and shell wildcards (BMU0?_pdo3.Cell_V_*).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "can/frame.h"
#include "cli/output.h"
#include "core/result.h"
#include "dbc/codec.h"

namespace cellguard::cli {

struct CsvOptions {
  std::vector<std::string> signals;  // selection patterns; empty = every signal
  std::int64_t resample_ns = 0;      // 0: one row per frame
  bool mean = false;                 // resampled: mean instead of last
  bool choices = false;              // value-table texts instead of numbers
  bool raw = false;                  // raw values instead of physical
  bool known_only = false;           // per frame: no rows for unknown ids
};

// "100ms", "1s", "0.5s", "250us", "2min" -> nanoseconds; an error naming the text otherwise.
Result<std::int64_t> parse_interval(std::string_view text);

class CsvDecoder {
 public:
  // Errors: a --signals pattern that matches nothing (with a did-you-mean).
  static Result<std::unique_ptr<CsvDecoder>> create(const dbc::DatabaseCodec& codec, CsvOptions options,
                                                    OutputBuffer& out);
  ~CsvDecoder();
  CsvDecoder(const CsvDecoder&) = delete;
  CsvDecoder& operator=(const CsvDecoder&) = delete;

  void write(const can::Frame& frame);
  // Writes the last interval of a resampled table.
  void finish();
  std::uint64_t decode_errors() const;
  std::uint64_t skipped_intervals() const;  // empty intervals left out of long gaps

  class Impl;

 private:
  explicit CsvDecoder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::cli
