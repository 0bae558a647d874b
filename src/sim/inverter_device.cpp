#include "sim/inverter_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>
#include <vector>

#include "sim/device_pty.h"
#include "sim/pack_model.h"

namespace cellguard::sim {

namespace {

namespace reg = inverter_reg;

Error os_error(const std::string& what) {
  return Error(ErrorCode::io_error, what + ": " + std::strerror(errno));
}

// Owns a libmodbus context. Its socket is never closed through libmodbus (modbus_close would close
// whichever descriptor was set last); descriptors are owned by the server.
struct ModbusContext {
  modbus_t* ctx = nullptr;
  explicit ModbusContext(modbus_t* c) : ctx(c) {}
  ModbusContext(const ModbusContext&) = delete;
  ModbusContext& operator=(const ModbusContext&) = delete;
  ~ModbusContext() {
    if (ctx != nullptr) {
      modbus_set_socket(ctx, -1);
      modbus_free(ctx);
    }
  }
};

struct MappingDeleter {
  void operator()(modbus_mapping_t* mapping) const { modbus_mapping_free(mapping); }
};
using Mapping = std::unique_ptr<modbus_mapping_t, MappingDeleter>;

std::uint16_t be16(const std::uint8_t* bytes) {
  return static_cast<std::uint16_t>((bytes[0] << 8) | bytes[1]);
}

void close_fd(int& fd) {
  if (fd >= 0) {
    ::close(fd);
    fd = -1;
  }
}

}  // namespace

struct InverterDevice::Server {
  InverterDevice& device;
  bool is_rtu = false;
  std::string endpoint;
  Pty pty;              // RTU: the pty whose master we serve
  int slave_id = 2;     // RTU
  int listen_fd = -1;   // TCP
  int max_clients = 8;  // TCP
  std::string host;     // TCP
  int port = 0;         // TCP
  int wake_read = -1;
  int wake_write = -1;
  std::thread thread;

  explicit Server(InverterDevice& d) : device(d) {}
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;
  ~Server() {
    stop();
    close_fd(listen_fd);
    close_fd(wake_read);
    close_fd(wake_write);
  }

  Result<void> open_wake_pipe() {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
      return os_error("inverter: pipe");
    }
    wake_read = fds[0];
    wake_write = fds[1];
    return success();
  }

  void stop() {
    if (thread.joinable()) {
      const char byte = 's';
      [[maybe_unused]] const ssize_t n = ::write(wake_write, &byte, 1);
      thread.join();
    }
  }

  static Mapping new_mapping() {
    return Mapping(modbus_mapping_new_start_address(0, 0, 0, 0, reg::kHoldingFirst, reg::kHoldingCount,
                                                    reg::kInputFirst, reg::kInputCount));
  }

  enum class Outcome { answered, exception, unanswered };

  // Applies one request to the logic and answers it through `reply_ctx` (or not: fault injection).
  // The request has passed libmodbus's framing and integrity checks.
  // `corrupt_answer` is set if the answer is to be sent with a wrong CRC (RTU fault injection).
  Outcome handle(modbus_t* reply_ctx, modbus_mapping_t* mapping, const std::uint8_t* req, int length,
                 bool& corrupt_answer) EXCLUDES(device.mutex_) {
    corrupt_answer = false;
    const int offset = modbus_get_header_length(reply_ctx);
    const std::uint8_t function = req[offset];
    const std::uint16_t address = length >= offset + 3 ? be16(req + offset + 1) : 0;

    bool drop = device.not_answering_.load();
    bool corrupt = false;
    {
      MutexLock lock(device.mutex_);
      ++device.stats_.requests;
      const std::uint64_t n = ++device.request_counter_;
      const int timeout_every = device.timeout_every_.load();
      const int crc_every = device.crc_error_every_.load();
      drop = drop || (timeout_every > 0 && n % static_cast<std::uint64_t>(timeout_every) == 0);
      corrupt = is_rtu && crc_every > 0 && n % static_cast<std::uint64_t>(crc_every) == 0;
      if (drop) {
        ++device.stats_.unanswered;
        return Outcome::unanswered;
      }
    }
    const long long delay_ms = device.response_delay_ms_.load();
    if (delay_ms > 0) {
      MutexLock lock(device.mutex_);
      const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay_ms);
      while (!device.stopping_) {
        if (device.stop_cv_.wait_until(lock, until) == std::cv_status::timeout) break;
      }
      if (device.stopping_) {
        return Outcome::unanswered;
      }
    }

    ModbusException exception = ModbusException::none;
    {
      MutexLock lock(device.mutex_);
      InverterLogic& logic = device.logic_;
      switch (function) {
        case MODBUS_FC_WRITE_SINGLE_REGISTER:
          exception = length >= offset + 5 ? logic.write_holding(address, be16(req + offset + 3))
                                           : ModbusException::illegal_data_value;
          break;
        case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
          // Modbus Application Protocol v1.1b3, §6.12: quantity 1..123, byte count = 2·quantity.
          const int count = length >= offset + 6 ? be16(req + offset + 3) : 0;
          const int byte_count = length >= offset + 6 ? req[offset + 5] : 0;
          if (count < 1 || count > MODBUS_MAX_WRITE_REGISTERS || byte_count != 2 * count ||
              length < offset + 6 + byte_count) {
            exception = ModbusException::illegal_data_value;
            break;
          }
          std::vector<std::uint16_t> values(static_cast<std::size_t>(count));
          for (int i = 0; i < count; ++i) {
            values[static_cast<std::size_t>(i)] = be16(req + offset + 6 + 2 * i);
          }
          exception = logic.write_holding(address, values);
          break;
        }
        case MODBUS_FC_MASK_WRITE_REGISTER:
        case MODBUS_FC_WRITE_AND_READ_REGISTERS:
          exception = ModbusException::illegal_function;  // the converter supports 3, 4, 6, 16 only
          break;
        default:
          break;  // reads: answered from the mapping below (unmapped ranges → ILLEGAL_DATA_ADDRESS)
      }
      const auto holding = logic.holding_registers();
      const auto input = logic.input_registers();
      std::copy(holding.begin(), holding.end(), mapping->tab_registers);
      std::copy(input.begin(), input.end(), mapping->tab_input_registers);
    }

    const bool broadcast = is_rtu && req[offset - 1] == MODBUS_BROADCAST_ADDRESS;
    if (broadcast) {
      return Outcome::unanswered;  // RTU broadcasts are executed, never answered
    }
    if (exception != ModbusException::none) {
      modbus_reply_exception(reply_ctx, req, static_cast<unsigned int>(exception));
    } else {
      modbus_reply(reply_ctx, req, length, mapping);
    }
    MutexLock lock(device.mutex_);
    if (corrupt) {
      ++device.stats_.corrupted;
      corrupt_answer = true;
    }
    if (exception != ModbusException::none) {
      ++device.stats_.exceptions;
      return Outcome::exception;
    }
    ++device.stats_.answers;
    return Outcome::answered;
  }

  void count_bad_request() EXCLUDES(device.mutex_) {
    MutexLock lock(device.mutex_);
    ++device.stats_.bad_requests;
  }

  void run_rtu() {
    // Requests are received from the pty master by `ctx`; answers are built by `capture` into a
    // pipe, then copied to the master, so an answer's CRC can be corrupted on demand.
    int capture_pipe[2] = {-1, -1};
    if (::pipe2(capture_pipe, O_CLOEXEC | O_NONBLOCK) != 0) {
      return;
    }
    auto make_ctx = [this](int fd) {
      auto context =
          std::make_unique<ModbusContext>(modbus_new_rtu(pty.slave_path().c_str(), 19200, 'N', 8, 1));
      if (context->ctx != nullptr) {
        modbus_set_slave(context->ctx, slave_id);
        modbus_set_socket(context->ctx, fd);
      }
      return context;
    };
    auto ctx = make_ctx(pty.master_fd());
    auto capture = make_ctx(capture_pipe[1]);
    Mapping mapping = new_mapping();
    std::array<std::uint8_t, MODBUS_RTU_MAX_ADU_LENGTH> request{};
    std::array<std::uint8_t, MODBUS_RTU_MAX_ADU_LENGTH + 16> answer{};

    while (ctx->ctx != nullptr && capture->ctx != nullptr && mapping) {
      pollfd fds[2] = {{pty.master_fd(), POLLIN, 0}, {wake_read, POLLIN, 0}};
      if (::poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[1].revents != 0) {
        break;
      }
      if ((fds[0].revents & POLLIN) == 0) {
        continue;
      }
      const int length = modbus_receive(ctx->ctx, request.data());
      if (length < 0) {
        count_bad_request();
        modbus_flush(ctx->ctx);
        continue;
      }
      if (length == 0) {
        // Addressed to another slave. libmodbus would now expect that slave's answer and swallow
        // the next frame; on a point-to-point line there is none, so start with a fresh context.
        ctx = make_ctx(pty.master_fd());
        continue;
      }
      bool corrupt = false;
      if (handle(capture->ctx, mapping.get(), request.data(), length, corrupt) == Outcome::unanswered) {
        continue;
      }
      const ssize_t n = ::read(capture_pipe[0], answer.data(), answer.size());
      if (n <= 0) {
        continue;
      }
      if (corrupt) {
        answer[static_cast<std::size_t>(n - 1)] ^= 0xA5;  // wrong CRC high byte
      }
      pty.discard_unread_output();  // anything the peer left unread is stale by now
      [[maybe_unused]] auto written =
          pty.write_some({reinterpret_cast<const char*>(answer.data()), static_cast<std::size_t>(n)});
    }
    ::close(capture_pipe[0]);
    ::close(capture_pipe[1]);
  }

  void run_tcp() {
    ModbusContext ctx(modbus_new_tcp(host.c_str(), port));
    Mapping mapping = new_mapping();
    std::vector<int> clients;
    std::array<std::uint8_t, MODBUS_TCP_MAX_ADU_LENGTH> request{};
    while (ctx.ctx != nullptr && mapping) {
      std::vector<pollfd> fds = {{wake_read, POLLIN, 0}, {listen_fd, POLLIN, 0}};
      for (const int fd : clients) {
        fds.push_back({fd, POLLIN, 0});
      }
      if (::poll(fds.data(), fds.size(), -1) < 0) {
        if (errno == EINTR) continue;
        break;
      }
      if (fds[0].revents != 0) {
        break;
      }
      if ((fds[1].revents & POLLIN) != 0) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0 && static_cast<int>(clients.size()) < max_clients) {
          clients.push_back(fd);
        } else if (fd >= 0) {
          ::close(fd);  // over the connection limit
        }
      }
      std::vector<int> closed;
      for (std::size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0) {
          continue;
        }
        modbus_set_socket(ctx.ctx, fds[i].fd);
        const int length = modbus_receive(ctx.ctx, request.data());
        if (length <= 0) {
          closed.push_back(fds[i].fd);  // peer closed, or a malformed frame: drop the connection
          if (length < 0 && errno != ECONNRESET) {
            count_bad_request();
          }
          continue;
        }
        bool corrupt_unused = false;  // TCP has no CRC
        handle(ctx.ctx, mapping.get(), request.data(), length, corrupt_unused);
      }
      for (int fd : closed) {
        std::erase(clients, fd);
        ::close(fd);
      }
    }
    for (int fd : clients) {
      ::close(fd);
    }
  }
};

std::unique_ptr<InverterDevice> InverterDevice::create(PackModel& pack, InverterConfig config) {
  std::unique_ptr<InverterDevice> device(new InverterDevice(pack, config));
  device->sync();  // the registers reflect the pack before any server answers
  return device;
}

InverterDevice::InverterDevice(PackModel& pack, InverterConfig config) : pack_(pack), logic_(config) {}

InverterDevice::~InverterDevice() { stop(); }

void InverterDevice::stop() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (rtu_) rtu_->stop();
  if (tcp_) tcp_->stop();
  MutexLock lock(mutex_);
  stopping_ = false;
}

Result<std::string> InverterDevice::start_rtu(const InverterRtuConfig& config) {
  if (rtu_) {
    return Error(ErrorCode::invalid_argument, "inverter: RTU server already started");
  }
  if (config.slave_id < 1 || config.slave_id > 247) {
    return Error(ErrorCode::invalid_argument, "inverter: slave id must be 1..247");
  }
  auto pty = Pty::open(config.baud, Pty::Mode::kHoldSlave);
  if (!pty) {
    return pty.error();
  }
  auto server = std::make_unique<Server>(*this);
  server->is_rtu = true;
  server->pty = std::move(*pty);
  server->slave_id = config.slave_id;
  server->endpoint = server->pty.slave_path();
  if (auto wake = server->open_wake_pipe(); !wake) {
    return wake.error();
  }
  Server* raw = server.get();
  server->thread = std::thread([raw] { raw->run_rtu(); });
  rtu_ = std::move(server);
  return rtu_->endpoint;
}

Result<std::string> InverterDevice::start_tcp(const InverterTcpConfig& config) {
  if (tcp_) {
    return Error(ErrorCode::invalid_argument, "inverter: TCP server already started");
  }
  if (config.port < 0 || config.port > 65535 || config.max_clients < 1) {
    return Error(ErrorCode::invalid_argument, "inverter: port must be 0..65535, max_clients ≥ 1");
  }
  auto server = std::make_unique<Server>(*this);
  server->host = config.host;
  server->port = config.port;
  server->max_clients = config.max_clients;
  {
    ModbusContext ctx(modbus_new_tcp(config.host.c_str(), config.port));
    if (ctx.ctx == nullptr) {
      return Error(ErrorCode::invalid_argument, "inverter: bad TCP address " + config.host);
    }
    server->listen_fd = modbus_tcp_listen(ctx.ctx, config.max_clients);
  }
  if (server->listen_fd < 0) {
    return os_error("inverter: listen on " + config.host + ":" + std::to_string(config.port));
  }
  sockaddr_in bound{};
  socklen_t bound_length = sizeof bound;
  if (::getsockname(server->listen_fd, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return os_error("inverter: getsockname");
  }
  ::fcntl(server->listen_fd, F_SETFD, FD_CLOEXEC);
  server->port = ntohs(bound.sin_port);
  server->endpoint = config.host + ":" + std::to_string(server->port);
  if (auto wake = server->open_wake_pipe(); !wake) {
    return wake.error();
  }
  Server* raw = server.get();
  server->thread = std::thread([raw] { raw->run_tcp(); });
  tcp_ = std::move(server);
  return tcp_->endpoint;
}

std::string InverterDevice::rtu_endpoint() const { return rtu_ ? rtu_->endpoint : std::string(); }
std::string InverterDevice::tcp_endpoint() const { return tcp_ ? tcp_->endpoint : std::string(); }

void InverterDevice::sync() {
  InverterInputs inputs;
  inputs.time_s = pack_.time_s();
  inputs.battery_voltage_v = pack_.pack_voltage_v();
  inputs.dc_link_voltage_v = pack_.dc_link_voltage_v();
  inputs.pack_current_a = pack_.pack_current_a();
  inputs.ambient_c = pack_.ambient_c();
  inputs.positive_contactor = pack_.positive_contactor();
  inputs.negative_contactor = pack_.negative_contactor();
  double demand_a = 0;
  {
    MutexLock lock(mutex_);
    logic_.update(inputs);
    demand_a = logic_.current_demand_a();
  }
  pack_.set_inverter_current_a(demand_a);
}

bool InverterDevice::set_fault_bit(std::uint16_t address, int bit, bool on) {
  MutexLock lock(mutex_);
  return logic_.set_fault_bit(address, bit, on);
}

void InverterDevice::set_wrong_readback(const InverterReadbackError& error) {
  MutexLock lock(mutex_);
  logic_.set_readback_error(error);
}

InverterLogic InverterDevice::logic() const {
  MutexLock lock(mutex_);
  return logic_;
}

InverterStats InverterDevice::stats() const {
  MutexLock lock(mutex_);
  return stats_;
}

}  // namespace cellguard::sim
