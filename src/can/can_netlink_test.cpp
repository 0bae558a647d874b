// The rtnetlink restart request, byte by byte as `ip link set can0 type can restart` sends it.
#include "can/can_netlink.h"

#include <gtest/gtest.h>
#include <linux/can/netlink.h>
#include <linux/if_link.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <cstring>

namespace cellguard::can {
namespace {

template <typename T>
T read_at(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  T value{};
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}

TEST(CanNetlink, RestartRequestNestsTheRestartAttributeInLinkInfo) {
  const auto bytes = can_restart_request(7, 42);
  const auto header = read_at<nlmsghdr>(bytes, 0);
  EXPECT_EQ(header.nlmsg_len, bytes.size());
  EXPECT_EQ(header.nlmsg_type, RTM_NEWLINK);
  EXPECT_EQ(header.nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(header.nlmsg_seq, 42u);
  const auto info = read_at<ifinfomsg>(bytes, NLMSG_LENGTH(0));
  EXPECT_EQ(info.ifi_index, 7);
  std::size_t at = NLMSG_SPACE(sizeof(ifinfomsg));
  const auto linkinfo = read_at<rtattr>(bytes, at);
  EXPECT_EQ(linkinfo.rta_type, IFLA_LINKINFO);
  EXPECT_EQ(at + linkinfo.rta_len, bytes.size());
  at += RTA_LENGTH(0);
  const auto kind = read_at<rtattr>(bytes, at);
  EXPECT_EQ(kind.rta_type, IFLA_INFO_KIND);
  EXPECT_EQ(kind.rta_len, RTA_LENGTH(3));
  EXPECT_EQ(std::memcmp(bytes.data() + at + RTA_LENGTH(0), "can", 3), 0);
  at += RTA_ALIGN(kind.rta_len);
  const auto data = read_at<rtattr>(bytes, at);
  EXPECT_EQ(data.rta_type, IFLA_INFO_DATA);
  EXPECT_EQ(data.rta_len, RTA_LENGTH(0) + RTA_SPACE(4));
  at += RTA_LENGTH(0);
  const auto restart = read_at<rtattr>(bytes, at);
  EXPECT_EQ(restart.rta_type, IFLA_CAN_RESTART);
  EXPECT_EQ(restart.rta_len, RTA_LENGTH(4));
  EXPECT_EQ(read_at<std::uint32_t>(bytes, at + RTA_LENGTH(0)), 1u);
}

std::vector<std::uint8_t> ack(std::uint32_t sequence, int error) {
  std::vector<std::uint8_t> out(NLMSG_LENGTH(sizeof(nlmsgerr)), 0);
  nlmsghdr h{};
  h.nlmsg_len = static_cast<std::uint32_t>(out.size());
  h.nlmsg_type = NLMSG_ERROR;
  h.nlmsg_seq = sequence;
  nlmsgerr e{};
  e.error = error;
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + NLMSG_LENGTH(0), &e, sizeof e);
  return out;
}

TEST(CanNetlink, TheAcknowledgementSaysWhyARestartWasRefused) {
  EXPECT_TRUE(read_netlink_ack(ack(5, 0), 5).ok());
  auto refused = read_netlink_ack(ack(5, -EPERM), 5);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("CAP_NET_ADMIN"), std::string::npos) << refused.error().message;
  EXPECT_NE(read_netlink_ack(ack(5, -EOPNOTSUPP), 5).error().message.find("vcan"), std::string::npos);
  EXPECT_FALSE(read_netlink_ack(ack(6, 0), 5).ok());  // another request's answer
  const std::uint8_t short_answer[4] = {};
  EXPECT_FALSE(read_netlink_ack(short_answer, 5).ok());
}

}  // namespace
}  // namespace cellguard::can
