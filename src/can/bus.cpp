#include "can/bus.h"

#include <charconv>

#include "can/bus_backends.h"

namespace cellguard::can {
namespace {

Error bad_url(std::string_view url, std::string_view reason) {
  return {ErrorCode::invalid_argument, "bus URL '" + std::string(url) + "': " + std::string(reason)};
}

// socketcand://HOST:PORT/CHANNEL; HOST may be [v6-address].
Result<std::unique_ptr<Bus>> open_socketcand_url(asio::io_context& io, std::string_view url,
                                                 std::string_view rest) {
  std::size_t slash = rest.find('/');
  if (slash == std::string_view::npos) return bad_url(url, "expected socketcand://HOST:PORT/CHANNEL");
  std::string_view authority = rest.substr(0, slash);
  std::string_view channel = rest.substr(slash + 1);
  std::size_t colon = authority.rfind(':');
  if (colon == std::string_view::npos) return bad_url(url, "missing :PORT");
  std::string_view host = authority.substr(0, colon);
  std::string_view port_text = authority.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) return bad_url(url, "missing host");
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
    return bad_url(url, "port must be 1..65535");
  }
  if (channel.empty()) return bad_url(url, "missing channel");
  return detail::open_socketcand_bus(io, host, static_cast<std::uint16_t>(port), channel);
}

}  // namespace

Result<void> validate_frame(const Frame& frame) {
  if (frame.error) return success();
  std::uint32_t max_id = frame.extended ? kMaxExtendedId : kMaxStandardId;
  if (frame.id > max_id) {
    char hex[8];
    auto [end, ec] = std::to_chars(hex, hex + sizeof hex, frame.id, 16);
    (void)ec;
    return Error(ErrorCode::invalid_argument, "CAN id 0x" + std::string(hex, end) + " does not fit " +
                                                  (frame.extended ? "29 bits" : "11 bits"));
  }
  if (frame.fd && frame.remote) {
    return Error(ErrorCode::invalid_argument, "CAN FD has no remote frames");
  }
  if (!frame.fd && (frame.bitrate_switch || frame.error_state)) {
    return Error(ErrorCode::invalid_argument, "BRS/ESI flags on a classic CAN frame");
  }
  if (!is_valid_length(frame.size, frame.fd)) {
    return Error(ErrorCode::invalid_argument, "invalid " + std::string(frame.fd ? "CAN FD" : "CAN") +
                                                  " length " + std::to_string(frame.size));
  }
  return success();
}

Result<std::unique_ptr<Bus>> open_bus(asio::io_context& io, std::string_view url) {
  constexpr std::string_view kInproc = "inproc:";
  constexpr std::string_view kSocketcand = "socketcand://";
  constexpr std::string_view kSocketcan = "socketcan:";
  constexpr std::string_view kReplay = "replay:";
  if (url.starts_with(kInproc)) {
    std::string_view name = url.substr(kInproc.size());
    if (name.empty()) return bad_url(url, "missing name");
    return detail::open_inproc_bus(io, name);
  }
  if (url.starts_with(kSocketcand)) return open_socketcand_url(io, url, url.substr(kSocketcand.size()));
  if (url.starts_with(kSocketcan)) {
    std::string_view name = url.substr(kSocketcan.size());
    if (name.empty() || name.size() > BusName::kCapacity) {
      return bad_url(url, "interface name must have 1 to 15 characters");
    }
    return detail::open_socketcan_bus(io, name);
  }
  if (url.starts_with(kReplay)) return detail::open_replay_bus(io, url, url.substr(kReplay.size()));
  return Error(ErrorCode::unsupported,
               "bus URL '" + std::string(url) +
                   "': unknown scheme (expected inproc:NAME, socketcand://HOST:PORT/CHANNEL, "
                   "socketcan:IFNAME or replay:PATH)");
}

}  // namespace cellguard::can
