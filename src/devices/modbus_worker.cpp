#include "devices/modbus_worker.h"

#include <modbus/modbus.h>

#include <algorithm>
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

#include "core/thread_annotations.h"

namespace cellguard::devices {
namespace {

using SteadyClock = std::chrono::steady_clock;

bool is_exception(int err) { return err >= EMBXILFUN && err <= EMBXGTAR; }
bool is_malformed(int err) {
  return err == EMBBADDATA || err == EMBMDATA || err == EMBBADSLAVE || err == EMBBADEXC || err == EMBUNKEXC;
}

// Counted by the worker, per attempt (the session sees only the final reply).
struct TransportCounters {
  std::uint64_t transactions = 0, timeouts = 0, crc_errors = 0, exceptions = 0, bad_answers = 0,
                echo_mismatches = 0, retries = 0, reconnects = 0;
};

}  // namespace

std::string_view to_string(ModbusReply::Status status) {
  switch (status) {
    case ModbusReply::Status::ok:
      return "ok";
    case ModbusReply::Status::timeout:
      return "timeout";
    case ModbusReply::Status::crc_error:
      return "CRC error";
    case ModbusReply::Status::exception:
      return "exception";
    case ModbusReply::Status::malformed:
      return "malformed answer";
    case ModbusReply::Status::link_error:
      return "link error";
  }
  return "?";
}

struct ModbusWorker::Impl {
  Impl(asio::io_context& l, ModbusWorkerConfig c, std::unique_ptr<ModbusSession> s, const Clock& clk)
      : loop(l), config(std::move(c)), session(std::move(s)), clock(clk) {}

  asio::io_context& loop;
  const ModbusWorkerConfig config;
  ReadingsHandler readings_handler;
  LinkHandler link_handler;
  EventHandler event_handler;
  HeartbeatHandler heartbeat_handler;

  mutable Mutex mutex;  // guards the session, the counters and the flags
  CondVar wake;
  const std::unique_ptr<ModbusSession> session PT_GUARDED_BY(mutex);
  const Clock& clock;  // the only source of "now" (a ManualClock in tests)
  TransportCounters counters GUARDED_BY(mutex);
  bool started GUARDED_BY(mutex) = false;
  bool stopping GUARDED_BY(mutex) = false;
  std::uint64_t commands GUARDED_BY(mutex) = 0;  // wakes the worker on a command
  std::thread worker;                            // started and joined by the owner's thread

  modbus_t* ctx = nullptr;   // worker thread only
  std::string echo_problem;  // worker thread only: why the last verified write was refused

  // Posts what the session produced (caller holds the mutex).
  void flush_locked() REQUIRES(mutex) {
    SessionOutput out = session->take_output();
    for (auto& link : out.links) {
      if (link_handler)
        asio::post(loop,
                   [h = link_handler, link = std::move(link)] { h(link.ok, link.time_ns, link.detail); });
    }
    for (const auto& r : out.readings) {
      if (readings_handler) asio::post(loop, [h = readings_handler, r] { h(r); });
    }
    for (const MonoTime t : out.heartbeats) {
      if (heartbeat_handler) asio::post(loop, [h = heartbeat_handler, t] { h(t); });
    }
    for (auto& e : out.events) {
      if (event_handler) asio::post(loop, [h = event_handler, e = std::move(e)] { h(e); });
    }
  }

  std::string connect() {
    const auto& e = config.endpoint;
    ctx =
        e.transport == InverterEndpoint::Transport::tcp
            ? modbus_new_tcp(e.host.c_str(), e.port)
            : modbus_new_rtu(e.device.c_str(), static_cast<int>(e.baud), e.parity, e.data_bits, e.stop_bits);
    if (ctx == nullptr) return std::string("cannot create the libmodbus context: ") + modbus_strerror(errno);
    const auto timeout_us = std::max<std::int64_t>(config.response_timeout_ns.count() / 1000, 1000);
    modbus_set_response_timeout(ctx, static_cast<std::uint32_t>(timeout_us / 1'000'000),
                                static_cast<std::uint32_t>(timeout_us % 1'000'000));
    modbus_set_slave(ctx, e.slave);
    if (modbus_connect(ctx) != 0) {
      std::string reason = "cannot connect to " + to_string(e) + ": " + modbus_strerror(errno);
      modbus_free(ctx);
      ctx = nullptr;
      return reason;
    }
    return {};
  }

  void close() {
    if (ctx == nullptr) return;
    modbus_close(ctx);
    modbus_free(ctx);
    ctx = nullptr;
  }

  // Function 6 with its answer checked (libmodbus 3.1 compares only the function code).
  int write_register_verified(std::uint16_t address, std::uint16_t value) {
    const int unit = config.endpoint.slave;
    std::uint8_t request[6] = {
        static_cast<std::uint8_t>(unit),         0x06,
        static_cast<std::uint8_t>(address >> 8), static_cast<std::uint8_t>(address & 0xff),
        static_cast<std::uint8_t>(value >> 8),   static_cast<std::uint8_t>(value & 0xff)};
    if (modbus_send_raw_request(ctx, request, sizeof request) < 0) return -1;
    std::uint8_t answer[MODBUS_MAX_ADU_LENGTH];
    const int length = modbus_receive_confirmation(ctx, answer);
    if (length < 0) return -1;
    const bool tcp = config.endpoint.transport == InverterEndpoint::Transport::tcp;
    const int header = modbus_get_header_length(ctx);
    const int trailer = tcp ? 0 : 2;
    if (length < header + 1 + trailer || answer[header - 1] != unit ||
        (tcp && (answer[0] != 0 || answer[1] != 0))) {
      echo_problem = "answer from another unit or transaction";
      errno = EMBBADDATA;
      return -1;
    }
    std::string problem;
    const int err = check_write_echo(answer + header, static_cast<std::size_t>(length - header - trailer),
                                     address, value, problem);
    if (err != 0) {
      if (err == EMBBADDATA) {
        echo_problem = problem;
        MutexLock lock(mutex);
        ++counters.echo_mismatches;
      }
      errno = err;
      return -1;
    }
    return 1;
  }

  int perform_once(const ModbusRequest& request, std::vector<std::uint16_t>& registers) {
    switch (request.function) {
      case ModbusRequest::Function::read_holding_registers:
        registers.assign(request.count, 0);
        return modbus_read_registers(ctx, request.address, request.count, registers.data());
      case ModbusRequest::Function::read_input_registers:
        registers.assign(request.count, 0);
        return modbus_read_input_registers(ctx, request.address, request.count, registers.data());
      case ModbusRequest::Function::write_register:
        registers.clear();
        return write_register_verified(request.address, request.value);
    }
    errno = EINVAL;
    return -1;
  }

  // One transaction with its retries, counted per attempt.
  ModbusReply perform(const ModbusRequest& request) {
    ModbusReply reply;
    if (request.count == 0 || request.count > MODBUS_MAX_READ_REGISTERS) {
      reply.status = ModbusReply::Status::malformed;
      reply.cause = std::to_string(request.count) + " registers asked for (1..125)";
      reply.error = request.what + ": " + reply.cause;
      return reply;
    }
    for (int attempt = 0;; ++attempt) {
      errno = 0;
      echo_problem.clear();
      const int rc = perform_once(request, reply.registers);
      const int err = errno;
      {
        MutexLock lock(mutex);
        ++counters.transactions;
        if (rc < 0 && err == ETIMEDOUT) ++counters.timeouts;
        if (rc < 0 && err == EMBBADCRC) ++counters.crc_errors;
        if (rc < 0 && is_exception(err)) ++counters.exceptions;
        if (rc < 0 && is_malformed(err)) ++counters.bad_answers;
      }
      if (rc >= 0) {
        reply.status = ModbusReply::Status::ok;
        return reply;
      }
      const bool retryable = err == ETIMEDOUT || err == EMBBADCRC || is_malformed(err);
      const int retries = request.retries >= 0 ? request.retries : config.retries;
      if (retryable && attempt < retries && !should_stop()) {
        modbus_flush(ctx);  // a late answer must not be taken for the retry's
        MutexLock lock(mutex);
        ++counters.retries;
        continue;
      }
      reply.registers.clear();
      reply.cause = modbus_strerror(err);
      if (err == ETIMEDOUT) {
        reply.status = ModbusReply::Status::timeout;
        reply.cause = "timeout";
      } else if (err == EMBBADCRC) {
        reply.status = ModbusReply::Status::crc_error;
      } else if (is_exception(err)) {
        reply.status = ModbusReply::Status::exception;
      } else if (is_malformed(err)) {
        reply.status = ModbusReply::Status::malformed;
        if (!echo_problem.empty()) {
          reply.cause = echo_problem;
        } else if (err == EMBBADDATA) {
          reply.cause = "malformed answer (wrong byte count or function)";
        }
      } else {
        reply.status = ModbusReply::Status::link_error;
      }
      reply.error = request.what + ": " + reply.cause;
      if (retryable) modbus_flush(ctx);
      return reply;
    }
  }

  bool should_stop() const {
    MutexLock lock(mutex);
    return stopping;
  }

  // Waits until the clock reaches `until` (caller's clock), a command arrives or stop().
  void wait_until(MutexLock& lock, MonoTime until, std::uint64_t seen) REQUIRES(mutex) {
    const Duration delay = std::max(until - clock.mono_now(), Duration::zero());
    const auto deadline = SteadyClock::now() + delay;
    while (!stopping && commands == seen) {
      if (wake.wait_until(lock, deadline) == std::cv_status::timeout) return;
    }
  }

  void run() {
    MonoTime reconnect_at = clock.mono_now();
    MutexLock lock(mutex);
    while (!stopping) {
      const std::uint64_t seen = commands;
      if (ctx == nullptr) {
        if (clock.mono_now() < reconnect_at) {
          wait_until(lock, reconnect_at, seen);
          continue;
        }
        lock.unlock();
        const std::string failure = connect();
        lock.lock();
        if (failure.empty()) {
          session->connected(clock.mono_now(), to_string(config.endpoint));
        } else {
          session->connect_failed(clock.mono_now(), failure);
          reconnect_at = clock.mono_now() + config.reconnect_interval_ns;
        }
        flush_locked();
        continue;
      }
      const MonoTime now = clock.mono_now();
      std::optional<ModbusRequest> request = session->next_request(now);
      flush_locked();
      if (!request) {
        wait_until(lock, session->next_wake(now), seen);
        continue;
      }
      lock.unlock();
      const ModbusReply reply = perform(*request);
      lock.lock();
      const bool reconnect = session->reply(*request, reply, clock.mono_now()) ||
                             reply.status == ModbusReply::Status::link_error;
      if (reconnect) {
        lock.unlock();
        close();
        lock.lock();
        ++counters.reconnects;
        session->disconnected(clock.mono_now(), "link lost: " + reply.error);
        reconnect_at = clock.mono_now() + config.reconnect_interval_ns;
      }
      flush_locked();
    }
    lock.unlock();
    close();
    lock.lock();
    session->stopped(clock.mono_now());
    flush_locked();
  }
};

ModbusWorker::ModbusWorker(asio::io_context& loop, ModbusWorkerConfig config,
                           std::unique_ptr<ModbusSession> session, const Clock& clock)
    : impl_(std::make_unique<Impl>(loop, std::move(config), std::move(session), clock)) {}

ModbusWorker::~ModbusWorker() { stop(); }

void ModbusWorker::on_readings(ReadingsHandler handler) { impl_->readings_handler = std::move(handler); }
void ModbusWorker::on_link(LinkHandler handler) { impl_->link_handler = std::move(handler); }
void ModbusWorker::on_event(EventHandler handler) { impl_->event_handler = std::move(handler); }
void ModbusWorker::on_heartbeat(HeartbeatHandler handler) { impl_->heartbeat_handler = std::move(handler); }

void ModbusWorker::start() {
  MutexLock lock(impl_->mutex);
  if (impl_->started) return;
  impl_->started = true;
  impl_->stopping = false;
  impl_->worker = std::thread([impl = impl_.get()] { impl->run(); });
}

void ModbusWorker::stop() {
  {
    MutexLock lock(impl_->mutex);
    if (!impl_->started) return;
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->worker.joinable()) impl_->worker.join();
  MutexLock lock(impl_->mutex);
  impl_->started = false;
}

void ModbusWorker::command_off(MonoTime requested_ns) {
  {
    MutexLock lock(impl_->mutex);
    impl_->session->command_off(requested_ns, impl_->clock.mono_now());
    ++impl_->commands;
    impl_->flush_locked();
  }
  impl_->wake.notify_all();
}

void ModbusWorker::command_setpoint(InverterMode mode, double setpoint, MonoTime requested_ns) {
  {
    MutexLock lock(impl_->mutex);
    impl_->session->command_setpoint(mode, setpoint, requested_ns, impl_->clock.mono_now());
    ++impl_->commands;
    impl_->flush_locked();
  }
  impl_->wake.notify_all();
}

InverterLinkStats ModbusWorker::stats() const {
  MutexLock lock(impl_->mutex);
  InverterLinkStats s = impl_->session->stats();
  const TransportCounters c = impl_->counters;  // a copy: the lock analysis follows no references
  s.transactions = c.transactions;
  s.timeouts = c.timeouts;
  s.crc_errors = c.crc_errors;
  s.exceptions = c.exceptions;
  s.bad_answers = c.bad_answers;
  s.echo_mismatches = c.echo_mismatches;
  s.retries = c.retries;
  s.reconnects = c.reconnects;
  return s;
}

}  // namespace cellguard::devices
