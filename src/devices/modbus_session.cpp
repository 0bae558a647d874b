#include "devices/modbus_session.h"

#include <cstdio>

namespace cellguard::devices {

bool account_reply(InverterLinkStats& stats, SessionOutput& output, Freshness kind, const ModbusReply& reply,
                   const std::string& what, MonoTime now) {
  if (reply.status == ModbusReply::Status::ok) {
    if (kind == Freshness::reading) stats.read_failures = 0;
    if (kind == Freshness::heartbeat) stats.heartbeat_failures = 0;
    if (stats.read_failures == 0 && stats.heartbeat_failures == 0) {
      stats.consecutive_failures = 0;
      output.links.push_back({true, now, what});
    }
    return false;
  }
  stats.last_error = reply.error;
  ++stats.consecutive_failures;
  if (kind == Freshness::reading) ++stats.read_failures;
  if (kind == Freshness::heartbeat) ++stats.heartbeat_failures;
  output.links.push_back({false, now, reply.error});
  if (reply.status == ModbusReply::Status::exception) return false;
  return reply.status == ModbusReply::Status::link_error ||
         stats.consecutive_failures >= kFailuresBeforeReconnect;
}

std::string format_ms(Duration d) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.1f ms", static_cast<double>(d.count()) / 1e6);
  return buffer;
}

std::string format_value(double v) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", v);
  return buffer;
}

}  // namespace cellguard::devices
