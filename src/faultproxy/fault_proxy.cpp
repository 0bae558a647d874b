#include "faultproxy/fault_proxy.h"

#include <algorithm>
#include <asio.hpp>
#include <cmath>
#include <deque>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

#include "ipc/line_socket.h"

namespace cellguard::faultproxy {
namespace {

using asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Json = nlohmann::json;

constexpr double kMaxRequestMs = 365.0 * 24 * 3600 * 1000;

double unix_seconds() {
  const auto since = std::chrono::system_clock::now().time_since_epoch();
  return std::round(std::chrono::duration<double>(since).count() * 1000) / 1000;
}

// Milliseconds for the log, to the microsecond.
double to_ms(Nanos duration) {
  return std::round(std::chrono::duration<double, std::milli>(duration).count() * 1000) / 1000;
}

std::string endpoint_text(const tcp::endpoint& endpoint) {
  const asio::ip::address address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

// "HOST:PORT" or "[V6]:PORT" → an endpoint; names are resolved once, here.
Result<tcp::endpoint> resolve(asio::io_context& io, const std::string& text, std::string_view what) {
  const std::string where = std::string(what) + " '" + text + "'";
  std::string host;
  std::string port;
  if (text.starts_with("[")) {
    const std::size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Error(ErrorCode::invalid_argument, where + ": expected [ADDRESS]:PORT");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string::npos) return Error(ErrorCode::invalid_argument, where + ": expected HOST:PORT");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  if (host.empty() || port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(port) > 65535)
    return Error(ErrorCode::invalid_argument, where + ": expected HOST:PORT with a port 0..65535");
  const auto port_number = static_cast<std::uint16_t>(std::stoi(port));
  asio::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (!ec) return tcp::endpoint(address, port_number);
  tcp::resolver resolver(io);
  const auto results = resolver.resolve(host, port, ec);
  if (ec || results.empty())
    return Error(ErrorCode::io_error, where + ": cannot resolve " + host + (ec ? ": " + ec.message() : ""));
  return results.begin()->endpoint();
}

Json stats_json(const ProxyStats& s) {
  Json faults = Json::object();
  for (std::size_t i = 0; i < kFaultKinds; ++i)
    faults[std::string(to_string(static_cast<FaultKind>(i)))] = s.faults[i];
  return {{"accepted", s.accepted},
          {"active", s.active},
          {"relayed", s.relayed},
          {"connect_failures", s.connect_failures},
          {"refused", s.refused},
          {"blackholed", s.blackholed},
          {"closed", s.closed},
          {"bytes_up", s.bytes_up},
          {"bytes_down", s.bytes_down},
          {"buffered_bytes", s.buffered_bytes},
          {"max_pipe_buffered", s.max_pipe_buffered},
          {"faults", faults},
          {"mode", s.mode}};
}

class Connection;

// Everything of one proxy; connections share it (they count into its stats and leave its table).
class Core : public std::enable_shared_from_this<Core> {
 public:
  Core(asio::io_context& context, ProxyOptions o)
      : io(context),
        options(std::move(o)),
        acceptor(context),
        plan(options.plan, options.seed),
        mode(options.mode),
        plan_timer(context),
        accept_retry(context),
        delay_end(context) {}

  Result<void> open();
  void close();
  void accept();
  void on_accepted(tcp::socket socket);
  void remove(std::uint64_t id, const std::string& how, std::uint64_t up, std::uint64_t down);

  void schedule_plan();
  void fire_plan();
  void set_mode(Mode next);
  // Carries out `fault` on `targets` (and the proxy-wide periods); returns the ids hit.
  std::vector<std::uint64_t> apply(const Fault& fault, std::string_view source,
                                   const std::vector<std::shared_ptr<Connection>>& targets);
  std::vector<std::shared_ptr<Connection>> live_connections() const;
  std::string handle_control(std::string_view line);

  DurationRange current_delay() const {
    if (manual_delay) return *manual_delay;
    return mode == Mode::random ? options.delay : DurationRange{};
  }
  void log(Json event) const {
    if (!options.log) return;
    event["t"] = unix_seconds();
    options.log(event.dump());
  }

  asio::io_context& io;
  ProxyOptions options;
  tcp::acceptor acceptor;
  tcp::endpoint target;
  FaultPlan plan;
  std::optional<PlannedFault> pending;
  Nanos last_fault_at{0};
  Mode mode;
  asio::steady_timer plan_timer;
  asio::steady_timer accept_retry;
  asio::steady_timer delay_end;
  std::optional<DurationRange> manual_delay;  // set by a delay command; overrides the random delay
  TimePoint blackhole_until{};
  TimePoint refuse_until{};
  std::map<std::uint64_t, std::shared_ptr<Connection>> connections;
  std::uint64_t next_id = 1;
  ProxyStats stats;
  std::unique_ptr<ipc::LineServer> control;
  bool closed = false;
};

// One client connection and its connection to the target: two pipes, the fault states.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  enum class State { connecting, relaying, blackholed, draining, closed };

  Connection(std::shared_ptr<Core> core, std::uint64_t id, tcp::socket client)
      : core_(std::move(core)),
        id_(id),
        client_(std::move(client)),
        server_(core_->io),
        pipes_{Pipe(core_->io), Pipe(core_->io)},
        rng_(core_->options.seed ^ (id * 0x9e3779b97f4a7c15ULL)),
        drain_timer_(core_->io) {
    pipes_[0].from = &client_;
    pipes_[0].to = &server_;
    pipes_[1].from = &server_;
    pipes_[1].to = &client_;
  }

  std::uint64_t id() const { return id_; }
  bool live() const {
    return state_ == State::connecting || state_ == State::relaying || state_ == State::blackholed;
  }

  void start_connect() {
    server_.async_connect(core_->target, [self = shared_from_this()](asio::error_code ec) {
      if (self->state_ != State::connecting) return;
      if (ec) {
        ++self->core_->stats.connect_failures;
        self->core_->log({{"event", "connect_failed"}, {"conn", self->id_}, {"error", ec.message()}});
        self->reset_sockets("connect failed: " + ec.message());
        return;
      }
      self->server_open_ = true;
      self->state_ = State::relaying;
      ++self->core_->stats.relayed;
      asio::error_code ignored;
      self->client_.set_option(tcp::no_delay(true), ignored);
      self->server_.set_option(tcp::no_delay(true), ignored);
      for (int d = 0; d < 2; ++d) self->pump(d);
    });
  }

  void start_blackhole() {
    state_ = State::blackholed;
    discard(client_, State::blackholed);
  }

  void cut() {
    auto self = shared_from_this();
    if (!live()) return;
    const bool was_blackholed = state_ == State::blackholed;
    state_ = State::draining;
    how_ = "cut";
    release_buffers();
    asio::error_code ignored;
    client_.cancel(ignored);
    server_.cancel(ignored);
    drain(client_);
    if (server_open_ && !was_blackholed)
      drain(server_);
    else
      server_.close(ignored);
    drain_timer_.expires_after(core_->options.drain_timeout);
    drain_timer_.async_wait([self](asio::error_code ec) {
      if (!ec && self->state_ == State::draining) self->finish();
    });
  }

  void reset() {
    auto self = shared_from_this();
    if (state_ == State::closed) return;
    reset_sockets("reset");
  }

  void stall(Direction direction, Nanos duration) {
    auto self = shared_from_this();
    if (!live()) return;
    const TimePoint until = Clock::now() + duration;
    for (int d = 0; d < 2; ++d) {
      if (direction == Direction::up && d == 1) continue;
      if (direction == Direction::down && d == 0) continue;
      pipes_[d].stalled_until = std::max(pipes_[d].stalled_until, until);
      if (state_ == State::relaying) arm(d, pipes_[d].stalled_until);
    }
  }

  void end_stalls() {
    auto self = shared_from_this();
    for (int d = 0; d < 2; ++d) {
      pipes_[d].stalled_until = TimePoint{};
      if (state_ == State::relaying) pump(d);
    }
  }

  // The proxy is closing: close without ceremony, do not report back.
  void abandon() {
    if (state_ == State::closed) return;
    state_ = State::closed;
    release_buffers();
    close_sockets();
  }

 private:
  struct Chunk {
    std::vector<char> bytes;
    TimePoint due;
  };
  struct Pipe {
    explicit Pipe(asio::io_context& io) : wake(io) {}
    tcp::socket* from = nullptr;
    tcp::socket* to = nullptr;
    std::deque<Chunk> queue;
    std::size_t queued = 0;
    std::vector<char> read_buffer;
    bool reading = false;
    bool writing = false;
    bool eof = false;   // the source sent FIN
    bool shut = false;  // and it was passed on after the queue drained
    TimePoint stalled_until{};
    TimePoint last_due{};
    asio::steady_timer wake;
    TimePoint wake_at = TimePoint::max();
    std::uint64_t written = 0;
  };

  void pump(int d) {
    write_next(d);
    read_next(d);
  }

  void read_next(int d) {
    Pipe& p = pipes_[d];
    if (state_ != State::relaying || p.reading || p.eof) return;
    const TimePoint now = Clock::now();
    if (now < p.stalled_until) {
      arm(d, p.stalled_until);
      return;
    }
    const std::size_t chunk = core_->options.chunk_bytes;
    // Without delay one chunk at a time (the write must finish first); with delay a bounded queue.
    const std::size_t cap =
        core_->current_delay().zero() ? chunk : std::max(core_->options.max_delayed_bytes, chunk);
    if (p.queued + chunk > cap) return;
    p.reading = true;
    p.read_buffer.resize(chunk);
    p.from->async_read_some(
        asio::buffer(p.read_buffer),
        [self = shared_from_this(), d](asio::error_code ec, std::size_t n) { self->on_read(d, ec, n); });
  }

  void on_read(int d, asio::error_code ec, std::size_t n) {
    Pipe& p = pipes_[d];
    p.reading = false;
    if (state_ != State::relaying) return;
    if (ec == asio::error::eof) {
      p.eof = true;
      write_next(d);
      return;
    }
    if (ec) {
      fail(d == 0 ? "client" : "target", ec);
      return;
    }
    const TimePoint due = std::max(p.last_due, Clock::now() + rng_.in(core_->current_delay()));
    p.last_due = due;
    p.read_buffer.resize(n);
    p.queue.push_back(Chunk{std::move(p.read_buffer), due});
    p.read_buffer = {};
    p.queued += n;
    core_->stats.buffered_bytes += n;
    core_->stats.max_pipe_buffered = std::max<std::uint64_t>(core_->stats.max_pipe_buffered, p.queued);
    pump(d);
  }

  void write_next(int d) {
    Pipe& p = pipes_[d];
    if (state_ != State::relaying || p.writing) return;
    if (p.queue.empty()) {
      if (p.eof && !p.shut) {  // pass the half-close on
        p.shut = true;
        asio::error_code ignored;
        p.to->shutdown(tcp::socket::shutdown_send, ignored);
        if (pipes_[0].shut && pipes_[1].shut) {
          how_ = "eof";
          finish();
        }
      }
      return;
    }
    const TimePoint now = Clock::now();
    if (now < p.stalled_until) {
      arm(d, p.stalled_until);
      return;
    }
    if (p.queue.front().due > now) {
      arm(d, p.queue.front().due);
      return;
    }
    p.writing = true;
    asio::async_write(
        *p.to, asio::buffer(p.queue.front().bytes),
        [self = shared_from_this(), d](asio::error_code ec, std::size_t) { self->on_written(d, ec); });
  }

  void on_written(int d, asio::error_code ec) {
    Pipe& p = pipes_[d];
    p.writing = false;
    if (state_ != State::relaying) return;
    if (ec) {
      fail(d == 0 ? "target" : "client", ec);
      return;
    }
    const std::size_t n = p.queue.front().bytes.size();
    p.queue.pop_front();
    p.queued -= n;
    p.written += n;
    core_->stats.buffered_bytes -= n;
    (d == 0 ? core_->stats.bytes_up : core_->stats.bytes_down) += n;
    pump(d);
  }

  // Wakes the pipe at `at` (a stall's end or the head chunk's due time).
  void arm(int d, TimePoint at) {
    Pipe& p = pipes_[d];
    if (p.wake_at == at) return;
    p.wake_at = at;
    p.wake.expires_at(at);
    p.wake.async_wait([self = shared_from_this(), d, at](asio::error_code ec) {
      if (ec) return;
      Pipe& pipe = self->pipes_[d];
      if (pipe.wake_at == at) pipe.wake_at = TimePoint::max();
      self->pump(d);
    });
  }

  // Reads and throws away until the peer closes (blackholed clients, cut sockets being drained).
  void discard(tcp::socket& socket, State expected) {
    socket.async_read_some(asio::buffer(discard_),
                           [self = shared_from_this(), &socket, expected](asio::error_code ec, std::size_t) {
                             if (self->state_ != expected) return;
                             if (!ec) {
                               self->discard(socket, expected);
                               return;
                             }
                             if (expected == State::blackholed) {
                               self->how_ = "blackholed, client closed";
                               self->finish();
                             } else if (--self->draining_ == 0) {
                               self->finish();
                             }
                           });
  }

  void drain(tcp::socket& socket) {
    asio::error_code ignored;
    socket.shutdown(tcp::socket::shutdown_send, ignored);  // FIN
    ++draining_;
    discard(socket, State::draining);
  }

  // A relay error: pass it on as a reset of both sides.
  void fail(const char* side, asio::error_code ec) { reset_sockets(std::string(side) + ": " + ec.message()); }

  void reset_sockets(std::string how) {
    how_ = std::move(how);
    asio::error_code ignored;
    for (tcp::socket* socket : {&client_, &server_}) {
      if (socket->is_open()) socket->set_option(asio::socket_base::linger(true, 0), ignored);
    }
    finish();
  }

  void finish() {
    if (state_ == State::closed) return;
    auto self = shared_from_this();
    state_ = State::closed;
    release_buffers();
    close_sockets();
    core_->remove(id_, how_, pipes_[0].written, pipes_[1].written);
  }

  void close_sockets() {
    asio::error_code ignored;
    client_.close(ignored);
    server_.close(ignored);
    drain_timer_.cancel();
    for (Pipe& p : pipes_) p.wake.cancel();
  }

  void release_buffers() {
    for (Pipe& p : pipes_) {
      core_->stats.buffered_bytes -= p.queued;
      p.queue.clear();
      p.queued = 0;
    }
  }

  std::shared_ptr<Core> core_;
  std::uint64_t id_;
  State state_ = State::connecting;
  tcp::socket client_;
  tcp::socket server_;
  bool server_open_ = false;
  Pipe pipes_[2];  // 0: up (client → target), 1: down
  Rng rng_;        // per-chunk delays
  asio::steady_timer drain_timer_;
  int draining_ = 0;
  std::string how_ = "closed";
  std::array<char, 4096> discard_{};
};

Result<void> Core::open() {
  Result<tcp::endpoint> target_endpoint = resolve(io, options.target, "--target");
  if (!target_endpoint) return target_endpoint.error();
  target = *target_endpoint;
  Result<tcp::endpoint> listen_endpoint = resolve(io, options.listen, "--listen");
  if (!listen_endpoint) return listen_endpoint.error();
  if (Result<void> valid = validate(options.plan); !valid) return valid.error();
  if (options.delay.min < Nanos{0} || options.delay.max < options.delay.min)
    return Error(ErrorCode::invalid_argument, "delay: not a valid range of durations");
  if (options.chunk_bytes == 0) return Error(ErrorCode::invalid_argument, "chunk size must be positive");
  asio::error_code ec;
  acceptor.open(listen_endpoint->protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(*listen_endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Error(ErrorCode::io_error, "--listen " + options.listen + ": " + ec.message());
  if (!options.control_path.empty()) {
    ipc::LineServerOptions control_options;
    control_options.path = options.control_path;
    std::weak_ptr<Core> weak = weak_from_this();
    auto started = ipc::LineServer::start(io, control_options, [weak](std::string_view line) -> std::string {
      auto core = weak.lock();
      if (!core) return R"({"ok":false,"error":"proxy closed"})";
      return core->handle_control(line);
    });
    if (!started) return started.error();
    control = std::move(*started);
  }
  stats.mode = std::string(to_string(mode));
  accept();
  schedule_plan();
  return success();
}

void Core::close() {
  if (closed) return;
  closed = true;
  asio::error_code ignored;
  acceptor.close(ignored);
  plan_timer.cancel();
  accept_retry.cancel();
  delay_end.cancel();
  if (control) control->close();
  auto all = std::move(connections);
  connections.clear();
  for (auto& [id, connection] : all) connection->abandon();
  stats.active = 0;
}

void Core::accept() {
  acceptor.async_accept([self = shared_from_this()](asio::error_code ec, tcp::socket socket) {
    if (self->closed) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors and the like: try again shortly instead of spinning.
      self->log({{"event", "accept_failed"}, {"error", ec.message()}});
      self->accept_retry.expires_after(std::chrono::milliseconds(100));
      self->accept_retry.async_wait([self](asio::error_code wait_ec) {
        if (!wait_ec && !self->closed) self->accept();
      });
      return;
    }
    self->on_accepted(std::move(socket));
    self->accept();
  });
}

void Core::on_accepted(tcp::socket socket) {
  ++stats.accepted;
  asio::error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  const std::string peer_text = ec ? "?" : endpoint_text(peer);
  const TimePoint now = Clock::now();
  if (now < refuse_until || connections.size() >= options.max_connections) {
    ++stats.refused;
    log({{"event", "refused"},
         {"peer", peer_text},
         {"why", now < refuse_until ? "refuse period" : "connection limit"}});
    socket.close(ec);
    return;
  }
  const std::uint64_t id = next_id++;
  auto connection = std::make_shared<Connection>(shared_from_this(), id, std::move(socket));
  connections[id] = connection;
  stats.active = connections.size();
  if (now < blackhole_until) {
    ++stats.blackholed;
    log({{"event", "blackholed"}, {"conn", id}, {"peer", peer_text}});
    connection->start_blackhole();
  } else {
    log({{"event", "open"}, {"conn", id}, {"peer", peer_text}});
    connection->start_connect();
  }
}

void Core::remove(std::uint64_t id, const std::string& how, std::uint64_t up, std::uint64_t down) {
  if (connections.erase(id) == 0) return;
  ++stats.closed;
  stats.active = connections.size();
  log({{"event", "close"}, {"conn", id}, {"how", how}, {"bytes_up", up}, {"bytes_down", down}});
}

std::vector<std::shared_ptr<Connection>> Core::live_connections() const {
  std::vector<std::shared_ptr<Connection>> live;
  for (const auto& [id, connection] : connections)
    if (connection->live()) live.push_back(connection);
  return live;
}

void Core::schedule_plan() {
  if (closed || mode != Mode::random) return;
  if (!pending) pending = plan.next();
  plan_timer.expires_after(pending->at - last_fault_at);
  plan_timer.async_wait([self = shared_from_this()](asio::error_code ec) {
    if (ec || self->closed || self->mode != Mode::random) return;
    self->fire_plan();
  });
}

void Core::fire_plan() {
  const PlannedFault planned = *pending;
  pending.reset();
  last_fault_at = planned.at;
  Fault fault;
  fault.kind = planned.kind;
  fault.duration = planned.duration;
  fault.direction = planned.direction;
  std::vector<std::shared_ptr<Connection>> targets = live_connections();
  if (options.scope == Scope::one && !targets.empty()) targets = {targets[planned.pick % targets.size()]};
  apply(fault, "plan", targets);
  schedule_plan();
}

void Core::set_mode(Mode next) {
  const bool changed = next != mode;
  mode = next;
  stats.mode = std::string(to_string(mode));
  log({{"event", "mode"}, {"mode", std::string(to_string(mode))}});
  if (mode == Mode::pass) {  // also when already in pass: "relay faithfully from now on"
    plan_timer.cancel();
    delay_end.cancel();
    manual_delay.reset();
    blackhole_until = refuse_until = TimePoint{};
    for (auto& connection : live_connections()) connection->end_stalls();
  } else if (changed) {
    schedule_plan();  // resumes the plan: the next fault comes its interval after now
  }
}

std::vector<std::uint64_t> Core::apply(const Fault& fault, std::string_view source,
                                       const std::vector<std::shared_ptr<Connection>>& targets) {
  std::vector<std::uint64_t> ids;
  ids.reserve(targets.size());
  for (const auto& connection : targets) ids.push_back(connection->id());
  ++stats.faults[static_cast<std::size_t>(fault.kind)];
  Json event{{"event", "fault"},
             {"kind", std::string(to_string(fault.kind))},
             {"source", std::string(source)},
             {"conns", ids}};
  if (fault.duration > Nanos{0}) event["ms"] = to_ms(fault.duration);
  if (fault.kind == FaultKind::stall) event["dir"] = std::string(to_string(fault.direction));
  if (fault.kind == FaultKind::delay) {
    event["min_ms"] = to_ms(fault.latency.min);
    event["max_ms"] = to_ms(fault.latency.max);
  }
  log(std::move(event));
  const TimePoint until = Clock::now() + fault.duration;
  switch (fault.kind) {
    case FaultKind::cut:
      for (const auto& connection : targets) connection->cut();
      break;
    case FaultKind::reset:
      for (const auto& connection : targets) connection->reset();
      break;
    case FaultKind::stall:
      for (const auto& connection : targets) connection->stall(fault.direction, fault.duration);
      break;
    case FaultKind::delay:
      manual_delay = fault.latency;
      delay_end.cancel();
      if (fault.duration > Nanos{0}) {
        delay_end.expires_at(until);
        delay_end.async_wait([self = shared_from_this()](asio::error_code ec) {
          if (!ec) self->manual_delay.reset();
        });
      }
      break;
    case FaultKind::blackhole:
      blackhole_until = std::max(blackhole_until, until);
      for (const auto& connection : targets) connection->stall(Direction::both, fault.duration);
      break;
    case FaultKind::refuse:
      refuse_until = std::max(refuse_until, until);
      for (const auto& connection : targets) connection->cut();
      break;
  }
  return ids;
}

std::string Core::handle_control(std::string_view line) {
  Result<ControlRequest> request = parse_control_request(line);
  if (!request) return Json{{"ok", false}, {"error", request.error().message}}.dump();
  switch (request->verb) {
    case ControlRequest::Verb::stats:
      return Json{{"ok", true}, {"stats", stats_json(stats)}}.dump();
    case ControlRequest::Verb::mode:
      set_mode(request->mode);
      return Json{{"ok", true}, {"mode", std::string(to_string(mode))}}.dump();
    case ControlRequest::Verb::fault:
      break;
  }
  const Fault& fault = request->fault;
  std::vector<std::shared_ptr<Connection>> targets;
  if (fault.connection) {
    auto found = connections.find(*fault.connection);
    if (found == connections.end() || !found->second->live())
      return Json{{"ok", false}, {"error", "no open connection " + std::to_string(*fault.connection)}}.dump();
    targets.push_back(found->second);
  } else if (fault.kind != FaultKind::delay) {
    targets = live_connections();
  }
  const std::vector<std::uint64_t> ids = apply(fault, "control", targets);
  return Json{{"ok", true}, {"kind", std::string(to_string(fault.kind))}, {"conns", ids}}.dump();
}

// A number member in 0..limit, or nothing when absent.
Result<std::optional<double>> number_member(const Json& object, const char* name, double limit) {
  const auto found = object.find(name);
  if (found == object.end()) return std::optional<double>{};
  if (!found->is_number())
    return Error(ErrorCode::parse_error, std::string("control: \"") + name + "\" must be a number");
  const double value = found->get<double>();
  if (!(value >= 0 && value <= limit))
    return Error(ErrorCode::parse_error, std::string("control: \"") + name + "\" is out of range 0.." +
                                             std::to_string(static_cast<long long>(limit)));
  return std::optional<double>{value};
}

Nanos from_ms(double ms) { return Nanos{static_cast<std::int64_t>(std::llround(ms * 1e6))}; }

}  // namespace

std::string_view to_string(Mode mode) { return mode == Mode::random ? "random" : "pass"; }

Result<Mode> parse_mode(std::string_view name) {
  if (name == "random") return Mode::random;
  if (name == "pass") return Mode::pass;
  return Error(ErrorCode::parse_error,
               "unknown mode '" + std::string(name.substr(0, 64)) + "' (random, pass)");
}

std::string to_json(const ProxyStats& stats) { return stats_json(stats).dump(); }

Result<ControlRequest> parse_control_request(std::string_view line) {
  const Json request = Json::parse(line.begin(), line.end(), nullptr, false);
  if (request.is_discarded() || !request.is_object())
    return Error(ErrorCode::parse_error, "control: a request is one JSON object, e.g. {\"cmd\":\"stats\"}");
  const auto cmd = request.find("cmd");
  if (cmd == request.end() || !cmd->is_string())
    return Error(ErrorCode::parse_error, "control: \"cmd\" (a string) is missing");
  const std::string& verb = cmd->get_ref<const std::string&>();
  ControlRequest result;
  if (verb == "stats") {
    result.verb = ControlRequest::Verb::stats;
    return result;
  }
  if (verb == "mode") {
    const auto mode = request.find("mode");
    if (mode == request.end() || !mode->is_string())
      return Error(ErrorCode::parse_error, "control: mode needs \"mode\": \"random\" or \"pass\"");
    Result<Mode> parsed = parse_mode(mode->get_ref<const std::string&>());
    if (!parsed) return Error(ErrorCode::parse_error, "control: " + parsed.error().message);
    result.verb = ControlRequest::Verb::mode;
    result.mode = *parsed;
    return result;
  }
  Result<FaultKind> kind = parse_fault_kind(verb);
  if (!kind)
    return Error(ErrorCode::parse_error, "control: unknown cmd '" + verb.substr(0, 64) +
                                             "' (cut, reset, stall, delay, blackhole, refuse, mode, stats)");
  result.verb = ControlRequest::Verb::fault;
  Fault& fault = result.fault;
  fault.kind = *kind;
  Result<std::optional<double>> ms = number_member(request, "ms", kMaxRequestMs);
  if (!ms) return ms.error();
  if (fault.kind == FaultKind::stall || fault.kind == FaultKind::blackhole ||
      fault.kind == FaultKind::refuse) {
    if (!ms->has_value() || **ms <= 0)
      return Error(ErrorCode::parse_error,
                   "control: " + verb + " needs \"ms\", the period in milliseconds (> 0)");
    fault.duration = from_ms(**ms);
  }
  if (fault.kind == FaultKind::delay) {
    if (!ms->has_value())
      return Error(ErrorCode::parse_error, "control: delay needs \"ms\", the latency (0: off)");
    Result<std::optional<double>> max_ms = number_member(request, "max_ms", kMaxRequestMs);
    if (!max_ms) return max_ms.error();
    Result<std::optional<double>> for_ms = number_member(request, "for_ms", kMaxRequestMs);
    if (!for_ms) return for_ms.error();
    fault.latency.min = from_ms(**ms);
    fault.latency.max = max_ms->has_value() ? from_ms(**max_ms) : fault.latency.min;
    if (fault.latency.max < fault.latency.min)
      return Error(ErrorCode::parse_error, "control: delay \"max_ms\" is below \"ms\"");
    if (for_ms->has_value()) fault.duration = from_ms(**for_ms);
  }
  if (const auto dir = request.find("dir"); dir != request.end()) {
    if (!dir->is_string())
      return Error(ErrorCode::parse_error, "control: \"dir\" must be \"up\", \"down\" or \"both\"");
    Result<Direction> direction = parse_direction(dir->get_ref<const std::string&>());
    if (!direction) return Error(ErrorCode::parse_error, "control: " + direction.error().message);
    fault.direction = *direction;
  }
  if (const auto conn = request.find("conn"); conn != request.end()) {
    if (!conn->is_number_integer() ||
        (conn->is_number_integer() && !conn->is_number_unsigned() && conn->get<std::int64_t>() < 0))
      return Error(ErrorCode::parse_error,
                   "control: \"conn\" must be a connection id (a non-negative integer)");
    fault.connection = conn->get<std::uint64_t>();
  }
  return result;
}

struct FaultProxy::Impl {
  std::shared_ptr<Core> core;
};

FaultProxy::FaultProxy(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
FaultProxy::~FaultProxy() { close(); }

Result<std::unique_ptr<FaultProxy>> FaultProxy::start(asio::io_context& io, ProxyOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->core = std::make_shared<Core>(io, std::move(options));
  if (Result<void> opened = impl->core->open(); !opened) {
    impl->core->close();
    return opened.error();
  }
  return std::unique_ptr<FaultProxy>(new FaultProxy(std::move(impl)));
}

std::string FaultProxy::listen_address() const {
  asio::error_code ec;
  const tcp::endpoint endpoint = impl_->core->acceptor.local_endpoint(ec);
  return ec ? std::string() : endpoint_text(endpoint);
}

std::uint16_t FaultProxy::listen_port() const {
  asio::error_code ec;
  const tcp::endpoint endpoint = impl_->core->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

const std::string& FaultProxy::control_path() const { return impl_->core->options.control_path; }

void FaultProxy::inject(const Fault& fault) {
  Core& core = *impl_->core;
  std::vector<std::shared_ptr<Connection>> targets;
  if (fault.connection) {
    auto found = core.connections.find(*fault.connection);
    if (found != core.connections.end() && found->second->live()) targets.push_back(found->second);
  } else if (fault.kind != FaultKind::delay) {
    targets = core.live_connections();
  }
  core.apply(fault, "control", targets);
}

void FaultProxy::set_mode(Mode mode) { impl_->core->set_mode(mode); }
Mode FaultProxy::mode() const { return impl_->core->mode; }
ProxyStats FaultProxy::stats() const { return impl_->core->stats; }
std::string FaultProxy::handle_control(std::string_view line) { return impl_->core->handle_control(line); }

void FaultProxy::close() {
  if (impl_ && impl_->core) impl_->core->close();
}

}  // namespace cellguard::faultproxy
