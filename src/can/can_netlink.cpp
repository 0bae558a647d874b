#include "can/can_netlink.h"

#include <linux/can/netlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

namespace cellguard::can {
namespace {

// A request being built: a fixed buffer (far larger than the request), appended to in order.
struct RequestBuffer {
  alignas(nlmsghdr) std::array<std::uint8_t, 256> bytes{};
  std::size_t size = 0;

  void put(const void* data, std::size_t length, std::size_t padded) {
    if (size + padded > bytes.size()) return;  // cannot happen for the fixed request below
    if (length > 0) std::memcpy(bytes.data() + size, data, length);
    size += padded;  // the padding stays zero
  }
  // Appends one attribute (header, payload, padding to 4 bytes); returns its offset for nesting.
  std::size_t attribute(std::uint16_t type, const void* data, std::size_t length) {
    const std::size_t at = size;
    rtattr header{};
    header.rta_type = type;
    header.rta_len = static_cast<std::uint16_t>(RTA_LENGTH(length));
    put(&header, sizeof header, RTA_LENGTH(0));
    put(data, length, RTA_SPACE(length) - RTA_LENGTH(0));
    return at;
  }
  // A nested attribute's length covers everything appended after its header.
  void close_nest(std::size_t at) {
    rtattr header{};
    std::memcpy(&header, bytes.data() + at, sizeof header);
    header.rta_len = static_cast<std::uint16_t>(size - at);
    std::memcpy(bytes.data() + at, &header, sizeof header);
  }
};

}  // namespace

std::vector<std::uint8_t> can_restart_request(int interface_index, std::uint32_t sequence) {
  RequestBuffer out;
  nlmsghdr header{};
  out.put(&header, sizeof header, NLMSG_LENGTH(0));
  ifinfomsg info{};
  info.ifi_family = AF_UNSPEC;
  info.ifi_index = interface_index;
  out.put(&info, sizeof info, NLMSG_ALIGN(sizeof info));
  const std::size_t linkinfo = out.attribute(IFLA_LINKINFO, nullptr, 0);
  out.attribute(IFLA_INFO_KIND, "can", 3);  // as iproute2 sends it: no terminating NUL
  const std::size_t data = out.attribute(IFLA_INFO_DATA, nullptr, 0);
  const std::uint32_t one = 1;
  out.attribute(IFLA_CAN_RESTART, &one, sizeof one);
  out.close_nest(data);
  out.close_nest(linkinfo);
  header.nlmsg_len = static_cast<std::uint32_t>(out.size);
  header.nlmsg_type = RTM_NEWLINK;
  header.nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  header.nlmsg_seq = sequence;
  std::memcpy(out.bytes.data(), &header, sizeof header);
  return {out.bytes.begin(), out.bytes.begin() + static_cast<std::ptrdiff_t>(out.size)};
}

Result<void> read_netlink_ack(std::span<const std::uint8_t> answer, std::uint32_t sequence) {
  if (answer.size() < NLMSG_LENGTH(sizeof(nlmsgerr))) {
    return Error(ErrorCode::parse_error,
                 "netlink: short answer (" + std::to_string(answer.size()) + " bytes)");
  }
  nlmsghdr header{};
  std::memcpy(&header, answer.data(), sizeof header);
  if (header.nlmsg_type != NLMSG_ERROR || header.nlmsg_len > answer.size() ||
      header.nlmsg_len < NLMSG_LENGTH(sizeof(nlmsgerr))) {
    return Error(ErrorCode::parse_error,
                 "netlink: unexpected answer type " + std::to_string(header.nlmsg_type));
  }
  if (header.nlmsg_seq != sequence)
    return Error(ErrorCode::parse_error, "netlink: answer to another request");
  nlmsgerr error{};
  std::memcpy(&error, answer.data() + NLMSG_LENGTH(0), sizeof error);
  if (error.error == 0) return success();
  const int code = -error.error;
  std::string why = std::strerror(code);
  if (code == EPERM) why += " (needs CAP_NET_ADMIN)";
  if (code == EBUSY) why += " (restart-ms is set: the kernel restarts the controller itself)";
  if (code == EINVAL) why += " (not bus-off, or the interface is down)";
  if (code == EOPNOTSUPP) why += " (not a CAN controller, e.g. vcan)";
  return Error(ErrorCode::io_error, "controller restart refused: " + why);
}

Result<void> restart_can_controller(int interface_index) {
  const int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
  if (fd < 0) return Error(ErrorCode::io_error, std::string("netlink socket: ") + std::strerror(errno));
  static std::atomic<std::uint32_t> next_sequence{1};
  const std::uint32_t sequence = next_sequence.fetch_add(1);
  const auto request = can_restart_request(interface_index, sequence);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  Result<void> result = success();
  if (::sendto(fd, request.data(), request.size(), 0, reinterpret_cast<const sockaddr*>(&kernel),
               sizeof kernel) < 0) {
    result = Error(ErrorCode::io_error, std::string("netlink send: ") + std::strerror(errno));
  } else {
    pollfd p{fd, POLLIN, 0};
    std::uint8_t answer[1024];
    if (::poll(&p, 1, 1000) <= 0) {
      result = Error(ErrorCode::io_error, "netlink: no answer from the kernel within 1 s");
    } else {
      const ssize_t n = ::recv(fd, answer, sizeof answer, 0);
      result = n < 0 ? Result<void>(Error(ErrorCode::io_error,
                                          std::string("netlink receive: ") + std::strerror(errno)))
                     : read_netlink_ack({answer, static_cast<std::size_t>(n)}, sequence);
    }
  }
  ::close(fd);
  return result;
}

}  // namespace cellguard::can
