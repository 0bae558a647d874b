// The simulated inverter over real Modbus: an in-process libmodbus client over TCP and over RTU on
// the pty, and the independent pymodbus peer (tests/peers/modbus_peer.py), while a simulation loop
// steps the pack model and syncs the device, as `cellguard sim` does.
#include "sim/inverter_device.h"

#include <gtest/gtest.h>
#include <modbus/modbus.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "core/thread_annotations.h"
#include "sim/device_test_peer.h"
#include "sim/pack_model.h"

namespace cellguard::sim {
namespace {

namespace reg = inverter_reg;
using Clock = std::chrono::steady_clock;
constexpr auto kWallTimeout = std::chrono::seconds(20);

// The simulator's event loop in miniature: steps the pack by 50 ms of simulated time every 5 ms of
// wall time (10x real time) and syncs the inverter. The pack is touched only under `mutex`.
class SimLoop {
 public:
  SimLoop() {
    pack.set_positive_contactor(true);
    pack.set_negative_contactor(true);
    inverter = InverterDevice::create(pack);
  }
  ~SimLoop() { stop(); }

  void start() {
    thread_ = std::thread([this] {
      while (!stopping_) {
        {
          MutexLock lock(mutex);
          pack.step(0.05);
          inverter->sync();
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // pacing, not waiting
      }
    });
  }
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
  }
  template <typename F>
  auto with_pack(F f) {
    MutexLock lock(mutex);
    return f(pack);
  }

  Mutex mutex;
  PackModel pack GUARDED_BY(mutex){PackConfig{}};
  std::unique_ptr<InverterDevice> inverter;

 private:
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

struct Client {
  modbus_t* ctx = nullptr;
  ~Client() {
    if (ctx != nullptr) {
      modbus_close(ctx);
      modbus_free(ctx);
    }
  }
  int read_input(std::uint16_t address, std::uint16_t& value) {
    return modbus_read_input_registers(ctx, address, 1, &value);
  }
  int read_holding(std::uint16_t address, std::uint16_t& value) {
    return modbus_read_registers(ctx, address, 1, &value);
  }
  int write(std::uint16_t address, std::uint16_t value) { return modbus_write_register(ctx, address, value); }
};

std::unique_ptr<Client> tcp_client(const std::string& endpoint) {
  auto client = std::make_unique<Client>();
  const auto colon = endpoint.rfind(':');
  client->ctx = modbus_new_tcp(endpoint.substr(0, colon).c_str(), std::stoi(endpoint.substr(colon + 1)));
  EXPECT_NE(client->ctx, nullptr);
  EXPECT_EQ(modbus_connect(client->ctx), 0) << modbus_strerror(errno);
  modbus_set_response_timeout(client->ctx, 1, 0);
  return client;
}

std::unique_ptr<Client> rtu_client(const std::string& path, int slave) {
  auto client = std::make_unique<Client>();
  client->ctx = modbus_new_rtu(path.c_str(), 19200, 'N', 8, 1);
  EXPECT_NE(client->ctx, nullptr);
  modbus_set_slave(client->ctx, slave);
  EXPECT_EQ(modbus_connect(client->ctx), 0) << modbus_strerror(errno);
  modbus_set_response_timeout(client->ctx, 1, 0);
  return client;
}

bool wait_until(const std::function<bool()>& done) {
  const auto deadline = Clock::now() + kWallTimeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval of a register loop
  }
  return false;
}

double signed_value(std::uint16_t raw, double scale) { return from_raw(raw, scale); }

// The checks both transports must pass, through a libmodbus client.
void exercise(SimLoop& sim, Client& client) {
  std::uint16_t value = 0;
  ASSERT_EQ(client.read_input(reg::kDcInputVolt, value), 1) << modbus_strerror(errno);
  const double pack_v = sim.with_pack([](PackModel& p) { return p.pack_voltage_v(); });
  EXPECT_NEAR(signed_value(value, kVoltageScale), pack_v, 0.5);

  // Refused before the security code, with ILLEGAL_FUNCTION.
  errno = 0;
  EXPECT_EQ(client.write(reg::kOpMode, 2), -1);
  EXPECT_EQ(errno, EMBXILFUN) << modbus_strerror(errno);

  ASSERT_EQ(client.write(reg::kSecurityCode, kSecurityCodeUnlock), 1);
  ASSERT_EQ(client.write(reg::kHeartbeat, 300), 1);
  ASSERT_EQ(client.write(reg::kOpMode, 2), 1);
  ASSERT_EQ(client.write(reg::kOpModeSetpoint, to_raw(-20, kCurrentScale)), 1);
  ASSERT_TRUE(wait_until([&] {
    return client.read_input(reg::kDcLinkCurrent, value) == 1 &&
           std::abs(signed_value(value, kCurrentScale) + 20) < 0.5;
  }));
  // The pack charges: negative current, and 30279 shows both contactors.
  EXPECT_NEAR(sim.with_pack([](PackModel& p) { return p.pack_current_a(); }), -20, 0.5);
  ASSERT_EQ(client.read_input(reg::kStatus, value), 1);
  EXPECT_EQ(value & (kStatusPositiveContactor | kStatusNegativeContactor),
            kStatusPositiveContactor | kStatusNegativeContactor);

  // Heartbeat expiry: 1.0 s of simulated time without a refresh forces the mode off.
  ASSERT_EQ(client.write(reg::kHeartbeat, 10), 1);
  ASSERT_TRUE(wait_until([&] { return client.read_holding(reg::kOpMode, value) == 1 && value == 0; }));
  ASSERT_EQ(client.read_input(reg::kModbusTimer, value), 1);
  EXPECT_EQ(value, 0);
  ASSERT_TRUE(
      wait_until([&] { return sim.with_pack([](PackModel& p) { return p.pack_current_a() == 0; }); }));
}

TEST(InverterDevice, ServesTheRegisterMapOverTcpToLibmodbus) {
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok()) << endpoint.error().message;
  EXPECT_EQ(endpoint.value().rfind("127.0.0.1:", 0), 0u);
  EXPECT_EQ(sim.inverter->tcp_endpoint(), endpoint.value());
  sim.start();
  auto client = tcp_client(*endpoint);
  exercise(sim, *client);
}

TEST(InverterDevice, ServesTheRegisterMapOverRtuOnAPtyToLibmodbus) {
  SimLoop sim;
  auto path = sim.inverter->start_rtu({});
  ASSERT_TRUE(path.ok()) << path.error().message;
  EXPECT_EQ(path.value().rfind("/dev/pts/", 0), 0u);
  sim.start();
  auto client = rtu_client(*path, 2);
  exercise(sim, *client);
}

TEST(InverterDevice, RtuIgnoresOtherSlavesAndStillAnswersItsOwnAfterwards) {
  SimLoop sim;
  auto path = sim.inverter->start_rtu({.slave_id = 7});
  ASSERT_TRUE(path.ok());
  sim.start();
  auto client = rtu_client(*path, 2);
  modbus_set_response_timeout(client->ctx, 0, 200000);
  std::uint16_t value = 0;
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  modbus_set_slave(client->ctx, 7);
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), 1) << modbus_strerror(errno);
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), 1) << modbus_strerror(errno);
}

TEST(InverterDevice, NotAnsweringMakesTheClientTimeOutUntilCleared) {
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  auto client = tcp_client(*endpoint);
  modbus_set_response_timeout(client->ctx, 0, 200000);
  std::uint16_t value = 0;
  sim.inverter->set_not_answering(true);
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), -1);
  EXPECT_EQ(errno, ETIMEDOUT);
  sim.inverter->set_not_answering(false);
  modbus_flush(client->ctx);
  EXPECT_TRUE(wait_until([&] { return client->read_input(reg::kDcInputVolt, value) == 1; }));
  EXPECT_GE(sim.inverter->stats().unanswered, 1u);
}

TEST(InverterDevice, InjectedCrcErrorsAreSeenByTheRtuClient) {
  SimLoop sim;
  auto path = sim.inverter->start_rtu({});
  ASSERT_TRUE(path.ok());
  sim.start();
  auto client = rtu_client(*path, 2);
  std::uint16_t value = 0;
  sim.inverter->set_crc_error_every(1);
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), -1);
  EXPECT_EQ(errno, EMBBADCRC) << modbus_strerror(errno);
  sim.inverter->set_crc_error_every(0);
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), 1) << modbus_strerror(errno);
  EXPECT_EQ(sim.inverter->stats().corrupted, 1u);
}

TEST(InverterDevice, ResponseDelayIsApplied) {
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  auto client = tcp_client(*endpoint);
  sim.inverter->set_response_delay(std::chrono::milliseconds(300));
  std::uint16_t value = 0;
  const auto start = Clock::now();
  EXPECT_EQ(client->read_input(reg::kDcInputVolt, value), 1);
  EXPECT_GE(Clock::now() - start, std::chrono::milliseconds(300));
}

TEST(InverterDevice, FaultBitAndWrongReadbackShowOverModbus) {
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  auto client = tcp_client(*endpoint);
  ASSERT_TRUE(sim.inverter->set_fault_bit(30273, 2, true));
  sim.inverter->set_wrong_readback({7.5, 0, 0});
  std::uint16_t value = 0;
  ASSERT_EQ(client->read_input(30273, value), 1);
  EXPECT_EQ(value, 1u << 2);
  ASSERT_EQ(client->read_input(reg::kReadyToCharge, value), 1);
  EXPECT_EQ(value, 0);
  ASSERT_EQ(client->read_input(reg::kDcLinkCurrent, value), 1);
  EXPECT_NEAR(from_raw(value, kCurrentScale), 7.5, 0.02);  // the pack carries no current
}

TEST(InverterDevice, UnmappedAddressesAndUnsupportedFunctionsGetExceptions) {
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  auto client = tcp_client(*endpoint);
  std::array<std::uint16_t, 4> values{};
  EXPECT_EQ(modbus_read_input_registers(client->ctx, 30000, 2, values.data()), -1);
  EXPECT_EQ(errno, EMBXILADD);
  ASSERT_EQ(client->write(reg::kSecurityCode, kSecurityCodeUnlock), 1);
  EXPECT_EQ(modbus_mask_write_register(client->ctx, reg::kOpMode, 0, 1), -1);
  EXPECT_EQ(errno, EMBXILFUN);
  EXPECT_EQ(client->write(reg::kOpMode, 3), -1);
  EXPECT_EQ(errno, EMBXILVAL);
  const std::array<std::uint16_t, 3> block = {300, 2, to_raw(5, kCurrentScale)};
  EXPECT_EQ(modbus_write_registers(client->ctx, reg::kHeartbeat, 3, block.data()), 3);  // function 16
  EXPECT_EQ(sim.inverter->logic().mode(), InverterMode::current);
}

TEST(InverterDevice, StopEndsTheServersPromptly) {
  SimLoop sim;
  ASSERT_TRUE(sim.inverter->start_tcp({}).ok());
  ASSERT_TRUE(sim.inverter->start_rtu({}).ok());
  EXPECT_FALSE(sim.inverter->start_tcp({}).ok());  // already running
  sim.inverter->set_response_delay(std::chrono::seconds(30));
  const auto start = Clock::now();
  sim.inverter->stop();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
}

// --- the independent peer: pymodbus ---

using testing::python_module_available;
using testing::run_peer;

bool pymodbus_available() { return python_module_available("pymodbus/__init__.py"); }

TEST(InverterDevicePymodbus, ReadsWritesSeesTheExceptionAndTheHeartbeatExpiryOverTcp) {
  if (!pymodbus_available()) GTEST_SKIP() << "python3-pymodbus is not installed";
  SimLoop sim;
  auto endpoint = sim.inverter->start_tcp({});
  ASSERT_TRUE(endpoint.ok());
  sim.start();
  std::string output;
  EXPECT_EQ(run_peer("modbus_peer.py", {"--tcp", *endpoint}, output), 0) << output;
  EXPECT_NE(output.find("\"exception_before_security_code\": 1"), std::string::npos) << output;
}

TEST(InverterDevicePymodbus, ReadsWritesSeesTheExceptionAndTheHeartbeatExpiryOverRtu) {
  if (!pymodbus_available()) GTEST_SKIP() << "python3-pymodbus is not installed";
  SimLoop sim;
  auto path = sim.inverter->start_rtu({});
  ASSERT_TRUE(path.ok());
  sim.start();
  std::string output;
  EXPECT_EQ(run_peer("modbus_peer.py", {"--rtu", *path, "--slave", "2"}, output), 0) << output;
  EXPECT_NE(output.find("\"exception_before_security_code\": 1"), std::string::npos) << output;
}

}  // namespace
}  // namespace cellguard::sim
