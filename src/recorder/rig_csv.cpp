#include "recorder/rig_csv.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>

#include "core/text.h"

namespace cellguard::recorder {
namespace {

// RFC 4180 quoting, only where needed (column names and strings are plain in practice).
void append_field(std::string& out, std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    out.append(text);
    return;
  }
  out.push_back('"');
  for (char c : text) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

void append_2(std::string& out, int v) {
  out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

}  // namespace

RigCsvWriter::RigCsvWriter(std::string base_dir, bool utc) : base_dir_(std::move(base_dir)), utc_(utc) {}
RigCsvWriter::~RigCsvWriter() { close(); }

void RigCsvWriter::close() {
  if (file_) std::fclose(file_);
  file_ = nullptr;
}

void RigCsvWriter::append_value(std::string& out, const CsvValue& value) {
  if (const auto* b = std::get_if<bool>(&value)) {
    out.append(*b ? "True" : "False");
  } else if (const auto* i = std::get_if<std::int64_t>(&value)) {
    out.append(std::to_string(*i));
  } else if (const auto* d = std::get_if<double>(&value)) {
    // Python's str(float): repr digits, "nan"/"inf" for the non-finite ones.
    if (std::isnan(*d))
      out.append("nan");
    else if (std::isinf(*d))
      out.append(*d > 0 ? "inf" : "-inf");
    else
      out.append(format_shortest(*d, true));
  } else if (const auto* s = std::get_if<std::string>(&value)) {
    append_field(out, *s);
  }
}

Result<void> RigCsvWriter::write(TimeNs time_ns, std::span<const std::string> columns,
                                 std::span<const CsvValue> values) {
  if (columns.size() != values.size()) {
    return Error(ErrorCode::invalid_argument, "rig CSV: " + std::to_string(columns.size()) + " columns but " +
                                                  std::to_string(values.size()) + " values");
  }
  const time_t seconds =
      static_cast<time_t>(time_ns >= 0 ? time_ns / 1'000'000'000 : (time_ns + 1) / 1'000'000'000 - 1);
  tm t{};
  if ((utc_ ? gmtime_r(&seconds, &t) : localtime_r(&seconds, &t)) == nullptr) {
    return Error(ErrorCode::invalid_argument, "rig CSV: time out of range");
  }
  const bool same_columns =
      columns.size() == columns_.size() && std::equal(columns.begin(), columns.end(), columns_.begin());
  if (!file_ || t.tm_year != year_ || t.tm_yday != yday_ || !same_columns) {
    close();
    std::string folder = "Battery-System ";
    append_2(folder, t.tm_mon + 1);
    folder += "-" + std::to_string(t.tm_year + 1900);
    std::string name = "log-Battery-System ";
    append_2(name, t.tm_mday);
    name.push_back('-');
    append_2(name, t.tm_mon + 1);
    name += "-" + std::to_string(t.tm_year + 1900) + "-";
    append_2(name, t.tm_hour);
    name.push_back('-');
    append_2(name, t.tm_min);
    name.push_back('-');
    append_2(name, t.tm_sec);
    name += ".csv";
    const auto dir = std::filesystem::path(base_dir_) / folder;
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Error(ErrorCode::io_error, "rig CSV: cannot create " + dir.string() + ": " + ec.message());
    path_ = (dir / name).string();
    // Append: a restart within the same second continues the file instead of truncating it.
    file_ = std::fopen(path_.c_str(), "a");
    if (!file_)
      return Error(ErrorCode::io_error, "rig CSV: cannot open " + path_ + ": " + std::strerror(errno));
    columns_.assign(columns.begin(), columns.end());
    year_ = t.tm_year;
    yday_ = t.tm_yday;
    if (std::ftell(file_) == 0) {
      line_ = "date,time";
      for (const auto& c : columns) {
        line_.push_back(',');
        append_field(line_, c);
      }
      line_.append("\r\n");
      if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size()) {
        return Error(ErrorCode::io_error, "rig CSV: cannot write " + path_ + ": " + std::strerror(errno));
      }
    }
  }
  line_.clear();
  append_2(line_, t.tm_mday);
  line_.push_back('-');
  append_2(line_, t.tm_mon + 1);
  line_ += "-" + std::to_string(t.tm_year + 1900) + ",";
  append_2(line_, t.tm_hour);
  line_.push_back(':');
  append_2(line_, t.tm_min);
  line_.push_back(':');
  append_2(line_, t.tm_sec);
  for (const auto& v : values) {
    line_.push_back(',');
    append_value(line_, v);
  }
  line_.append("\r\n");
  if (std::fwrite(line_.data(), 1, line_.size(), file_) != line_.size() || std::fflush(file_) != 0) {
    return Error(ErrorCode::io_error, "rig CSV: cannot write " + path_ + ": " + std::strerror(errno));
  }
  return success();
}

}  // namespace cellguard::recorder
