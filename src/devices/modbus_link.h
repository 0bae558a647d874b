// Modbus links of the power devices: the endpoint URL and the check of a function-6 echo, shared by
// the rig's inverter client and the Modbus worker (modbus_worker.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/result.h"

namespace cellguard::devices {

// rtu:/dev/ttyUSB0?baud=19200&parity=N&data=8&stop=1&slave=2  |  tcp:HOST:PORT?slave=2
struct InverterEndpoint {
  enum class Transport : std::uint8_t { rtu, tcp };
  Transport transport = Transport::rtu;
  std::string device = "/dev/ttyUSB0";
  unsigned baud = 19200;
  char parity = 'N';
  int data_bits = 8;
  int stop_bits = 1;
  std::string host;
  int port = 502;
  int slave = 2;
};
// Errors (invalid_argument) name the part of the URL that is wrong.
Result<InverterEndpoint> parse_inverter_url(std::string_view url);
std::string to_string(const InverterEndpoint& endpoint);

// Checks the answer to a function-6 write of `value` to `address` (`pdu`: function code and data,
// without the transport's header or CRC). Returns 0 when it echoes the request; otherwise the
// libmodbus errno (an exception code, or EMBBADDATA for a wrong function, length, address or value)
// with `problem` saying what was wrong ("echoed address 41025 value 7, wrote 20 to 41025").
int check_write_echo(const std::uint8_t* pdu, std::size_t length, std::uint16_t address, std::uint16_t value,
                     std::string& problem);

}  // namespace cellguard::devices
