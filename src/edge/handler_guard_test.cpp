#include "edge/handler_guard.h"

#include <gtest/gtest.h>

#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace cellguard::edge {
namespace {

TEST(HandlerGuard, AThrowingHandlerIsReportedWithItsInputAndReturnsNormally) {
  std::vector<std::string> reports;
  auto on_failure = [&](const char* where, std::string_view what, const std::string& input, int number) {
    reports.push_back(std::string(where) + "|" + std::string(what) + "|" + input + "|" +
                      std::to_string(number));
  };
  std::function<void(const std::string&, int)> handler = guard_handler(
      "CAN frame",
      [](const std::string& input, int number) {
        if (number == 2) throw std::runtime_error("type_error.316: invalid UTF-8 in " + input);
        if (number == 3) throw 42;  // not a std::exception
      },
      on_failure);
  EXPECT_NO_THROW(handler("first", 1));
  EXPECT_NO_THROW(handler("\xfd", 2));
  EXPECT_NO_THROW(handler("odd", 3));
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0], "CAN frame|type_error.316: invalid UTF-8 in \xfd|\xfd|2");
  EXPECT_EQ(reports[1], "CAN frame|an exception that is not a std::exception|odd|3");
}

TEST(HandlerGuard, TheLoopGoesOnAfterAHandlerThrowsAndResumeRunsOncePerFailure) {
  asio::io_context io;
  std::vector<std::string> log;
  int resumed = 0;
  asio::post(io, [&] { log.push_back("before"); });
  asio::post(io, [&] { throw std::out_of_range("a bug"); });
  asio::post(io, [&] { log.push_back("after"); });
  asio::steady_timer timer(io);
  run_guarded(
      io, [&](std::string_view what) { log.push_back("failed: " + std::string(what)); },
      [&] {
        ++resumed;
        if (resumed > 1) return;
        asio::post(io, [&] { log.push_back("re-armed"); });
        timer.expires_after(std::chrono::milliseconds(1));
        timer.async_wait([&](asio::error_code) {
          log.push_back("timer");
          throw std::logic_error("another bug");
        });
      });
  EXPECT_EQ(log, (std::vector<std::string>{"before", "failed: a bug", "after", "re-armed", "timer",
                                           "failed: another bug"}));
  EXPECT_EQ(resumed, 2);
}

}  // namespace
}  // namespace cellguard::edge
