#include "sunspec/sunspec.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace cellguard::sunspec {

std::string_view to_string(PointType type) {
  switch (type) {
    case PointType::uint16:
      return "uint16";
    case PointType::int16:
      return "int16";
    case PointType::uint32:
      return "uint32";
    case PointType::int32:
      return "int32";
    case PointType::acc32:
      return "acc32";
    case PointType::enum16:
      return "enum16";
    case PointType::bitfield16:
      return "bitfield16";
    case PointType::bitfield32:
      return "bitfield32";
    case PointType::sunssf:
      return "sunssf";
    case PointType::string:
      return "string";
    case PointType::pad:
      return "pad";
  }
  return "?";
}

namespace inverter {
std::string_view to_string(State state) {
  switch (state) {
    case State::off:
      return "off";
    case State::sleeping:
      return "sleeping";
    case State::starting:
      return "starting";
    case State::mppt:
      return "MPPT";
    case State::throttled:
      return "throttled";
    case State::shutting_down:
      return "shutting down";
    case State::fault:
      return "fault";
    case State::standby:
      return "standby";
  }
  return "unknown";
}
}  // namespace inverter

namespace {

constexpr std::uint16_t kNotImplementedSigned = 0x8000;
constexpr std::uint16_t kNotImplementedUnsigned = 0xFFFF;

bool usable_scale_factor(std::uint16_t raw) {
  const auto sf = static_cast<std::int16_t>(raw);
  return raw != kNotImplementedSigned && sf >= -10 && sf <= 10;
}

bool is_signed16(PointType type) { return type == PointType::int16 || type == PointType::sunssf; }

}  // namespace

bool is_implemented(PointType type, std::span<const std::uint16_t> r) {
  switch (type) {
    case PointType::int16:
    case PointType::sunssf:
      return !r.empty() && r[0] != kNotImplementedSigned;
    case PointType::uint16:
    case PointType::enum16:
    case PointType::bitfield16:
      return !r.empty() && r[0] != kNotImplementedUnsigned;
    case PointType::int32:
      return r.size() >= 2 && !(r[0] == 0x8000 && r[1] == 0);
    case PointType::uint32:
    case PointType::bitfield32:
      return r.size() >= 2 && !(r[0] == 0xFFFF && r[1] == 0xFFFF);
    case PointType::acc32:
      return r.size() >= 2 && !(r[0] == 0 && r[1] == 0);
    case PointType::string:
    case PointType::pad:
      return true;
  }
  return false;
}

std::optional<double> scaled(PointType type, std::uint16_t raw, std::uint16_t scale_factor) {
  if (!usable_scale_factor(scale_factor)) return std::nullopt;
  const std::uint16_t one[1] = {raw};
  if (!is_implemented(type, one)) return std::nullopt;
  const double value =
      is_signed16(type) ? static_cast<double>(static_cast<std::int16_t>(raw)) : static_cast<double>(raw);
  return value * std::pow(10.0, static_cast<std::int16_t>(scale_factor));
}

std::optional<std::uint16_t> to_raw(PointType type, double value, std::uint16_t scale_factor) {
  if (!usable_scale_factor(scale_factor) || !std::isfinite(value)) return std::nullopt;
  const double raw = std::round(value / std::pow(10.0, static_cast<std::int16_t>(scale_factor)));
  if (is_signed16(type)) {
    // −32768 is "not implemented": the range is −32767..32767.
    return static_cast<std::uint16_t>(static_cast<std::int16_t>(std::clamp(raw, -32767.0, 32767.0)));
  }
  return static_cast<std::uint16_t>(std::clamp(raw, 0.0, 65534.0));
}

std::string decode_string(std::span<const std::uint16_t> registers) {
  std::string text;
  for (const std::uint16_t word : registers) {
    for (const int shift : {8, 0}) {
      const auto c = static_cast<unsigned char>((word >> shift) & 0xFF);
      text.push_back(c == 0 ? '\0' : (c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?'));
    }
  }
  text.erase(std::find(text.begin(), text.end(), '\0'), text.end());
  while (!text.empty() && text.back() == ' ') text.pop_back();
  return text;
}

void encode_string(std::string_view text, std::span<std::uint16_t> registers) {
  for (std::size_t i = 0; i < registers.size(); ++i) {
    const auto byte = [&](std::size_t k) {
      return k < text.size() ? static_cast<unsigned char>(text[k]) : 0u;
    };
    registers[i] = static_cast<std::uint16_t>((byte(2 * i) << 8) | byte(2 * i + 1));
  }
}

const Model* ModelChain::find(std::uint16_t id) const {
  const auto it = std::find_if(models.begin(), models.end(), [id](const Model& m) { return m.id == id; });
  return it == models.end() ? nullptr : &*it;
}

ChainWalker::ChainWalker(std::uint16_t base) : position_(base) { chain_.base = base; }

RegisterRead ChainWalker::next() const { return {static_cast<std::uint16_t>(position_), 2}; }

Result<bool> ChainWalker::feed(std::span<const std::uint16_t> registers) {
  const std::string where = std::to_string(position_) + ": ";
  if (done_) return Error(ErrorCode::invalid_argument, where + "the chain is already complete");
  if (registers.size() != 2) {
    return Error(ErrorCode::parse_error,
                 where + "expected 2 registers, got " + std::to_string(registers.size()));
  }
  if (!marker_seen_) {
    if (registers[0] != kMarkerHigh || registers[1] != kMarkerLow) {
      char found[16];
      std::snprintf(found, sizeof found, "%04X %04X", registers[0], registers[1]);
      return Error(ErrorCode::not_found, where + "no SunSpec marker \"SunS\" (found " + found + ")");
    }
    marker_seen_ = true;
    position_ += 2;
  } else {
    const std::uint16_t id = registers[0];
    const std::uint16_t length = registers[1];
    if (id == kEndId) {
      done_ = true;
      return true;
    }
    // The end marker must itself fit: the model plus 2 registers for it.
    if (position_ + 2u + length + 2u > 65536u) {
      return Error(ErrorCode::parse_error, where + "model " + std::to_string(id) + " of length " +
                                               std::to_string(length) + " runs past register 65535");
    }
    if (chain_.models.size() >= kMaxModels) {
      return Error(ErrorCode::parse_error,
                   where + "more than " + std::to_string(kMaxModels) + " models without the end marker");
    }
    chain_.models.push_back(Model{id, length, static_cast<std::uint16_t>(position_)});
    position_ += 2u + length;
  }
  if (position_ + 2u > 65536u)
    return Error(ErrorCode::parse_error, where + "the chain runs past register 65535 without an end");
  return false;
}

Result<ModelChain> parse_model_chain(std::uint16_t first, std::span<const std::uint16_t> registers) {
  const std::uint32_t end = first + static_cast<std::uint32_t>(registers.size());
  std::optional<Error> last_error;
  for (const std::uint16_t base : kBaseAddresses) {
    if (base < first || base + 2u > end) continue;
    ChainWalker walker(base);
    while (true) {
      const RegisterRead read = walker.next();
      if (read.address < first || read.address + read.count > end) {
        last_error = Error(ErrorCode::parse_error, std::to_string(read.address) +
                                                       ": the chain runs past the end of the image (" +
                                                       std::to_string(end) + ")");
        break;
      }
      auto done = walker.feed(registers.subspan(read.address - first, read.count));
      if (!done) {
        // A marker with a broken chain behind it is a SunSpec device with a broken map: say so.
        if (done.error().code != ErrorCode::not_found) return done.error();
        last_error = done.error();
        break;
      }
      if (*done) return walker.chain();
    }
  }
  if (last_error) return *last_error;
  return Error(ErrorCode::not_found, "no SunSpec base address (40000, 0, 50000) inside registers " +
                                         std::to_string(first) + ".." +
                                         std::to_string(end == 0 ? 0 : end - 1));
}

}  // namespace cellguard::sunspec
