#include <algorithm>
#include <array>
#include <cstdio>

#include "canopen/canopen.h"

namespace cellguard::canopen {
namespace {

struct AbortEntry {
  SdoAbortCode code;
  std::string_view name;
  std::string_view text;
};
// §7.2.4.3.17, table 22.
constexpr AbortEntry kAborts[] = {
    {SdoAbortCode::toggle_bit_not_alternated, "toggle_bit_not_alternated", "toggle bit not alternated"},
    {SdoAbortCode::timed_out, "timed_out", "SDO protocol timed out"},
    {SdoAbortCode::command_unknown, "command_unknown",
     "client/server command specifier not valid or unknown"},
    {SdoAbortCode::invalid_block_size, "invalid_block_size", "invalid block size"},
    {SdoAbortCode::invalid_sequence_number, "invalid_sequence_number", "invalid sequence number"},
    {SdoAbortCode::crc_error, "crc_error", "CRC error"},
    {SdoAbortCode::out_of_memory, "out_of_memory", "out of memory"},
    {SdoAbortCode::unsupported_access, "unsupported_access", "unsupported access to an object"},
    {SdoAbortCode::read_write_only, "read_write_only", "attempt to read a write-only object"},
    {SdoAbortCode::write_read_only, "write_read_only", "attempt to write a read-only object"},
    {SdoAbortCode::object_missing, "object_missing", "object does not exist in the object dictionary"},
    {SdoAbortCode::not_mappable, "not_mappable", "object cannot be mapped to the PDO"},
    {SdoAbortCode::pdo_length_exceeded, "pdo_length_exceeded",
     "the number and length of the objects to be mapped would exceed the PDO length"},
    {SdoAbortCode::parameter_incompatible, "parameter_incompatible", "general parameter incompatibility"},
    {SdoAbortCode::device_incompatible, "device_incompatible",
     "general internal incompatibility in the device"},
    {SdoAbortCode::hardware_error, "hardware_error", "access failed due to a hardware error"},
    {SdoAbortCode::length_mismatch, "length_mismatch",
     "data type does not match, length of service parameter does not match"},
    {SdoAbortCode::length_too_high, "length_too_high",
     "data type does not match, length of service parameter too high"},
    {SdoAbortCode::length_too_low, "length_too_low",
     "data type does not match, length of service parameter too low"},
    {SdoAbortCode::subindex_missing, "subindex_missing", "sub-index does not exist"},
    {SdoAbortCode::invalid_value, "invalid_value", "invalid value for parameter"},
    {SdoAbortCode::value_too_high, "value_too_high", "value of parameter written too high"},
    {SdoAbortCode::value_too_low, "value_too_low", "value of parameter written too low"},
    {SdoAbortCode::max_less_than_min, "max_less_than_min", "maximum value is less than minimum value"},
    {SdoAbortCode::no_sdo_connection, "no_sdo_connection", "resource not available: SDO connection"},
    {SdoAbortCode::general_error, "general_error", "general error"},
    {SdoAbortCode::cannot_store, "cannot_store", "data cannot be transferred or stored to the application"},
    {SdoAbortCode::cannot_store_local_control, "cannot_store_local_control",
     "data cannot be transferred or stored to the application because of local control"},
    {SdoAbortCode::cannot_store_device_state, "cannot_store_device_state",
     "data cannot be transferred or stored to the application because of the present device state"},
    {SdoAbortCode::no_object_dictionary, "no_object_dictionary",
     "object dictionary dynamic generation fails or no object dictionary is present"},
    {SdoAbortCode::no_data, "no_data", "no data available"},
};

const AbortEntry* find_abort(std::uint32_t code) {
  for (const AbortEntry& entry : kAborts)
    if (static_cast<std::uint32_t>(entry.code) == code) return &entry;
  return nullptr;
}

std::string hex32(std::uint32_t value) {
  char text[16];
  std::snprintf(text, sizeof text, "0x%08x", value);
  return text;
}

std::uint32_t get_u32(std::span<const std::uint8_t> b, std::size_t at) {
  return std::uint32_t{b[at]} | std::uint32_t{b[at + 1]} << 8 | std::uint32_t{b[at + 2]} << 16 |
         std::uint32_t{b[at + 3]} << 24;
}

can::Frame sdo_frame(std::uint32_t id, const std::array<std::uint8_t, 8>& bytes) {
  can::Frame frame;
  frame.id = id;
  frame.set_payload(bytes);
  return frame;
}

void put_multiplexer(std::array<std::uint8_t, 8>& b, std::uint16_t index, std::uint8_t subindex) {
  b[1] = static_cast<std::uint8_t>(index);
  b[2] = static_cast<std::uint8_t>(index >> 8);
  b[3] = subindex;
}

Error sdo_error(const std::string& what) { return Error(ErrorCode::parse_error, "SDO: " + what); }

}  // namespace

std::string_view sdo_abort_name(std::uint32_t code) {
  const AbortEntry* entry = find_abort(code);
  return entry ? entry->name : std::string_view();
}

std::string sdo_abort_text(std::uint32_t code) {
  const AbortEntry* entry = find_abort(code);
  if (entry == nullptr) return "unknown SDO abort code " + hex32(code);
  return std::string(entry->text) + " (SDO abort " + hex32(code) + ")";
}

Result<SdoMessage> decode_sdo(std::span<const std::uint8_t> payload, SdoDirection direction) {
  // §7.2.4.3: every SDO frame has 8 bytes (DLC 8).
  if (payload.size() != 8) return sdo_error(std::to_string(payload.size()) + " bytes, expected 8");
  using Kind = SdoMessage::Kind;
  SdoMessage m;
  const std::uint8_t b0 = payload[0];
  const unsigned cs = b0 >> 5;  // ccs (requests) or scs (responses), bits 7..5
  auto multiplexer = [&] {
    m.index = static_cast<std::uint16_t>(payload[1] | payload[2] << 8);
    m.subindex = payload[3];
  };
  auto segment = [&](bool request_with_data) {
    // Segment frames: t = bit 4, n = bits 3..1 (bytes without data), c = bit 0 (§7.2.4.3.4, .3.7).
    m.toggle = (b0 & 0x10) != 0;
    if (request_with_data) {
      const unsigned unused = (b0 >> 1) & 0x07;
      m.last = (b0 & 0x01) != 0;
      m.data.assign(payload.begin() + 1, payload.begin() + 1 + (7 - unused));
    }
  };
  auto initiate = [&] {
    // Initiate frames with data: n = bits 3..2, e = bit 1, s = bit 0 (§7.2.4.3.3, .3.6).
    multiplexer();
    m.expedited = (b0 & 0x02) != 0;
    m.size_indicated = (b0 & 0x01) != 0;
    if (m.expedited) {
      const unsigned unused = m.size_indicated ? (b0 >> 2) & 0x03 : 0;
      m.data.assign(payload.begin() + 4, payload.begin() + 4 + (4 - unused));
    } else if (m.size_indicated) {
      m.size = get_u32(payload, 4);
    }
  };
  if (cs == 4) {  // abort, both directions (§7.2.4.3.17)
    m.kind = Kind::abort;
    multiplexer();
    m.abort_code = get_u32(payload, 4);
    return m;
  }
  if (direction == SdoDirection::request) {
    switch (cs) {
      case 0:
        m.kind = Kind::download_segment_request;
        segment(true);
        return m;
      case 1:
        m.kind = Kind::initiate_download_request;
        initiate();
        return m;
      case 2:
        m.kind = Kind::initiate_upload_request;
        multiplexer();
        return m;
      case 3:
        m.kind = Kind::upload_segment_request;
        segment(false);
        return m;
      case 5:
      case 6:
        return sdo_error("block transfer (command specifier " + std::to_string(cs) + ") is not supported");
      default:
        return sdo_error("unknown client command specifier " + std::to_string(cs));
    }
  }
  switch (cs) {
    case 0:
      m.kind = Kind::upload_segment_response;
      segment(true);
      return m;
    case 1:
      m.kind = Kind::download_segment_response;
      segment(false);
      return m;
    case 2:
      m.kind = Kind::initiate_upload_response;
      initiate();
      return m;
    case 3:
      m.kind = Kind::initiate_download_response;
      multiplexer();
      return m;
    case 5:
    case 6:
      return sdo_error("block transfer (command specifier " + std::to_string(cs) + ") is not supported");
    default:
      return sdo_error("unknown server command specifier " + std::to_string(cs));
  }
}

can::Frame sdo_expedited_download(int node, std::uint16_t index, std::uint8_t subindex,
                                  std::span<const std::uint8_t> data) {
  const std::size_t size = std::clamp<std::size_t>(data.size(), 1, 4);
  std::array<std::uint8_t, 8> b{};
  // ccs 1, e = 1, s = 1, n = 4 - size: 0x2F for one byte, 0x23 for four (§7.2.4.3.3).
  b[0] = static_cast<std::uint8_t>(0x23 | ((4 - size) << 2));
  put_multiplexer(b, index, subindex);
  std::copy_n(data.begin(), std::min(size, data.size()), b.begin() + 4);
  return sdo_frame(cob_id(Function::sdo_request, node), b);
}

can::Frame sdo_upload_request(int node, std::uint16_t index, std::uint8_t subindex) {
  std::array<std::uint8_t, 8> b{};
  b[0] = 0x40;  // ccs 2 (§7.2.4.3.6)
  put_multiplexer(b, index, subindex);
  return sdo_frame(cob_id(Function::sdo_request, node), b);
}

can::Frame sdo_abort(std::uint32_t id, std::uint16_t index, std::uint8_t subindex, std::uint32_t code) {
  std::array<std::uint8_t, 8> b{};
  b[0] = 0x80;  // cs 4
  put_multiplexer(b, index, subindex);
  for (std::size_t i = 0; i < 4; ++i) b[4 + i] = static_cast<std::uint8_t>(code >> (8 * i));
  return sdo_frame(id, b);
}

// ---- client -----------------------------------------------------------------------------------------

SdoClient::SdoClient(int node, std::int64_t timeout_ns) : node_(node), timeout_ns_(timeout_ns) {}

Result<can::Frame> SdoClient::upload(std::uint16_t index, std::uint8_t subindex, std::int64_t now_ns) {
  if (busy())
    return Error(ErrorCode::invalid_argument,
                 "SDO: node " + std::to_string(node_) + " has a transfer running");
  state_ = State::initiate_upload;
  index_ = index;
  subindex_ = subindex;
  buffer_.clear();
  expected_size_.reset();
  toggle_ = false;
  deadline_ns_ = now_ns + timeout_ns_;
  return sdo_upload_request(node_, index, subindex);
}

Result<can::Frame> SdoClient::download(std::uint16_t index, std::uint8_t subindex,
                                       std::span<const std::uint8_t> data, std::int64_t now_ns) {
  if (busy())
    return Error(ErrorCode::invalid_argument,
                 "SDO: node " + std::to_string(node_) + " has a transfer running");
  if (data.empty()) return Error(ErrorCode::invalid_argument, "SDO: a download needs at least one byte");
  index_ = index;
  subindex_ = subindex;
  toggle_ = false;
  sent_ = 0;
  deadline_ns_ = now_ns + timeout_ns_;
  state_ = State::initiate_download;
  if (data.size() <= 4) {
    buffer_.clear();
    return sdo_expedited_download(node_, index, subindex, data);
  }
  buffer_.assign(data.begin(), data.end());
  // Segmented: ccs 1, e = 0, s = 1, the size in bytes 4..7 (§7.2.4.3.3).
  std::array<std::uint8_t, 8> b{};
  b[0] = 0x21;
  put_multiplexer(b, index, subindex);
  const auto size = static_cast<std::uint32_t>(data.size());
  for (std::size_t i = 0; i < 4; ++i) b[4 + i] = static_cast<std::uint8_t>(size >> (8 * i));
  return sdo_frame(cob_id(Function::sdo_request, node_), b);
}

can::Frame SdoClient::next_download_segment() {
  // §7.2.4.3.4: t alternates from 0, n = 7 - bytes carried, c = 1 on the last segment.
  const std::size_t count = std::min<std::size_t>(7, buffer_.size() - sent_);
  const bool last = sent_ + count == buffer_.size();
  std::array<std::uint8_t, 8> b{};
  b[0] = static_cast<std::uint8_t>((toggle_ ? 0x10 : 0) | ((7 - count) << 1) | (last ? 1 : 0));
  std::copy_n(buffer_.begin() + static_cast<std::ptrdiff_t>(sent_), count, b.begin() + 1);
  sent_ += count;
  return sdo_frame(cob_id(Function::sdo_request, node_), b);
}

SdoClient::Step SdoClient::fail(std::uint32_t code, bool by_server, bool send_abort) {
  Step step;
  if (send_abort) step.send = sdo_abort(cob_id(Function::sdo_request, node_), index_, subindex_, code);
  SdoResult result;
  result.index = index_;
  result.subindex = subindex_;
  result.upload = state_ == State::initiate_upload || state_ == State::upload_segments;
  result.abort_code = code;
  result.aborted_by_server = by_server;
  step.done = std::move(result);
  state_ = State::idle;
  buffer_.clear();
  return step;
}

SdoClient::Step SdoClient::finish() {
  SdoResult result;
  result.index = index_;
  result.subindex = subindex_;
  result.upload = state_ == State::initiate_upload || state_ == State::upload_segments;
  if (result.upload) result.data = std::move(buffer_);
  state_ = State::idle;
  buffer_.clear();
  Step step;
  step.done = std::move(result);
  return step;
}

SdoClient::Step SdoClient::on_frame(const can::Frame& frame, std::int64_t now_ns) {
  if (!busy() || frame.extended || frame.error || frame.remote ||
      frame.id != cob_id(Function::sdo_response, node_))
    return {};
  const auto code = [](SdoAbortCode c) { return static_cast<std::uint32_t>(c); };
  auto decoded = decode_sdo(frame.payload(), SdoDirection::response);
  if (!decoded) return fail(code(SdoAbortCode::command_unknown), false, true);
  const SdoMessage& m = *decoded;
  using Kind = SdoMessage::Kind;
  const bool initiate = state_ == State::initiate_upload || state_ == State::initiate_download;
  // Initiate responses and aborts carry the multiplexer; one for another object is not ours.
  if ((m.kind == Kind::abort || initiate) && (m.index != index_ || m.subindex != subindex_)) {
    if (m.kind == Kind::abort) return {};
    return fail(code(SdoAbortCode::command_unknown), false, true);
  }
  if (m.kind == Kind::abort) return fail(m.abort_code, true, false);
  deadline_ns_ = now_ns + timeout_ns_;
  switch (state_) {
    case State::initiate_upload: {
      if (m.kind != Kind::initiate_upload_response)
        return fail(code(SdoAbortCode::command_unknown), false, true);
      if (m.expedited) {
        buffer_ = m.data;
        return finish();
      }
      if (m.size_indicated && m.size > kMaxSdoUpload)
        return fail(code(SdoAbortCode::out_of_memory), false, true);
      if (m.size_indicated) expected_size_ = m.size;
      state_ = State::upload_segments;
      toggle_ = false;
      std::array<std::uint8_t, 8> b{};
      b[0] = 0x60;  // ccs 3, t = 0 (§7.2.4.3.7)
      return {sdo_frame(cob_id(Function::sdo_request, node_), b), std::nullopt};
    }
    case State::upload_segments: {
      if (m.kind != Kind::upload_segment_response)
        return fail(code(SdoAbortCode::command_unknown), false, true);
      if (m.toggle != toggle_) return fail(code(SdoAbortCode::toggle_bit_not_alternated), false, true);
      buffer_.insert(buffer_.end(), m.data.begin(), m.data.end());
      // A server that sends more than it announced is cut off rather than let grow the buffer.
      if (expected_size_ && buffer_.size() > *expected_size_)
        return fail(code(SdoAbortCode::length_too_high), false, true);
      if (m.last) {
        if (expected_size_ && buffer_.size() != *expected_size_)
          return fail(code(SdoAbortCode::length_too_low), false, true);
        return finish();
      }
      if (buffer_.size() > kMaxSdoUpload) return fail(code(SdoAbortCode::out_of_memory), false, true);
      toggle_ = !toggle_;
      std::array<std::uint8_t, 8> b{};
      b[0] = static_cast<std::uint8_t>(0x60 | (toggle_ ? 0x10 : 0));
      return {sdo_frame(cob_id(Function::sdo_request, node_), b), std::nullopt};
    }
    case State::initiate_download: {
      if (m.kind != Kind::initiate_download_response)
        return fail(code(SdoAbortCode::command_unknown), false, true);
      if (buffer_.empty()) return finish();  // expedited: done
      state_ = State::download_segments;
      toggle_ = false;
      return {next_download_segment(), std::nullopt};
    }
    case State::download_segments: {
      if (m.kind != Kind::download_segment_response)
        return fail(code(SdoAbortCode::command_unknown), false, true);
      if (m.toggle != toggle_) return fail(code(SdoAbortCode::toggle_bit_not_alternated), false, true);
      if (sent_ == buffer_.size()) return finish();
      toggle_ = !toggle_;
      return {next_download_segment(), std::nullopt};
    }
    case State::idle:
      break;
  }
  return {};
}

SdoClient::Step SdoClient::tick(std::int64_t now_ns) {
  if (!busy() || now_ns < deadline_ns_) return {};
  return fail(static_cast<std::uint32_t>(SdoAbortCode::timed_out), false, true);
}

}  // namespace cellguard::canopen
