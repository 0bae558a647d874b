// A child process for black-box tests: `cellguard sim`, `cellguard edge`, peers. Started with
// arguments, its first stdout line (the ready line, JSON) read with a timeout, stderr kept in a
// file for failure messages, stopped with SIGTERM (or killed with SIGKILL) at the end.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace cellguard::testing {

class ChildProcess {
 public:
  // `log_path` receives the child's stderr. Waits up to `ready_timeout` for one stdout line.
  ChildProcess(std::vector<std::string> args, std::string log_path,
               std::chrono::milliseconds ready_timeout = std::chrono::seconds(30))
      : log_path_(std::move(log_path)) {
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      const int err = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    stdout_fd_ = out[0];
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + ready_timeout;
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 200) <= 0) continue;
      char buffer[4096];
      const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      line.append(buffer, static_cast<std::size_t>(n));
    }
    ready_ = nlohmann::json::parse(line.substr(0, line.find('\n')), nullptr, false);
  }

  ~ChildProcess() { stop(); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  bool ready() const { return ready_.is_object() && ready_.value("ready", false); }
  const nlohmann::json& ready_line() const { return ready_; }
  pid_t pid() const { return pid_; }

  // SIGTERM, then SIGKILL after `grace`; returns the exit code (128 + signal if killed).
  int stop(std::chrono::milliseconds grace = std::chrono::seconds(10)) { return end(SIGTERM, grace); }
  int kill_hard() { return end(SIGKILL, std::chrono::seconds(5)); }

  bool running() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      pid_ = -1;
      ::close(stdout_fd_);
      return false;
    }
    return true;
  }

  std::string log() const {
    std::ifstream in(log_path_);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  int end(int signal, std::chrono::milliseconds grace) {
    if (pid_ <= 0) return exit_code_;
    ::kill(pid_, signal);
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + grace;
    while (::waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pid_ = -1;
    ::close(stdout_fd_);
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return exit_code_;
  }

  std::string log_path_;
  pid_t pid_ = -1;
  int stdout_fd_ = -1;
  int exit_code_ = -1;
  nlohmann::json ready_;
};

// Polls `condition` every 10 ms until it holds or `timeout` passes.
inline bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// Reads a JSON-lines file as it grows.
class JsonLinesTail {
 public:
  explicit JsonLinesTail(std::string path) : path_(std::move(path)) {}
  // New complete lines since the last call, appended to all().
  const std::vector<nlohmann::json>& poll() {
    std::ifstream in(path_);
    if (!in) return all_;
    in.seekg(static_cast<std::streamoff>(offset_));
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // a partial last line: read it next time
      offset_ += line.size() + 1;
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (!j.is_discarded()) all_.push_back(std::move(j));
    }
    return all_;
  }
  const std::vector<nlohmann::json>& all() const { return all_; }
  // The first event (from index `from`) for which `match` holds, waiting up to `timeout`.
  std::optional<nlohmann::json> wait_for(const std::function<bool(const nlohmann::json&)>& match,
                                         std::chrono::milliseconds timeout, std::size_t from = 0) {
    std::optional<nlohmann::json> found;
    wait_until(
        [&] {
          const auto& events = poll();
          for (std::size_t i = from; i < events.size(); ++i) {
            if (match(events[i])) {
              found = events[i];
              return true;
            }
          }
          return false;
        },
        timeout);
    return found;
  }

 private:
  std::string path_;
  std::size_t offset_ = 0;
  std::vector<nlohmann::json> all_;
};

}  // namespace cellguard::testing
