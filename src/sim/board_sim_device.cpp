#include "sim/board_sim_device.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace cellguard::sim {

namespace {

class BoardSimDevice final : public SimDevice {
 public:
  BoardSimDevice(BoardConfig config, std::string link_path)
      : config_(std::move(config)), link_path_(std::move(link_path)) {}

  Result<void> start(asio::io_context& /*io*/, PackModel& pack, FaultDispatcher& faults,
                     ControlHandler& control, nlohmann::json& ready) override {
    auto board = BoardDevice::open(pack, config_);
    if (!board) {
      return Error(board.error().code, "sensor board: " + board.error().message);
    }
    board_ = std::move(*board);
    update_link();
    ready["board"] = link_path_.empty() ? board_->path() : link_path_;

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

  void stop() override {
    board_.reset();
    if (!link_path_.empty()) ::unlink(link_path_.c_str());
  }

 private:
  Result<void> set_unplugged(bool unplugged) {
    if (!board_) {
      return Error(ErrorCode::invalid_argument, "board_unplugged: the board is not running");
    }
    if (auto changed = board_->set_unplugged(unplugged); !changed) {
      return changed;
    }
    update_link();
    if (auto log = spdlog::get("sim")) {
      if (unplugged)
        log->info("sensor board unplugged");
      else
        log->info("sensor board replugged at {}", board_->path());
    }
    return success();
  }

  nlohmann::json status() const {
    const BoardOutputs& out = board_->outputs();
    const BoardStats& stats = board_->stats();
    return {{"path", board_->path()},
            {"unplugged", board_->unplugged()},
            {"outputs",
             {{"pump", out.pump},
              {"fan", out.fan},
              {"relay1", out.relay1},
              {"relay2", out.relay2},
              {"relay3", out.relay3}}},
            {"lines_written", stats.lines_written},
            {"lines_unheard", stats.lines_unheard},
            {"commands_applied", stats.commands_applied},
            {"commands_ignored", stats.commands_ignored},
            {"malformed_bytes", stats.malformed_bytes}};
  }

  // The stable name, like udev's /dev/serial/by-id link: points at the current pty, absent while
  // unplugged. Replaced atomically (a temporary link renamed over it).
  void update_link() {
    if (link_path_.empty()) return;
    if (board_->unplugged()) {
      ::unlink(link_path_.c_str());
      return;
    }
    const std::string temporary = link_path_ + ".new";
    ::unlink(temporary.c_str());
    if (::symlink(board_->path().c_str(), temporary.c_str()) != 0 ||
        ::rename(temporary.c_str(), link_path_.c_str()) != 0) {
      if (auto log = spdlog::get("sim")) log->warn("board link {}: {}", link_path_, std::strerror(errno));
    }
  }

  BoardConfig config_;
  std::string link_path_;
  std::unique_ptr<BoardDevice> board_;
};

}  // namespace

std::unique_ptr<SimDevice> make_board_sim_device(BoardConfig config, std::string link_path) {
  return std::make_unique<BoardSimDevice>(std::move(config), std::move(link_path));
}

}  // namespace cellguard::sim
