// No exception leaves an edge handler (issue 12): the two pieces that make it so.
//
// guard_handler() wraps a handler installed on a bus, the board, the inverter: an exception is given
// to `on_failure(where, what, args...)` (the edge reports it as a bug, with the input) and does not
// leave the handler, so the device loop that called it goes on reading.
//
// run_guarded() runs the loop: an exception from any other handler (a timer, a device's own code)
// is given to `failed(what)`, then `resume()` re-arms what that handler may have left unarmed, and
// the loop runs again. It returns when the loop runs out of work or is stopped.
#pragma once

#include <asio/io_context.hpp>
#include <exception>
#include <string_view>
#include <type_traits>
#include <utility>

namespace cellguard::edge {

inline constexpr std::string_view kNotAStdException = "an exception that is not a std::exception";

template <typename Handler, typename OnFailure>
auto guard_handler(const char* where, Handler handler, OnFailure on_failure) {
  return
      [where, handler = std::move(handler), on_failure = std::move(on_failure)](const auto&... args) mutable {
        static_assert(std::is_void_v<decltype(handler(args...))>,
                      "guard_handler() is for handlers without a result");
        try {
          handler(args...);
        } catch (const std::exception& e) {
          on_failure(where, std::string_view(e.what()), args...);
        } catch (...) {
          on_failure(where, kNotAStdException, args...);
        }
      };
}

template <typename Failed, typename Resume>
void run_guarded(asio::io_context& io, Failed&& failed, Resume&& resume) {
  for (;;) {
    try {
      io.run();
      return;
    } catch (const std::exception& e) {
      failed(std::string_view(e.what()));
    } catch (...) {
      failed(kNotAStdException);
    }
    // asio: after an exception run() may be called again without restart().
    resume();
  }
}

}  // namespace cellguard::edge
