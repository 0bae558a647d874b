// Restarting a CAN controller that went bus-off, over rtnetlink (as `ip link set can0 type can
// restart` does), without libnl: one RTM_NEWLINK request with
// IFLA_LINKINFO { IFLA_INFO_KIND "can", IFLA_INFO_DATA { IFLA_CAN_RESTART = 1 } }.
// The kernel refuses it (EINVAL) unless the interface is up and bus-off, (EBUSY) when restart-ms is
// set (the kernel restarts by itself then), (EOPNOTSUPP) on a vcan, (EPERM) without CAP_NET_ADMIN.
//
// Building and reading the messages is pure (unit-tested byte by byte); restart_can_controller()
// does the I/O, blocking for at most the kernel's answer (a local netlink round trip).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/result.h"

namespace cellguard::can {

// The request bytes (nlmsghdr + ifinfomsg + nested attributes), NLM_F_REQUEST | NLM_F_ACK.
std::vector<std::uint8_t> can_restart_request(int interface_index, std::uint32_t sequence);

// The kernel's answer: success for an NLMSG_ERROR with error 0 and the request's sequence number;
// the errno it gives otherwise (as an io_error naming it).
Result<void> read_netlink_ack(std::span<const std::uint8_t> answer, std::uint32_t sequence);

// Sends the restart request and waits for the acknowledgement (at most 1 s).
Result<void> restart_can_controller(int interface_index);

}  // namespace cellguard::can
