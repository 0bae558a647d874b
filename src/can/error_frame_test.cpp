// Error frames as the kernel sends them (linux/can/error.h; drivers call can_change_state() and
// can_bus_off()), injected as bytes: what vcan in the VM test can never produce.
#include "can/error_frame.h"

#include <gtest/gtest.h>
#include <linux/can/error.h>

#include <array>

namespace cellguard::can {
namespace {

ErrorFrameInfo frame(std::uint32_t error_class, std::array<std::uint8_t, 8> data = {}) {
  return classify_error_frame(error_class, data);
}

TEST(ErrorFrame, BusOffIsRecognisedAndDescribed) {
  const auto info = frame(CAN_ERR_BUSOFF);
  EXPECT_TRUE(info.bus_off);
  EXPECT_FALSE(info.error_passive);
  EXPECT_EQ(info.describe(), "bus-off");
}

TEST(ErrorFrame, ControllerStatesComeFromDataByte1WithTheCountersInBytes6And7) {
  // can_change_state() to error passive on the TX side: CAN_ERR_CRTL | CAN_ERR_CNT, data[1], TEC/REC.
  auto passive = frame(CAN_ERR_CRTL | CAN_ERR_CNT, {0, CAN_ERR_CRTL_TX_PASSIVE, 0, 0, 0, 0, 128, 3});
  EXPECT_TRUE(passive.error_passive);
  EXPECT_FALSE(passive.error_warning);
  EXPECT_TRUE(passive.has_counts);
  EXPECT_EQ(passive.tx_errors, 128);
  EXPECT_EQ(passive.rx_errors, 3);
  EXPECT_EQ(passive.describe(), "error passive (TEC 128, REC 3)");
  auto warning = frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_RX_WARNING});
  EXPECT_TRUE(warning.error_warning);
  EXPECT_FALSE(warning.error_passive);
  EXPECT_EQ(warning.describe(), "error warning");
  auto active = frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_ACTIVE});
  EXPECT_TRUE(active.back_to_active);
  auto overflow = frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_RX_OVERFLOW});
  EXPECT_TRUE(overflow.controller_overflow);
  EXPECT_FALSE(overflow.back_to_active);
}

TEST(ErrorFrame, BusErrorsAckAndOthers) {
  auto protocol = frame(CAN_ERR_PROT | CAN_ERR_BUSERROR, {0, 0, CAN_ERR_PROT_BIT, CAN_ERR_PROT_LOC_ACK});
  EXPECT_TRUE(protocol.bus_error);
  EXPECT_EQ(frame(CAN_ERR_ACK).describe(), "no acknowledgement");
  EXPECT_EQ(frame(CAN_ERR_RESTARTED).describe(), "restarted");
  EXPECT_EQ(frame(CAN_ERR_LOSTARB | CAN_ERR_TX_TIMEOUT).describe(), "lost arbitration, transmit timeout");
  EXPECT_EQ(frame(0).describe(), "error frame");
  // A short payload reads as zeros, never out of bounds.
  const std::uint8_t one[1] = {0xFF};
  EXPECT_FALSE(classify_error_frame(CAN_ERR_CRTL | CAN_ERR_CNT, one).error_passive);
}

TEST(ControllerCounters, CountTransitionsNotFrames) {
  ControllerCounters c;
  EXPECT_TRUE(c.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_TX_WARNING})));
  EXPECT_EQ(c.state, ControllerState::warning);
  EXPECT_TRUE(c.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_TX_PASSIVE})));
  EXPECT_FALSE(c.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_TX_PASSIVE})));  // again: same state
  EXPECT_TRUE(c.add(frame(CAN_ERR_BUSOFF)));
  EXPECT_FALSE(c.add(frame(CAN_ERR_BUSOFF)));
  EXPECT_EQ(c.state, ControllerState::bus_off);
  EXPECT_TRUE(c.add(frame(CAN_ERR_RESTARTED)));
  EXPECT_EQ(c.state, ControllerState::active);
  EXPECT_TRUE(c.add(frame(CAN_ERR_BUSOFF)));
  EXPECT_TRUE(c.add(frame(CAN_ERR_RESTARTED)));
  c.add(frame(CAN_ERR_PROT | CAN_ERR_BUSERROR));
  c.add(frame(CAN_ERR_ACK));
  EXPECT_EQ(c.error_frames, 10u);
  EXPECT_EQ(c.error_warning, 1u);
  EXPECT_EQ(c.error_passive, 1u);
  EXPECT_EQ(c.bus_off, 2u);
  EXPECT_EQ(c.restarts, 2u);
  EXPECT_EQ(c.bus_errors, 2u);
  // A warning while passive does not lower the state (the other side may still be passive).
  ControllerCounters p;
  p.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_RX_PASSIVE}));
  EXPECT_FALSE(p.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_TX_WARNING})));
  EXPECT_EQ(p.state, ControllerState::passive);
  EXPECT_TRUE(p.add(frame(CAN_ERR_CRTL, {0, CAN_ERR_CRTL_ACTIVE})));
  EXPECT_EQ(p.state, ControllerState::active);
}

}  // namespace
}  // namespace cellguard::can
