#include "sim/board_sim_device.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace cellguard::sim {

namespace {

class BoardSimDevice final : public SimDevice {
 public:
  explicit BoardSimDevice(BoardConfig config) : config_(std::move(config)) {}

  Result<void> start(asio::io_context& /*io*/, PackModel& pack, FaultDispatcher& faults, ControlHandler& control,
                     nlohmann::json& ready) override {
    auto board = BoardDevice::open(pack, config_);
    if (!board) {
      return Error(board.error().code, "sensor board: " + board.error().message);
    }
    board_ = std::move(*board);
    ready["board"] = board_->path();

    auto registered = faults.register_handler(
        "board_unplugged",
        [this](const FaultCommand& command) { return set_unplugged(command.number("on", 1) != 0); },
        [this] { (void)set_unplugged(false); });
    if (!registered) {
      return registered;
    }
    control.add_status("board", [this] { return status(); });
    return success();
  }

  void after_step() override {
    if (board_) board_->poll();
  }

  void stop() override { board_.reset(); }

 private:
  Result<void> set_unplugged(bool unplugged) {
    if (!board_) {
      return Error(ErrorCode::invalid_argument, "board_unplugged: the board is not running");
    }
    if (auto changed = board_->set_unplugged(unplugged); !changed) {
      return changed;
    }
    if (auto log = spdlog::get("sim")) {
      if (unplugged) log->info("sensor board unplugged");
      else log->info("sensor board replugged at {}", board_->path());
    }
    return success();
  }

  nlohmann::json status() const {
    const BoardOutputs& out = board_->outputs();
    const BoardStats& stats = board_->stats();
    return {{"path", board_->path()},
            {"unplugged", board_->unplugged()},
            {"outputs", {{"pump", out.pump}, {"fan", out.fan}, {"relay1", out.relay1}, {"relay2", out.relay2},
                         {"relay3", out.relay3}}},
            {"lines_written", stats.lines_written},
            {"lines_unheard", stats.lines_unheard},
            {"commands_applied", stats.commands_applied},
            {"commands_ignored", stats.commands_ignored},
            {"malformed_bytes", stats.malformed_bytes}};
  }

  BoardConfig config_;
  std::unique_ptr<BoardDevice> board_;
};

}  // namespace

std::unique_ptr<SimDevice> make_board_sim_device(BoardConfig config) {
  return std::make_unique<BoardSimDevice>(std::move(config));
}

}  // namespace cellguard::sim
