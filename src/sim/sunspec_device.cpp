#include "sim/sunspec_device.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "sim/pack_model.h"
#include "sunspec/sunspec.h"

namespace cellguard::sim {
namespace {

namespace ss = sunspec;

constexpr std::array<std::pair<std::uint16_t, std::uint16_t>, 4> kModels = {
    {{ss::common::kId, ss::common::kLength},
     {ss::inverter::kId, ss::inverter::kLength},
     {ss::storage::kId, ss::storage::kLength},
     {ss::battery::kId, ss::battery::kLength}}};

constexpr std::uint16_t sf(int value) { return static_cast<std::uint16_t>(static_cast<std::int16_t>(value)); }
constexpr std::uint16_t kVoltSf = sf(-1), kAmpSf = sf(-1), kWattSf = sf(1), kTempSf = sf(-1),
                        kWChaMaxSf = sf(1), kRateSf = sf(-1);

std::uint16_t raw(double value, std::uint16_t scale_factor, ss::PointType type) {
  return ss::to_raw(type, value, scale_factor).value_or(0);
}

std::uint16_t be16(const std::uint8_t* bytes) {
  return static_cast<std::uint16_t>((bytes[0] << 8) | bytes[1]);
}

}  // namespace

SunSpecLogic::SunSpecLogic(SunSpecSimConfig config) : config_(std::move(config)) {
  registers_ = {ss::kMarkerHigh, ss::kMarkerLow};
  for (const auto& [id, length] : kModels) {
    registers_.push_back(id);
    registers_.push_back(length);
    registers_.resize(registers_.size() + length, 0);
  }
  registers_.push_back(ss::kEndId);
  registers_.push_back(0);
  auto text = [&](const ss::Point& p, const std::string& value) {
    ss::encode_string(
        value, std::span(registers_).subspan(model_address(p.model) - config_.base + p.offset, p.size));
  };
  text(ss::common::Mn, config_.make);
  text(ss::common::Md, config_.model);
  text(ss::common::SN, config_.serial);
  text(ss::common::Vr, config_.version);
  at(ss::inverter::kId, ss::inverter::W_SF.offset) = kWattSf;
  at(ss::inverter::kId, ss::inverter::DCA_SF.offset) = kAmpSf;
  at(ss::inverter::kId, ss::inverter::DCV_SF.offset) = kVoltSf;
  at(ss::inverter::kId, ss::inverter::DCW_SF.offset) = kWattSf;
  at(ss::inverter::kId, ss::inverter::Tmp_SF.offset) = kTempSf;
  at(ss::inverter::kId, ss::inverter::St.offset) = static_cast<std::uint16_t>(ss::inverter::State::off);
  at(ss::storage::kId, ss::storage::WChaMax_SF.offset) = kWChaMaxSf;
  at(ss::storage::kId, ss::storage::InOutWRte_SF.offset) = kRateSf;
  at(ss::storage::kId, ss::storage::WChaMax.offset) =
      raw(config_.w_cha_max_w, kWChaMaxSf, ss::PointType::uint16);
  at(ss::battery::kId, ss::battery::V_SF.offset) = kVoltSf;
  at(ss::battery::kId, ss::battery::A_SF.offset) = kAmpSf;
  at(ss::battery::kId, ss::battery::W_SF.offset) = kWattSf;
  at(ss::battery::kId, ss::battery::SetInvState.offset) =
      static_cast<std::uint16_t>(ss::battery::InverterCommand::stopped);
  at(ss::battery::kId, ss::battery::State.offset) =
      static_cast<std::uint16_t>(ss::battery::BankState::disconnected);
}

std::uint16_t SunSpecLogic::model_address(std::uint16_t id) const {
  std::uint32_t address = config_.base + 2u;
  for (const auto& [model, length] : kModels) {
    if (model == id) return static_cast<std::uint16_t>(address);
    address += 2u + length;
  }
  return 0;
}

std::uint16_t& SunSpecLogic::at(std::uint16_t model, std::uint16_t offset) {
  return registers_[model_address(model) - config_.base + offset];
}
std::uint16_t SunSpecLogic::get(std::uint16_t model, std::uint16_t offset) const {
  return registers_[model_address(model) - config_.base + offset];
}

std::uint16_t SunSpecLogic::heartbeat_value() const {
  return get(ss::battery::kId, ss::battery::CtrlHb.offset);
}

ModbusException SunSpecLogic::write(std::uint16_t address, std::uint16_t value) {
  auto is = [&](const ss::Point& p) { return address == model_address(p.model) + p.offset; };
  if (is(ss::battery::CtrlHb) || is(ss::storage::WChaMax)) {
    // any value
  } else if (is(ss::battery::SetInvState)) {
    if (value < 1 || value > 3) return ModbusException::illegal_data_value;
    started_ = value == static_cast<std::uint16_t>(ss::battery::InverterCommand::started);
    if (started_) {
      heartbeat_lost_ = false;
      heartbeat_changed_s_ = now_s_;
    }
  } else if (is(ss::storage::StorCtl_Mod)) {
    if ((value & ~(ss::storage::kChargeBit | ss::storage::kDischargeBit)) != 0)
      return ModbusException::illegal_data_value;
  } else if (is(ss::storage::InWRte) || is(ss::storage::OutWRte)) {
    const auto percent = static_cast<std::int16_t>(value);
    if (percent < 0 || percent > 1000) return ModbusException::illegal_data_value;  // 0..100.0 %
  } else {
    return ModbusException::illegal_data_address;
  }
  registers_[address - config_.base] = value;
  return ModbusException::none;
}

void SunSpecLogic::update(const SunSpecInputs& in) {
  now_s_ = in.time_s;
  const std::uint16_t beat = heartbeat_value();
  if (beat != last_heartbeat_) {
    last_heartbeat_ = beat;
    heartbeat_changed_s_ = now_s_;
  }
  std::uint16_t& events =
      at(ss::battery::kId, static_cast<std::uint16_t>(ss::battery::Evt1.offset + 1));  // low word
  if (started_ && now_s_ - heartbeat_changed_s_ > config_.heartbeat_timeout_s) {
    started_ = false;
    heartbeat_lost_ = true;
    at(ss::battery::kId, ss::battery::SetInvState.offset) =
        static_cast<std::uint16_t>(ss::battery::InverterCommand::stopped);
  }
  events = heartbeat_lost_ ? static_cast<std::uint16_t>(events | 1u)
                           : static_cast<std::uint16_t>(events & ~1u);  // COMMUNICATION_ERROR

  power_demand_w_ = 0;
  if (started_) {
    const std::uint16_t mode = get(ss::storage::kId, ss::storage::StorCtl_Mod.offset);
    const double w_max =
        ss::scaled(ss::PointType::uint16, get(ss::storage::kId, ss::storage::WChaMax.offset), kWChaMaxSf)
            .value_or(0);
    const double out =
        ss::scaled(ss::PointType::int16, get(ss::storage::kId, ss::storage::OutWRte.offset), kRateSf)
            .value_or(0);
    const double in_rate =
        ss::scaled(ss::PointType::int16, get(ss::storage::kId, ss::storage::InWRte.offset), kRateSf)
            .value_or(0);
    if ((mode & ss::storage::kDischargeBit) != 0) power_demand_w_ += out / 100 * w_max;
    if ((mode & ss::storage::kChargeBit) != 0) power_demand_w_ -= in_rate / 100 * w_max;
  }
  current_demand_a_ =
      in.battery_voltage_v > 1 && in.contactors_closed ? power_demand_w_ / in.battery_voltage_v : 0;

  const double power_w = in.battery_voltage_v * in.pack_current_a;
  at(ss::inverter::kId, ss::inverter::W.offset) = raw(power_w, kWattSf, ss::PointType::int16);
  at(ss::inverter::kId, ss::inverter::DCA.offset) =
      raw(std::fabs(in.pack_current_a), kAmpSf, ss::PointType::uint16);
  at(ss::inverter::kId, ss::inverter::DCV.offset) = raw(in.dc_link_voltage_v, kVoltSf, ss::PointType::uint16);
  at(ss::inverter::kId, ss::inverter::DCW.offset) = raw(power_w, kWattSf, ss::PointType::int16);
  at(ss::inverter::kId, ss::inverter::TmpCab.offset) = raw(in.ambient_c, kTempSf, ss::PointType::int16);
  at(ss::inverter::kId, ss::inverter::TmpSnk.offset) =
      raw(in.ambient_c + std::fabs(power_w) / 2000, kTempSf, ss::PointType::int16);
  at(ss::inverter::kId, ss::inverter::St.offset) =
      static_cast<std::uint16_t>(started_ ? ss::inverter::State::mppt : ss::inverter::State::off);
  at(ss::battery::kId, ss::battery::V.offset) = raw(in.battery_voltage_v, kVoltSf, ss::PointType::uint16);
  at(ss::battery::kId, ss::battery::A.offset) = raw(in.pack_current_a, kAmpSf, ss::PointType::int16);
  at(ss::battery::kId, ss::battery::W.offset) = raw(power_w, kWattSf, ss::PointType::int16);
  at(ss::battery::kId, ss::battery::State.offset) = static_cast<std::uint16_t>(
      in.contactors_closed ? ss::battery::BankState::connected : ss::battery::BankState::disconnected);
}

// --- the device ---

std::unique_ptr<SunSpecDevice> SunSpecDevice::create(PackModel& pack, SunSpecSimConfig config) {
  std::unique_ptr<SunSpecDevice> device(new SunSpecDevice(pack, std::move(config)));
  device->sync();
  return device;
}

SunSpecDevice::SunSpecDevice(PackModel& pack, SunSpecSimConfig config)
    : pack_(pack), logic_(std::move(config)) {}

SunSpecDevice::~SunSpecDevice() { stop(); }

void SunSpecDevice::sync() {
  SunSpecInputs inputs;
  inputs.time_s = pack_.time_s();
  inputs.battery_voltage_v = pack_.pack_voltage_v();
  inputs.dc_link_voltage_v = pack_.dc_link_voltage_v();
  inputs.pack_current_a = pack_.pack_current_a();
  inputs.ambient_c = pack_.ambient_c();
  inputs.contactors_closed = pack_.contactors_closed();
  double demand = 0;
  {
    MutexLock lock(mutex_);
    logic_.update(inputs);
    demand = logic_.current_demand_a();
  }
  pack_.set_inverter_current_a(demand);
}

SunSpecLogic SunSpecDevice::logic() const {
  MutexLock lock(mutex_);
  return logic_;
}

std::uint64_t SunSpecDevice::requests() const {
  MutexLock lock(mutex_);
  return requests_;
}

Result<std::string> SunSpecDevice::start_tcp(const InverterTcpConfig& config) {
  if (thread_.joinable())
    return Error(ErrorCode::invalid_argument, "SunSpec device: TCP server already started");
  modbus_t* ctx = modbus_new_tcp(config.host.c_str(), config.port);
  if (ctx == nullptr)
    return Error(ErrorCode::invalid_argument, "SunSpec device: bad TCP address " + config.host);
  listen_fd_ = modbus_tcp_listen(ctx, std::max(config.max_clients, 1));
  modbus_free(ctx);
  if (listen_fd_ < 0) {
    return Error(ErrorCode::io_error, "SunSpec device: listen on " + config.host + ":" +
                                          std::to_string(config.port) + ": " + std::strerror(errno));
  }
  ::fcntl(listen_fd_, F_SETFD, FD_CLOEXEC);
  sockaddr_in bound{};
  socklen_t bound_length = sizeof bound;
  if (::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&bound), &bound_length) != 0) {
    return Error(ErrorCode::io_error, std::string("SunSpec device: getsockname: ") + std::strerror(errno));
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    return Error(ErrorCode::io_error, std::string("SunSpec device: pipe: ") + std::strerror(errno));
  wake_read_ = fds[0];
  wake_write_ = fds[1];
  host_ = config.host;
  endpoint_ = config.host + ":" + std::to_string(ntohs(bound.sin_port));
  thread_ = std::thread([this] { run(); });
  return endpoint_;
}

void SunSpecDevice::stop() {
  if (thread_.joinable()) {
    const char byte = 's';
    [[maybe_unused]] const ssize_t n = ::write(wake_write_, &byte, 1);
    thread_.join();
  }
  for (int* fd : {&listen_fd_, &wake_read_, &wake_write_}) {
    if (*fd >= 0) ::close(*fd);
    *fd = -1;
  }
}

void SunSpecDevice::handle(void* context, const std::uint8_t* request, int length, void* map) {
  auto* ctx = static_cast<modbus_t*>(context);
  auto* mapping = static_cast<modbus_mapping_t*>(map);
  const int offset = modbus_get_header_length(ctx);
  const std::uint8_t function = request[offset];
  const std::uint16_t address = length >= offset + 3 ? be16(request + offset + 1) : 0;
  ModbusException exception = ModbusException::none;
  {
    MutexLock lock(mutex_);
    ++requests_;
    if (not_answering_) return;
    switch (function) {
      case MODBUS_FC_WRITE_SINGLE_REGISTER:
        exception = length >= offset + 5 ? logic_.write(address, be16(request + offset + 3))
                                         : ModbusException::illegal_data_value;
        break;
      case MODBUS_FC_WRITE_MULTIPLE_REGISTERS: {
        const int count = length >= offset + 6 ? be16(request + offset + 3) : 0;
        const int bytes = length >= offset + 6 ? request[offset + 5] : 0;
        if (count < 1 || count > MODBUS_MAX_WRITE_REGISTERS || bytes != 2 * count ||
            length < offset + 6 + bytes) {
          exception = ModbusException::illegal_data_value;
          break;
        }
        for (int i = 0; i < count && exception == ModbusException::none; ++i) {
          exception =
              logic_.write(static_cast<std::uint16_t>(address + i), be16(request + offset + 6 + 2 * i));
        }
        break;
      }
      case MODBUS_FC_READ_HOLDING_REGISTERS:
        break;
      default:
        exception = ModbusException::illegal_function;
        break;
    }
    const auto regs = logic_.registers();
    std::copy(regs.begin(), regs.end(), mapping->tab_registers);
  }
  if (exception != ModbusException::none) {
    modbus_reply_exception(ctx, request, static_cast<unsigned int>(exception));
  } else {
    modbus_reply(ctx, request, length, mapping);  // reads outside the map: ILLEGAL_DATA_ADDRESS
  }
}

void SunSpecDevice::run() {
  modbus_t* ctx = modbus_new_tcp(host_.c_str(), 0);
  modbus_mapping_t* mapping = nullptr;
  {
    MutexLock lock(mutex_);
    mapping = modbus_mapping_new_start_address(0, 0, 0, 0, logic_.first(),
                                               static_cast<unsigned>(logic_.registers().size()), 0, 0);
  }
  std::vector<int> clients;
  std::array<std::uint8_t, MODBUS_TCP_MAX_ADU_LENGTH> request{};
  while (ctx != nullptr && mapping != nullptr) {
    std::vector<pollfd> fds = {{wake_read_, POLLIN, 0}, {listen_fd_, POLLIN, 0}};
    for (const int fd : clients) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents != 0) break;
    if ((fds[1].revents & POLLIN) != 0) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd >= 0) clients.push_back(fd);
    }
    std::vector<int> closed;
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      modbus_set_socket(ctx, fds[i].fd);
      const int length = modbus_receive(ctx, request.data());
      if (length <= 0) {
        closed.push_back(fds[i].fd);  // peer closed, or a malformed frame: drop the connection
        continue;
      }
      handle(ctx, request.data(), length, mapping);
    }
    for (const int fd : closed) {
      std::erase(clients, fd);
      ::close(fd);
    }
  }
  for (const int fd : clients) ::close(fd);
  if (mapping != nullptr) modbus_mapping_free(mapping);
  if (ctx != nullptr) {
    modbus_set_socket(ctx, -1);
    modbus_free(ctx);
  }
}

}  // namespace cellguard::sim
