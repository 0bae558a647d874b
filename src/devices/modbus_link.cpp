#include "devices/modbus_link.h"

#include <modbus/modbus.h>

#include <charconv>

namespace cellguard::devices {
namespace {

Error bad_url(std::string_view url, const std::string& cause) {
  return Error(ErrorCode::invalid_argument, "inverter URL '" + std::string(url) + "': " + cause);
}

bool parse_int(std::string_view text, long long& out) {
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

}  // namespace

// --- URL ---

Result<InverterEndpoint> parse_inverter_url(std::string_view url) {
  InverterEndpoint endpoint;
  const std::size_t colon = url.find(':');
  if (colon == std::string_view::npos) return bad_url(url, "expected 'rtu:DEVICE' or 'tcp:HOST:PORT'");
  const std::string_view scheme = url.substr(0, colon);
  std::string_view rest = url.substr(colon + 1);
  std::string_view query;
  if (const std::size_t q = rest.find('?'); q != std::string_view::npos) {
    query = rest.substr(q + 1);
    rest = rest.substr(0, q);
  }
  if (scheme == "rtu") {
    endpoint.transport = InverterEndpoint::Transport::rtu;
    if (rest.empty()) return bad_url(url, "the serial device is missing");
    endpoint.device = std::string(rest);
  } else if (scheme == "tcp") {
    endpoint.transport = InverterEndpoint::Transport::tcp;
    const std::size_t port_colon = rest.rfind(':');
    if (port_colon == std::string_view::npos) return bad_url(url, "expected HOST:PORT after 'tcp:'");
    const std::string_view host = rest.substr(0, port_colon);
    const std::string_view port = rest.substr(port_colon + 1);
    if (host.empty()) return bad_url(url, "the host is missing");
    long long value = 0;
    if (!parse_int(port, value) || value < 1 || value > 65535)
      return bad_url(url, "port '" + std::string(port) + "' is not 1..65535");
    endpoint.host = std::string(host);
    endpoint.port = static_cast<int>(value);
  } else {
    return bad_url(url, "unknown transport '" + std::string(scheme) + "' (expected rtu or tcp)");
  }

  while (!query.empty()) {
    const std::size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) return bad_url(url, "option '" + std::string(pair) + "' has no '='");
    const std::string_view key = pair.substr(0, eq);
    const std::string_view value = pair.substr(eq + 1);
    const std::string where = "option " + std::string(key) + "='" + std::string(value) + "'";
    long long number = 0;
    const bool numeric = parse_int(value, number);
    const bool rtu = endpoint.transport == InverterEndpoint::Transport::rtu;
    if (key == "slave") {
      // 0 is broadcast (no answers), 248..255 reserved; a TCP unit id may be 0..255 in principle,
      // but the rig's converter has one address.
      if (!numeric || number < 1 || number > 247) return bad_url(url, where + " is not 1..247");
      endpoint.slave = static_cast<int>(number);
    } else if (key == "baud" && rtu) {
      if (!numeric || number < 50 || number > 4'000'000) return bad_url(url, where + " is not a baud rate");
      endpoint.baud = static_cast<unsigned>(number);
    } else if (key == "parity" && rtu) {
      if (value.size() != 1 || (value[0] != 'N' && value[0] != 'E' && value[0] != 'O')) {
        return bad_url(url, where + " is not N, E or O");
      }
      endpoint.parity = value[0];
    } else if (key == "data" && rtu) {
      if (!numeric || number < 5 || number > 8) return bad_url(url, where + " is not 5..8");
      endpoint.data_bits = static_cast<int>(number);
    } else if (key == "stop" && rtu) {
      if (!numeric || number < 1 || number > 2) return bad_url(url, where + " is not 1 or 2");
      endpoint.stop_bits = static_cast<int>(number);
    } else {
      return bad_url(url, "unknown option '" + std::string(key) + "' for " + std::string(scheme));
    }
  }
  return endpoint;
}

std::string to_string(const InverterEndpoint& endpoint) {
  if (endpoint.transport == InverterEndpoint::Transport::tcp) {
    return "tcp:" + endpoint.host + ":" + std::to_string(endpoint.port) +
           "?slave=" + std::to_string(endpoint.slave);
  }
  return "rtu:" + endpoint.device + "?baud=" + std::to_string(endpoint.baud) +
         "&parity=" + std::string(1, endpoint.parity) + "&data=" + std::to_string(endpoint.data_bits) +
         "&stop=" + std::to_string(endpoint.stop_bits) + "&slave=" + std::to_string(endpoint.slave);
}

// --- write echoes ---

int check_write_echo(const std::uint8_t* pdu, std::size_t length, std::uint16_t address, std::uint16_t value,
                     std::string& problem) {
  if (length >= 2 && pdu[0] == (0x06 | 0x80)) {
    if (pdu[1] >= 1 && pdu[1] <= EMBXGTAR - MODBUS_ENOBASE) return static_cast<int>(MODBUS_ENOBASE + pdu[1]);
    problem = "unknown exception code " + std::to_string(pdu[1]);
    return EMBBADEXC;
  }
  if (length != 5 || pdu[0] != 0x06) {
    problem = "answer is not a function-6 echo (function " + std::to_string(length > 0 ? pdu[0] : 0) + ", " +
              std::to_string(length) + " bytes)";
    return EMBBADDATA;
  }
  const auto echoed_address = static_cast<std::uint16_t>((pdu[1] << 8) | pdu[2]);
  const auto echoed_value = static_cast<std::uint16_t>((pdu[3] << 8) | pdu[4]);
  if (echoed_address != address || echoed_value != value) {
    problem = "wrong echo: address " + std::to_string(echoed_address) + " value " +
              std::to_string(echoed_value) + ", wrote " + std::to_string(value) + " to " +
              std::to_string(address);
    return EMBBADDATA;
  }
  return 0;
}

}  // namespace cellguard::devices
