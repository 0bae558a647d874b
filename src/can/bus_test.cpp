// The bus seam and the in-process bus: delivery semantics, validation, URLs.
#include "can/bus.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "can/bus_test_support.h"

namespace cellguard::can {
namespace {

using testing::run_ready;
using testing::run_until;

Frame make_frame(std::uint32_t id, std::vector<std::uint8_t> bytes) {
  Frame frame;
  frame.id = id;
  if (!bytes.empty()) frame.set_payload(bytes);  // an empty vector has no data pointer for memcpy
  return frame;
}

std::unique_ptr<Bus> open(asio::io_context& io, std::string_view url) {
  auto bus = open_bus(io, url);
  EXPECT_TRUE(bus.ok()) << url << ": " << (bus.ok() ? "" : bus.error().message);
  return bus.ok() ? std::move(bus).value() : nullptr;
}

struct Recorder {
  std::vector<Frame> frames;
  void attach(Bus& bus) {
    bus.on_receive([this](const Frame& frame) { frames.push_back(frame); });
  }
};

TEST(InprocBus, EveryOtherEndpointOnTheNameSeesAFrameButNotItsSender) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  auto c = open(io, "inproc:rig");
  Recorder ra, rb, rc;
  ra.attach(*a);
  rb.attach(*b);
  rc.attach(*c);

  ASSERT_TRUE(a->send(make_frame(0x181, {1, 2, 3})).ok());
  ASSERT_TRUE(run_until(io, [&] { return rb.frames.size() == 1 && rc.frames.size() == 1; }));
  run_ready(io);
  EXPECT_TRUE(ra.frames.empty());
  Frame expected = make_frame(0x181, {1, 2, 3});
  expected.bus.assign("rig");
  expected.timestamp_ns = rb.frames[0].timestamp_ns;
  EXPECT_EQ(rb.frames[0], expected);
  EXPECT_EQ(rc.frames[0], expected);
}

TEST(InprocBus, StampsTheReceiveTimeInNanoseconds) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  Recorder rb;
  rb.attach(*b);
  auto before_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  Frame frame = make_frame(0x1, {});
  frame.timestamp_ns = 42;  // ignored by send
  ASSERT_TRUE(a->send(frame).ok());
  ASSERT_TRUE(run_until(io, [&] { return rb.frames.size() == 1; }));
  EXPECT_GE(rb.frames[0].timestamp_ns, before_ns);
}

TEST(InprocBus, NamesAndIoContextsSeparateBuses) {
  asio::io_context io;
  asio::io_context other_io;
  auto a = open(io, "inproc:one");
  auto b = open(io, "inproc:two");
  auto c = open(other_io, "inproc:one");
  Recorder rb, rc;
  rb.attach(*b);
  rc.attach(*c);
  ASSERT_TRUE(a->send(make_frame(0x10, {})).ok());
  run_ready(io);
  run_ready(other_io);
  EXPECT_TRUE(rb.frames.empty());
  EXPECT_TRUE(rc.frames.empty());
}

TEST(InprocBus, KeepsTheOrderOfManyFrames) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  Recorder rb;
  rb.attach(*b);
  constexpr std::uint32_t kCount = 10000;
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_TRUE(
        a->send(make_frame(i % 0x800, {static_cast<std::uint8_t>(i), static_cast<std::uint8_t>(i >> 8)}))
            .ok());
  }
  ASSERT_TRUE(run_until(io, [&] { return rb.frames.size() == kCount; }));
  for (std::uint32_t i = 0; i < kCount; ++i) {
    ASSERT_EQ(rb.frames[i].id, i % 0x800);
    ASSERT_EQ(rb.frames[i].data[0] | rb.frames[i].data[1] << 8, static_cast<int>(i & 0xFFFF));
  }
  EXPECT_EQ(a->counters().frames_sent, kCount);
  EXPECT_EQ(b->counters().frames_received, kCount);
}

TEST(InprocBus, DeliversFramesSentFromOtherThreadsOnTheLoopThread) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  std::vector<std::thread::id> threads;
  b->on_receive([&](const Frame&) { threads.push_back(std::this_thread::get_id()); });
  std::thread sender([&] {
    for (int i = 0; i < 100; ++i) ASSERT_TRUE(a->send(make_frame(0x100, {})).ok());
  });
  sender.join();
  ASSERT_TRUE(run_until(io, [&] { return threads.size() == 100; }));
  for (auto id : threads) EXPECT_EQ(id, std::this_thread::get_id());
}

TEST(InprocBus, RejectsFramesNoBusCanCarry) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  EXPECT_EQ(a->send(make_frame(0x800, {})).error().code, ErrorCode::invalid_argument);
  Frame extended = make_frame(0x20000000, {});
  extended.extended = true;
  EXPECT_EQ(a->send(extended).error().code, ErrorCode::invalid_argument);
  Frame fd_remote = make_frame(0x1, {});
  fd_remote.fd = fd_remote.remote = true;
  EXPECT_EQ(a->send(fd_remote).error().code, ErrorCode::invalid_argument);
  Frame classic_brs = make_frame(0x1, {});
  classic_brs.bitrate_switch = true;
  EXPECT_EQ(a->send(classic_brs).error().code, ErrorCode::invalid_argument);
  Frame fd_nine = make_frame(0x1, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  fd_nine.fd = true;
  EXPECT_EQ(a->send(fd_nine).error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(a->counters().frames_sent, 0u);
}

TEST(InprocBus, ClosedEndpointsNeitherSendNorReceive) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  Recorder rb;
  rb.attach(*b);
  ASSERT_TRUE(a->send(make_frame(0x1, {})).ok());
  b->close();  // the frame already posted to b is dropped, not delivered
  run_ready(io);
  EXPECT_TRUE(rb.frames.empty());
  EXPECT_TRUE(b->is_closed());
  EXPECT_EQ(b->send(make_frame(0x1, {})).error().code, ErrorCode::io_error);
  b.reset();
  ASSERT_TRUE(a->send(make_frame(0x1, {})).ok());
  run_ready(io);
}

TEST(InprocBus, DestroyingAnEndpointWithFramesInFlightIsSafe) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  auto b = open(io, "inproc:rig");
  b->on_receive([](const Frame&) { FAIL() << "delivered after destruction"; });
  ASSERT_TRUE(a->send(make_frame(0x1, {})).ok());
  b.reset();
  run_ready(io);
}

TEST(InprocBus, SignalsReadyAndDescribesItself) {
  asio::io_context io;
  auto a = open(io, "inproc:rig");
  bool ready = false;
  a->on_ready([&] { ready = true; });
  EXPECT_TRUE(run_until(io, [&] { return ready; }));
  EXPECT_EQ(a->describe(), "inproc:rig");
}

TEST(OpenBus, RejectsMalformedUrls) {
  asio::io_context io;
  EXPECT_EQ(open_bus(io, "can0").error().code, ErrorCode::unsupported);
  EXPECT_EQ(open_bus(io, "inproc:").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://localhost/can0").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://localhost:0/can0").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://localhost:70000/can0").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://:29536/can0").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://localhost:29536/").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcand://localhost:29536/a b").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcan:").error().code, ErrorCode::invalid_argument);
  EXPECT_EQ(open_bus(io, "socketcan:a-name-longer-than-15").error().code, ErrorCode::invalid_argument);
}

TEST(OpenBus, SocketcanFailsClearlyWhereTheKernelHasNoCan) {
  asio::io_context io;
  auto bus = open_bus(io, "socketcan:cgnosuch0");
  ASSERT_FALSE(bus.ok());
  if (bus.error().code == ErrorCode::unsupported) {
    EXPECT_EQ(bus.error().message.rfind("SocketCAN unavailable: ", 0), 0u) << bus.error().message;
  } else {
    EXPECT_EQ(bus.error().code, ErrorCode::not_found) << bus.error().message;  // a kernel with CAN
  }
}

}  // namespace
}  // namespace cellguard::can
