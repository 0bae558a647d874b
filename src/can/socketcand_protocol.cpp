#include "can/socketcand_protocol.h"

#include <array>
#include <charconv>
#include <cstdint>
#include <utility>

#include "can/bus.h"
#include "core/text.h"

namespace cellguard::can::socketcand {
namespace {

// Linux <linux/can.h> canfd_frame.flags, as socketcand writes them in `fdframe` / reads in `fdsend`.
constexpr std::uint8_t kFlagBitrateSwitch = 0x01;             // CANFD_BRS
constexpr std::uint8_t kFlagErrorState = 0x02;                // CANFD_ESI
constexpr std::uint32_t kMaxErrorClass = 0x1FFFFFFF;          // CAN_ERR_MASK
constexpr std::int64_t kMaxTimestampSeconds = 9'223'372'035;  // int64 ns limit

// Enough for `fdsend ID FLAGS LEN` and 64 bytes.
constexpr std::size_t kMaxFields = 4 + kMaxFdPayload;

Error parse_failure(std::string_view element, std::string_view reason) {
  std::string message = "socketcand: ";
  message.append(reason);
  message.append(" in '");
  // The element's bytes are the peer's: escaped, so they can go to logs and JSON as they are.
  message.append(escape_untrusted(element, 160));
  message.append("'");
  return {ErrorCode::parse_error, std::move(message)};
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

bool is_hex_digit(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool all_hex(std::string_view token) {
  if (token.empty()) return false;
  for (char c : token) {
    if (!is_hex_digit(c)) return false;
  }
  return true;
}

template <typename T>
std::optional<T> parse_number(std::string_view token, int base) {
  if (token.empty()) return std::nullopt;
  if (base == 16 && !all_hex(token)) return std::nullopt;
  T value{};
  auto [end, ec] = std::from_chars(token.data(), token.data() + token.size(), value, base);
  if (ec != std::errc() || end != token.data() + token.size()) return std::nullopt;
  return value;
}

struct Fields {
  std::array<std::string_view, kMaxFields> items;
  std::size_t count = 0;
  std::string_view operator[](std::size_t i) const { return items[i]; }
};

// Splits the inside of `< ... >` at whitespace. False if there are more than kMaxFields.
bool split_fields(std::string_view inside, Fields& fields) {
  std::size_t i = 0;
  while (i < inside.size()) {
    while (i < inside.size() && is_space(inside[i])) ++i;
    if (i == inside.size()) break;
    std::size_t start = i;
    while (i < inside.size() && !is_space(inside[i])) ++i;
    if (fields.count == fields.items.size()) return false;
    fields.items[fields.count++] = inside.substr(start, i - start);
  }
  return true;
}

// 1..8 hex digits; 8 digits or a value above 0x7FF mean a 29-bit id.
bool parse_id(std::string_view token, Frame& frame) {
  if (token.size() > 8) return false;
  auto value = parse_number<std::uint32_t>(token, 16);
  if (!value || *value > kMaxExtendedId) return false;
  frame.id = *value;
  frame.extended = token.size() == 8 || *value > kMaxStandardId;
  return true;
}

// "SECONDS" or "SECONDS.FRACTION" (1..9 fraction digits), to ns since the epoch.
std::optional<std::int64_t> parse_timestamp(std::string_view token) {
  std::size_t dot = token.find('.');
  std::string_view seconds_text = token.substr(0, dot);
  std::string_view fraction_text = dot == std::string_view::npos ? "" : token.substr(dot + 1);
  if (seconds_text.empty() || seconds_text.size() > 11) return std::nullopt;
  if (dot != std::string_view::npos && (fraction_text.empty() || fraction_text.size() > 9)) {
    return std::nullopt;
  }
  auto seconds = parse_number<std::int64_t>(seconds_text, 10);
  if (!seconds || *seconds < 0 || *seconds > kMaxTimestampSeconds) return std::nullopt;
  std::int64_t fraction_ns = 0;
  if (!fraction_text.empty()) {
    auto fraction = parse_number<std::int64_t>(fraction_text, 10);
    if (!fraction || fraction_text.front() == '-' || fraction_text.front() == '+') return std::nullopt;
    fraction_ns = *fraction;
    for (std::size_t digits = fraction_text.size(); digits < 9; ++digits) fraction_ns *= 10;
  }
  std::int64_t whole_ns = *seconds * 1'000'000'000;
  if (whole_ns > INT64_MAX - fraction_ns) return std::nullopt;
  return whole_ns + fraction_ns;
}

// Data of a received frame: socketcand writes one run of %02X; protocol.md shows bytes separated by
// spaces. Both are accepted: each field is one digit (one byte) or an even number of digits.
bool parse_data_run(const Fields& fields, std::size_t first, std::size_t max_bytes, Frame& frame) {
  std::array<std::uint8_t, kMaxFdPayload> bytes{};
  std::size_t size = 0;
  for (std::size_t i = first; i < fields.count; ++i) {
    std::string_view token = fields[i];
    if (!all_hex(token)) return false;
    if (token.size() == 1) {
      if (size == max_bytes) return false;
      bytes[size++] = static_cast<std::uint8_t>(hex_value(token[0]));
      continue;
    }
    if (token.size() % 2 != 0) return false;
    for (std::size_t j = 0; j < token.size(); j += 2) {
      if (size == max_bytes) return false;
      bytes[size++] = static_cast<std::uint8_t>(hex_value(token[j]) * 16 + hex_value(token[j + 1]));
    }
  }
  frame.set_payload({bytes.data(), size});
  return true;
}

// Data of a send command: `count` fields of 1-2 hex digits each (python-can writes "{:x}").
bool parse_data_bytes(const Fields& fields, std::size_t first, std::size_t count, Frame& frame) {
  if (fields.count - first != count) return false;
  std::array<std::uint8_t, kMaxFdPayload> bytes{};
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view token = fields[first + i];
    if (token.size() > 2) return false;
    auto value = parse_number<std::uint8_t>(token, 16);
    if (!value) return false;
    bytes[i] = *value;
  }
  frame.set_payload({bytes.data(), count});
  return true;
}

bool parse_fd_flags(std::string_view token, Frame& frame) {
  if (token.size() > 2) return false;
  auto flags = parse_number<std::uint8_t>(token, 16);
  if (!flags) return false;
  frame.fd = true;
  frame.bitrate_switch = (*flags & kFlagBitrateSwitch) != 0;
  frame.error_state = (*flags & kFlagErrorState) != 0;
  return true;
}

Result<Element> parse_frame_element(std::string_view element, std::string_view keyword,
                                    const Fields& fields) {
  Element result;
  result.kind = ElementKind::frame;
  Frame& frame = result.frame;
  if (fields.count < 3 || !parse_id(fields[1], frame)) {
    return parse_failure(element, "bad or missing identifier");
  }
  std::size_t timestamp_index = 2;
  if (keyword == "fdframe") {
    if (fields.count < 4 || !parse_fd_flags(fields[2], frame)) {
      return parse_failure(element, "bad or missing FD flags");
    }
    timestamp_index = 3;
  }
  auto timestamp_ns = parse_timestamp(fields[timestamp_index]);
  if (!timestamp_ns) return parse_failure(element, "bad timestamp");
  frame.timestamp_ns = *timestamp_ns;

  if (keyword == "rtr") {
    auto dlc = fields.count == 4 ? parse_number<unsigned>(fields[3], 10) : std::nullopt;
    if (!dlc || *dlc > kMaxClassicPayload) return parse_failure(element, "bad remote frame DLC");
    frame.remote = true;
    frame.size = static_cast<std::uint8_t>(*dlc);
    return result;
  }
  std::size_t max_bytes = frame.fd ? kMaxFdPayload : kMaxClassicPayload;
  if (!parse_data_run(fields, timestamp_index + 1, max_bytes, frame)) {
    return parse_failure(element, "bad data bytes");
  }
  if (!is_valid_length(frame.size, frame.fd)) return parse_failure(element, "invalid FD length");
  return result;
}

Result<Element> parse_send_element(std::string_view element, std::string_view keyword, const Fields& fields) {
  Element result;
  result.kind = ElementKind::send;
  Frame& frame = result.frame;
  if (fields.count < 3 || !parse_id(fields[1], frame)) {
    return parse_failure(element, "bad or missing identifier");
  }
  std::size_t length_index = 2;
  if (keyword == "fdsend") {
    if (fields.count < 4 || !parse_fd_flags(fields[2], frame)) {
      return parse_failure(element, "bad or missing FD flags");
    }
    length_index = 3;
  }
  // The length is decimal, as socketcand reads it with %hhu.
  auto length = parse_number<unsigned>(fields[length_index], 10);
  std::size_t max_length = frame.fd ? kMaxFdPayload : kMaxClassicPayload;
  if (!length || *length > max_length || !is_valid_length(*length, frame.fd)) {
    return parse_failure(element, "bad length");
  }
  if (keyword == "sendrtr") {
    if (fields.count != 3) return parse_failure(element, "data in a remote frame");
    frame.remote = true;
    frame.size = static_cast<std::uint8_t>(*length);
    return result;
  }
  if (!parse_data_bytes(fields, length_index + 1, *length, frame)) {
    return parse_failure(element, "data bytes do not match the length");
  }
  return result;
}

Result<Element> parse_error_element(std::string_view inside, const Fields& fields) {
  Element result;
  // `< error CLASS SECONDS.MICROSECONDS >` is an error frame (state_raw.c); anything else is text.
  if (fields.count == 3 && fields[1].size() <= 8 && all_hex(fields[1])) {
    auto error_class = parse_number<std::uint32_t>(fields[1], 16);
    auto timestamp_ns = parse_timestamp(fields[2]);
    if (error_class && *error_class <= kMaxErrorClass && timestamp_ns) {
      result.kind = ElementKind::frame;
      result.frame.error = true;
      result.frame.id = *error_class;
      result.frame.timestamp_ns = *timestamp_ns;
      return result;
    }
  }
  result.kind = ElementKind::error_message;
  std::size_t start = static_cast<std::size_t>(fields[0].data() - inside.data()) + fields[0].size();
  while (start < inside.size() && is_space(inside[start])) ++start;
  std::size_t end = inside.size();
  while (end > start && is_space(inside[end - 1])) --end;
  result.text = std::string(inside.substr(start, end - start));
  return result;
}

constexpr char kHexDigits[] = "0123456789ABCDEF";

void append_hex(std::string& out, std::uint32_t value, int min_digits) {
  char digits[8];
  int count = 0;
  do {
    digits[count++] = kHexDigits[value & 0xF];
    value >>= 4;
  } while (value != 0 && count < 8);
  for (int i = count; i < min_digits; ++i) out.push_back('0');
  while (count > 0) out.push_back(digits[--count]);
}

void append_byte(std::string& out, std::uint8_t value) {
  out.push_back(kHexDigits[value >> 4]);
  out.push_back(kHexDigits[value & 0xF]);
}

void append_decimal(std::string& out, std::uint64_t value, int min_digits = 1) {
  char digits[20];
  int count = 0;
  do {
    digits[count++] = static_cast<char>('0' + value % 10);
    value /= 10;
  } while (value != 0);
  for (int i = count; i < min_digits; ++i) out.push_back('0');
  while (count > 0) out.push_back(digits[--count]);
}

// %03X for 11-bit ids and %08X for 29-bit ids, as state_raw.c writes them.
void append_id(std::string& out, const Frame& frame) {
  if (frame.extended) {
    append_hex(out, frame.id & kMaxExtendedId, 8);
  } else {
    append_hex(out, frame.id & kMaxStandardId, 3);
  }
}

// %ld.%06ld of the receive time.
void append_timestamp(std::string& out, std::int64_t timestamp_ns) {
  if (timestamp_ns < 0) timestamp_ns = 0;
  append_decimal(out, static_cast<std::uint64_t>(timestamp_ns / 1'000'000'000));
  out.push_back('.');
  append_decimal(out, static_cast<std::uint64_t>(timestamp_ns % 1'000'000'000 / 1000), 6);
}

std::uint8_t fd_flags(const Frame& frame) {
  return static_cast<std::uint8_t>((frame.bitrate_switch ? kFlagBitrateSwitch : 0) |
                                   (frame.error_state ? kFlagErrorState : 0));
}

}  // namespace

void ElementSplitter::feed(std::string_view bytes) {
  if (position_ > 0) {
    buffer_.erase(0, position_);
    position_ = 0;
  }
  buffer_.append(bytes);
}

std::optional<Result<std::string_view>> ElementSplitter::next() {
  if (discarding_) {
    std::size_t end = buffer_.find('>', position_);
    if (end == std::string::npos) {
      buffer_.clear();
      position_ = 0;
      return std::nullopt;
    }
    position_ = end + 1;
    discarding_ = false;
  }
  std::size_t start = buffer_.find('<', position_);
  if (start == std::string::npos) {
    // Nothing here can become an element (receive_command drops it too).
    buffer_.clear();
    position_ = 0;
    return std::nullopt;
  }
  position_ = start;
  std::size_t end = buffer_.find('>', start + 1);
  if (end == std::string::npos) {
    if (buffer_.size() - start > max_element_bytes_) {
      buffer_.clear();
      position_ = 0;
      discarding_ = true;
      return Result<std::string_view>(
          Error(ErrorCode::parse_error,
                "socketcand: element longer than " + std::to_string(max_element_bytes_) + " bytes"));
    }
    return std::nullopt;
  }
  position_ = end + 1;
  if (end + 1 - start > max_element_bytes_) {
    return Result<std::string_view>(
        Error(ErrorCode::parse_error,
              "socketcand: element longer than " + std::to_string(max_element_bytes_) + " bytes"));
  }
  return Result<std::string_view>(std::string_view(buffer_).substr(start, end + 1 - start));
}

Result<Element> parse_element(std::string_view element) {
  if (element.size() < 2 || element.front() != '<' || element.back() != '>') {
    return parse_failure(element, "not a < ... > element");
  }
  std::string_view inside = element.substr(1, element.size() - 2);
  for (char c : inside) {
    if (c == '<' || c == '>' || static_cast<unsigned char>(c) < 0x09 ||
        static_cast<unsigned char>(c) > 0x7E) {
      return parse_failure(element, "unexpected character");
    }
  }
  Fields fields;
  if (!split_fields(inside, fields)) return parse_failure(element, "too many fields");
  if (fields.count == 0) return parse_failure(element, "empty element");

  std::string_view keyword = fields[0];
  auto bare = [&](ElementKind kind) -> Result<Element> {
    if (fields.count != 1) return parse_failure(element, "unexpected arguments");
    Element result;
    result.kind = kind;
    return result;
  };
  if (keyword == "hi") return bare(ElementKind::hi);
  if (keyword == "ok") return bare(ElementKind::ok);
  if (keyword == "echo") return bare(ElementKind::echo);
  if (keyword == "rawmode") return bare(ElementKind::rawmode);
  if (keyword == "bcmmode") return bare(ElementKind::bcmmode);
  if (keyword == "open") {
    if (fields.count != 2 || fields[1].size() > 16) return parse_failure(element, "bad bus name");
    Element result;
    result.kind = ElementKind::open;
    result.text = std::string(fields[1]);
    return result;
  }
  if (keyword == "frame" || keyword == "fdframe" || keyword == "rtr") {
    return parse_frame_element(element, keyword, fields);
  }
  if (keyword == "send" || keyword == "fdsend" || keyword == "sendrtr") {
    return parse_send_element(element, keyword, fields);
  }
  if (keyword == "error") return parse_error_element(inside, fields);
  Element result;
  result.kind = ElementKind::other;
  result.text = std::string(keyword);
  return result;
}

void append_received(std::string& out, const Frame& frame) {
  if (frame.error) {
    out.append("< error ");
    append_hex(out, frame.id & kMaxErrorClass, 3);
    out.push_back(' ');
    append_timestamp(out, frame.timestamp_ns);
    out.append(" >");
    return;
  }
  if (frame.remote) {
    out.append("< rtr ");
    append_id(out, frame);
    out.push_back(' ');
    append_timestamp(out, frame.timestamp_ns);
    out.push_back(' ');
    append_decimal(out, frame.size > kMaxClassicPayload ? kMaxClassicPayload : frame.size);
    out.append(" >");
    return;
  }
  out.append(frame.fd ? "< fdframe " : "< frame ");
  append_id(out, frame);
  out.push_back(' ');
  if (frame.fd) {
    append_byte(out, fd_flags(frame));
    out.push_back(' ');
  }
  append_timestamp(out, frame.timestamp_ns);
  // One space, the data as one run, then " >": with no data this leaves two spaces, which is what
  // socketcand sends and what python-can's split(" ", 3) needs.
  out.push_back(' ');
  std::size_t size = frame.size;
  std::size_t max_size = frame.fd ? kMaxFdPayload : kMaxClassicPayload;
  if (size > max_size) size = max_size;
  for (std::size_t i = 0; i < size; ++i) append_byte(out, frame.data[i]);
  out.append(" >");
}

Result<void> append_send(std::string& out, const Frame& frame) {
  if (frame.error) return Error(ErrorCode::unsupported, "socketcand: error frames cannot be sent");
  if (auto valid = validate_frame(frame); !valid) return valid.error();
  if (frame.remote) {
    out.append("< sendrtr ");
    append_id(out, frame);
    out.push_back(' ');
    append_decimal(out, frame.size);
    out.append(" >");
    return success();
  }
  out.append(frame.fd ? "< fdsend " : "< send ");
  append_id(out, frame);
  out.push_back(' ');
  if (frame.fd) {
    append_byte(out, fd_flags(frame));
    out.push_back(' ');
  }
  append_decimal(out, frame.size);
  for (std::size_t i = 0; i < frame.size; ++i) {
    out.push_back(' ');
    append_byte(out, frame.data[i]);
  }
  out.append(" >");
  return success();
}

Result<std::string> format_open(std::string_view channel) {
  if (channel.empty() || channel.size() > 16) {
    return Error(ErrorCode::invalid_argument, "socketcand: bus name must have 1 to 16 characters");
  }
  for (char c : channel) {
    if (c == '<' || c == '>' || is_space(c) || static_cast<unsigned char>(c) < 0x21 ||
        static_cast<unsigned char>(c) > 0x7E) {
      return Error(ErrorCode::invalid_argument,
                   "socketcand: bus name '" + std::string(channel) + "' has a forbidden character");
    }
  }
  return "< open " + std::string(channel) + " >";
}

std::string format_error(std::string_view text) {
  std::string out = "< error ";
  for (char c : text) {
    bool printable = static_cast<unsigned char>(c) >= 0x20 && static_cast<unsigned char>(c) <= 0x7E;
    out.push_back(c == '<' || c == '>' || !printable ? '?' : c);
  }
  out.append(" >");
  return out;
}

}  // namespace cellguard::can::socketcand
