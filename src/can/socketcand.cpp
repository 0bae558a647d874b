// socketcand over TCP: the client behind `socketcand://HOST:PORT/CHANNEL` and SocketcandServer.
// The protocol text is in socketcand_protocol.cpp; this file only moves bytes and keeps state.
#include "can/socketcand.h"

#include <array>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <mutex>
#include <set>

#include "can/bus_backends.h"
#include "can/socketcand_protocol.h"
#include "core/text.h"

namespace cellguard::can {
namespace {

using asio::ip::tcp;

constexpr std::size_t kReadChunkBytes = 4096;
// Client: bytes of frames queued by send() and not yet written (about 8000 frames).
constexpr std::size_t kMaxClientQueueBytes = 256 * 1024;
// Client: from the TCP connection to `< ok >` for rawmode.
constexpr std::chrono::seconds kHandshakeTimeout{5};
// Client: one bad element is counted and reported, the link stays up; this many in a row without a
// valid one means the stream is not socketcand (or we lost sync): the link is closed, to be reopened.
constexpr std::uint64_t kMaxMalformedInRow = 64;

std::string describe_endpoint(std::string_view host, std::uint16_t port, std::string_view channel) {
  std::string text = "socketcand://";
  bool ipv6 = host.find(':') != std::string_view::npos;
  if (ipv6) text.push_back('[');
  text.append(host);
  if (ipv6) text.push_back(']');
  text += ":" + std::to_string(port) + "/" + std::string(channel);
  return text;
}

// ---------------------------------------------------------------------------------------------
// Client

class Client : public std::enable_shared_from_this<Client> {
 public:
  Client(asio::io_context& io, std::string_view host, std::uint16_t port, std::string_view channel,
         std::string open_element)
      : io_(io),
        resolver_(io),
        socket_(io),
        handshake_timer_(io),
        host_(host),
        port_(port),
        channel_(channel),
        open_element_(std::move(open_element)),
        description_(describe_endpoint(host, port, channel)) {}

  void start() {
    asio::post(io_, [self = shared_from_this()] { self->resolve(); });
  }

  Result<void> send(const Frame& frame) {
    std::string element;
    if (auto formatted = socketcand::append_send(element, frame); !formatted) {
      return formatted.error();
    }
    bool post_flush = false;
    {
      std::lock_guard lock(send_mutex_);
      if (closed_.load()) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return Error(ErrorCode::io_error, description_ + ": bus is closed");
      }
      if (queued_.size() + element.size() > kMaxClientQueueBytes) {
        counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
        return Error(ErrorCode::io_error, description_ + ": send queue full, frame dropped");
      }
      queued_.append(element);
      counters_.frames_sent.fetch_add(1, std::memory_order_relaxed);
      if (!flush_posted_) post_flush = flush_posted_ = true;
    }
    if (post_flush) {
      asio::post(io_, [self = shared_from_this()] {
        {
          std::lock_guard lock(self->send_mutex_);
          self->flush_posted_ = false;
        }
        self->pump_writes();
      });
    }
    return success();
  }

  void close() {
    {
      std::lock_guard lock(send_mutex_);
      if (closed_.exchange(true)) return;
    }
    state_ = State::closed;
    resolver_.cancel();
    handshake_timer_.cancel();
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  void on_ready(Bus::ReadyHandler handler) {
    if (state_ == State::ready) {
      asio::post(io_, [self = shared_from_this(), handler = std::move(handler)] {
        if (!self->closed_.load()) handler();
      });
    } else {
      ready_handler_ = std::move(handler);
    }
  }

  asio::io_context& io_;
  std::atomic<bool> closed_{false};
  detail::AtomicCounters counters_;
  Bus::ReceiveHandler receive_handler_;
  Bus::ErrorHandler error_handler_;
  const std::string& description() const { return description_; }

 private:
  enum class State { connecting, await_hi, await_open_ok, await_rawmode_ok, ready, closed };

  void resolve() {
    if (closed_.load()) return;
    handshake_timer_.expires_after(kHandshakeTimeout);
    handshake_timer_.async_wait([self = shared_from_this()](const asio::error_code& error) {
      if (error || self->closed_.load() || self->state_ == State::ready) return;
      self->fail(Error(ErrorCode::io_error, self->description_ + ": no socketcand handshake within " +
                                                std::to_string(kHandshakeTimeout.count()) + " s"));
    });
    resolver_.async_resolve(
        host_, std::to_string(port_),
        [self = shared_from_this()](const asio::error_code& error,
                                    const tcp::resolver::results_type& results) {
          if (self->closed_.load()) return;
          if (error) {
            self->fail(
                Error(ErrorCode::io_error, self->description_ + ": cannot resolve host: " + error.message()));
            return;
          }
          self->connect(results);
        });
  }

  void connect(const tcp::resolver::results_type& results) {
    asio::async_connect(
        socket_, results, [self = shared_from_this()](const asio::error_code& error, const tcp::endpoint&) {
          if (self->closed_.load()) return;
          if (error) {
            self->fail(
                Error(ErrorCode::io_error, self->description_ + ": cannot connect: " + error.message()));
            return;
          }
          asio::error_code ignored;
          self->socket_.set_option(tcp::no_delay(true), ignored);
          self->state_ = State::await_hi;
          self->read();
        });
  }

  void read() {
    socket_.async_read_some(
        asio::buffer(read_buffer_),
        [self = shared_from_this()](const asio::error_code& error, std::size_t bytes) {
          if (self->closed_.load()) return;
          if (error) {
            self->fail(Error(ErrorCode::io_error,
                             self->description_ + ": link lost: " +
                                 (error == asio::error::eof ? std::string("server closed the connection")
                                                            : error.message())));
            return;
          }
          self->splitter_.feed({self->read_buffer_.data(), bytes});
          while (auto element = self->splitter_.next()) {
            if (!element->ok()) {
              self->malformed(element->error());
              if (self->closed_.load()) return;
              continue;
            }
            self->handle(element->value());
            if (self->closed_.load()) return;
          }
          self->read();
        });
  }

  void handle(std::string_view text) {
    auto parsed = socketcand::parse_element(text);  // its errors quote the element escaped
    if (!parsed) {
      malformed(parsed.error());
      return;
    }
    socketcand::Element& element = parsed.value();
    auto unexpected = [&](std::string_view expected) {
      fail(Error(ErrorCode::parse_error, description_ + ": expected " + std::string(expected) + ", got '" +
                                             escape_untrusted(text, 160) + "'"));
    };
    switch (state_) {
      case State::await_hi:
        if (element.kind != socketcand::ElementKind::hi) return unexpected("< hi >");
        state_ = State::await_open_ok;
        write_control(open_element_);
        return;
      case State::await_open_ok:
        if (element.kind == socketcand::ElementKind::error_message) {
          return fail(Error(ErrorCode::not_found, description_ + ": server cannot open '" + channel_ +
                                                      "': " + escape_untrusted(element.text)));
        }
        if (element.kind != socketcand::ElementKind::ok) return unexpected("< ok > for open");
        state_ = State::await_rawmode_ok;
        write_control(std::string(socketcand::kRawmode));
        return;
      case State::await_rawmode_ok:
        if (element.kind == socketcand::ElementKind::error_message) {
          return fail(Error(ErrorCode::unsupported,
                            description_ + ": server refused raw mode: " + escape_untrusted(element.text)));
        }
        if (element.kind != socketcand::ElementKind::ok) return unexpected("< ok > for rawmode");
        state_ = State::ready;
        handshake_timer_.cancel();
        pump_writes();
        if (ready_handler_) {
          auto handler = std::move(ready_handler_);
          ready_handler_ = nullptr;
          handler();
        }
        return;
      case State::ready:
        break;
      case State::connecting:
      case State::closed:
        return;
    }
    switch (element.kind) {
      case socketcand::ElementKind::frame:
        malformed_in_row_ = 0;
        element.frame.bus.assign(channel_);
        counters_.frames_received.fetch_add(1, std::memory_order_relaxed);
        if (receive_handler_) receive_handler_(element.frame);
        return;
      case socketcand::ElementKind::ok:
      case socketcand::ElementKind::echo:
        malformed_in_row_ = 0;
        return;
      case socketcand::ElementKind::error_message:
        malformed_in_row_ = 0;
        report(
            Error(ErrorCode::io_error, description_ + ": server error: " + escape_untrusted(element.text)));
        return;
      default:
        malformed(Error(ErrorCode::parse_error,
                        "socketcand: unexpected element '" + escape_untrusted(text, 160) + "'"));
        return;
    }
  }

  // One element that is not socketcand: counted and reported (parse_error), the link stays up. A run
  // of them is a broken stream: the link is closed (io_error) for the caller to reopen. During the
  // handshake any bad element ends the attempt.
  void malformed(const Error& error) {
    counters_.malformed_elements.fetch_add(1, std::memory_order_relaxed);
    if (state_ != State::ready) {
      fail(Error(error.code, description_ + ": " + error.message));
      return;
    }
    report(Error(ErrorCode::parse_error, description_ + ": malformed element: " + error.message));
    if (++malformed_in_row_ >= kMaxMalformedInRow) {
      fail(Error(ErrorCode::io_error, description_ +
                                          ": protocol out of step: " + std::to_string(malformed_in_row_) +
                                          " malformed elements in a row, closing the link"));
    }
  }

  // Loop thread. Handshake elements go out at once; frames only once in raw mode.
  void write_control(const std::string& element) {
    control_.append(element);
    pump_writes();
  }

  void pump_writes() {
    if (write_in_flight_ || closed_.load() || state_ == State::connecting) return;
    writing_.swap(control_);
    if (state_ == State::ready) {
      std::lock_guard lock(send_mutex_);
      writing_.append(queued_);
      queued_.clear();
    }
    if (writing_.empty()) return;
    write_in_flight_ = true;
    asio::async_write(
        socket_, asio::buffer(writing_),
        [self = shared_from_this()](const asio::error_code& error, std::size_t) {
          self->write_in_flight_ = false;
          self->writing_.clear();
          if (self->closed_.load()) return;
          if (error) {
            self->fail(Error(ErrorCode::io_error, self->description_ + ": link lost: " + error.message()));
            return;
          }
          self->pump_writes();
        });
  }

  void report(const Error& error) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    if (error_handler_) error_handler_(error);
  }

  // A failure that ends the link: closed first, so the handler sees is_closed() and can tell a lost
  // link (to reopen) from one bad element (parse_error on an open bus); then reported once.
  void fail(const Error& error) {
    if (closed_.load()) return;
    close();
    report(error);
  }

  tcp::resolver resolver_;
  tcp::socket socket_;
  asio::steady_timer handshake_timer_;
  std::string host_;
  std::uint16_t port_;
  std::string channel_;
  std::string open_element_;
  std::string description_;
  State state_ = State::connecting;
  socketcand::ElementSplitter splitter_;
  std::uint64_t malformed_in_row_ = 0;  // loop thread: malformed elements since the last valid one
  std::array<char, kReadChunkBytes> read_buffer_{};
  Bus::ReadyHandler ready_handler_;

  std::mutex send_mutex_;
  std::string queued_;         // guarded by send_mutex_: frames from send()
  bool flush_posted_ = false;  // guarded by send_mutex_
  std::string control_;        // loop thread: handshake elements
  std::string writing_;        // loop thread: the bytes of the write in flight
  bool write_in_flight_ = false;
};

class SocketcandBus final : public Bus {
 public:
  explicit SocketcandBus(std::shared_ptr<Client> client) : client_(std::move(client)) {}
  ~SocketcandBus() override { close(); }

  Result<void> send(const Frame& frame) override { return client_->send(frame); }
  void on_receive(ReceiveHandler handler) override { client_->receive_handler_ = std::move(handler); }
  void on_error(ErrorHandler handler) override { client_->error_handler_ = std::move(handler); }
  void on_ready(ReadyHandler handler) override { client_->on_ready(std::move(handler)); }
  void close() override { client_->close(); }
  bool is_closed() const override { return client_->closed_.load(); }
  std::string describe() const override { return client_->description(); }
  BusCounters counters() const override { return client_->counters_.snapshot(); }

 private:
  std::shared_ptr<Client> client_;
};

}  // namespace

namespace detail {

Result<std::unique_ptr<Bus>> open_socketcand_bus(asio::io_context& io, std::string_view host,
                                                 std::uint16_t port, std::string_view channel) {
  auto open_element = socketcand::format_open(channel);
  if (!open_element) return open_element.error();
  if (channel.size() > BusName::kCapacity) {
    return Error(ErrorCode::invalid_argument, "socketcand: channel name longer than 15 characters");
  }
  auto client = std::make_shared<Client>(io, host, port, channel, std::move(open_element.value()));
  client->start();
  return std::unique_ptr<Bus>(std::make_unique<SocketcandBus>(std::move(client)));
}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// Server

namespace {

class Connection;

struct ServerCounters {
  std::atomic<std::uint64_t> clients_accepted{0};
  std::atomic<std::uint64_t> clients_connected{0};
  std::atomic<std::uint64_t> frames_from_clients{0};
  std::atomic<std::uint64_t> frames_to_clients{0};
  std::atomic<std::uint64_t> frames_dropped{0};
  std::atomic<std::uint64_t> malformed_elements{0};
};

}  // namespace

class SocketcandServer::Impl : public std::enable_shared_from_this<SocketcandServer::Impl> {
 public:
  Impl(asio::io_context& io, SocketcandServerOptions options, std::unique_ptr<Bus> bus)
      : io_(io), options_(std::move(options)), bus_(std::move(bus)), acceptor_(io) {}

  Result<void> listen();
  void accept();
  void close();
  // A frame from `sender` (nullptr: the in-process side) goes to every other raw-mode client.
  void relay(const Frame& frame, const Connection* sender);
  void forward_from_client(const Frame& frame, const Connection* sender);
  void remove(const std::shared_ptr<Connection>& connection);

  asio::io_context& io_;
  SocketcandServerOptions options_;
  std::unique_ptr<Bus> bus_;
  tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  bool closed_ = false;
  std::set<std::shared_ptr<Connection>> connections_;
  ServerCounters counters_;
};

namespace {

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::weak_ptr<SocketcandServer::Impl> server)
      : socket_(std::move(socket)), hold_timer_(socket_.get_executor()), server_(std::move(server)) {}

  void start() {
    asio::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    queue_control(socketcand::kHi);
    read();
  }

  bool in_raw_mode() const { return state_ == State::raw; }

  // A frame element for this client; dropped (and counted) if the client is not keeping up.
  void queue_frame(const Frame& frame, ServerCounters& counters, std::size_t max_queue_bytes) {
    std::size_t before = pending_.size();
    socketcand::append_received(pending_, frame);
    pending_.push_back('\n');
    if (pending_.size() > max_queue_bytes) {
      pending_.resize(before);
      counters.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    counters.frames_to_clients.fetch_add(1, std::memory_order_relaxed);
    pump_writes();
  }

  void close() {
    if (state_ == State::closed) return;
    state_ = State::closed;
    hold_timer_.cancel();
    asio::error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

 private:
  enum class State { no_bus, bcm, raw, closing, closed };

  void read() {
    socket_.async_read_some(asio::buffer(read_buffer_),
                            [self = shared_from_this()](const asio::error_code& error, std::size_t bytes) {
                              if (self->state_ == State::closed) return;
                              if (error) {
                                self->drop();
                                return;
                              }
                              self->splitter_.feed({self->read_buffer_.data(), bytes});
                              while (auto element = self->splitter_.next()) {
                                if (self->state_ == State::closed || self->state_ == State::closing) break;
                                if (!element->ok()) {
                                  self->reject(element->error().message);
                                  continue;
                                }
                                self->handle(element->value());
                              }
                              if (self->state_ == State::closed) return;
                              self->read();
                            });
  }

  void handle(std::string_view text) {
    auto server = server_.lock();
    if (!server) return;
    auto parsed = socketcand::parse_element(text);
    if (!parsed) return reject(parsed.error().message);
    const socketcand::Element& element = parsed.value();
    using Kind = socketcand::ElementKind;

    if (state_ == State::no_bus) {
      if (element.kind != Kind::open) return reject("expected < open BUS >");
      if (element.text != server->options_.channel) {
        // protocol.md: "Otherwise an error is returned and the connection is terminated."
        queue_control(
            socketcand::format_error("could not open bus '" + escape_untrusted(element.text, 64) + "'"));
        state_ = State::closing;
        return;
      }
      state_ = State::bcm;
      queue_control(socketcand::kOk);
      return;
    }
    switch (element.kind) {
      case Kind::rawmode:
        if (state_ == State::raw) return queue_control(socketcand::kOk);
        state_ = State::raw;
        queue_control(socketcand::kOk);
        hold_output(server->options_.rawmode_grace);
        return;
      case Kind::bcmmode:
        state_ = State::bcm;
        queue_control(socketcand::kOk);
        return;
      case Kind::echo:
        queue_control(socketcand::kEcho);
        return;
      case Kind::send:
        server->counters_.frames_from_clients.fetch_add(1, std::memory_order_relaxed);
        server->forward_from_client(element.frame, this);
        return;
      default:
        return reject(state_ == State::raw ? "unknown command" : "unsupported command in BCM mode");
    }
  }

  void reject(std::string_view reason) {
    if (auto server = server_.lock()) {
      server->counters_.malformed_elements.fetch_add(1, std::memory_order_relaxed);
    }
    queue_control(socketcand::format_error(reason));
  }

  // Replies to the client's own commands; bounded like frames so a client that sends and never
  // reads cannot grow our memory.
  void queue_control(std::string_view element) {
    if (state_ == State::closed) return;
    if (pending_.size() + element.size() > kMaxClientQueueBytes) return;
    pending_.append(element);
    pump_writes();
  }

  // python-can reads the reply to `< rawmode >` with one recv(256) and compares it whole, so a frame
  // right behind the `< ok >` fails its handshake: output waits a moment once `< ok >` is on its way.
  void hold_output(std::chrono::milliseconds grace) {
    if (grace.count() <= 0) return;
    holding_ = true;
    hold_timer_.expires_after(grace);
    hold_timer_.async_wait([self = shared_from_this()](const asio::error_code&) {
      self->holding_ = false;
      self->pump_writes();
    });
  }

  void pump_writes() {
    if (write_in_flight_ || holding_ || state_ == State::closed || pending_.empty()) return;
    writing_.swap(pending_);
    write_in_flight_ = true;
    asio::async_write(socket_, asio::buffer(writing_),
                      [self = shared_from_this()](const asio::error_code& error, std::size_t) {
                        self->write_in_flight_ = false;
                        self->writing_.clear();
                        if (self->state_ == State::closed) return;
                        if (error) {
                          self->drop();
                          return;
                        }
                        if (self->state_ == State::closing && self->pending_.empty()) {
                          self->drop();
                          return;
                        }
                        self->pump_writes();
                      });
  }

  void drop() {
    close();
    if (auto server = server_.lock()) server->remove(shared_from_this());
  }

  tcp::socket socket_;
  asio::steady_timer hold_timer_;
  bool holding_ = false;
  std::weak_ptr<SocketcandServer::Impl> server_;
  State state_ = State::no_bus;
  socketcand::ElementSplitter splitter_;
  std::array<char, kReadChunkBytes> read_buffer_{};
  std::string pending_;
  std::string writing_;
  bool write_in_flight_ = false;
};

}  // namespace

Result<void> SocketcandServer::Impl::listen() {
  asio::error_code error;
  auto address = asio::ip::make_address(options_.listen_address, error);
  if (error) {
    return Error(ErrorCode::invalid_argument,
                 "socketcand server: bad listen address '" + options_.listen_address + "'");
  }
  tcp::endpoint endpoint(address, options_.port);
  auto failed = [&](std::string_view what) {
    return Error(ErrorCode::io_error, "socketcand server: cannot " + std::string(what) + " " +
                                          options_.listen_address + ":" + std::to_string(options_.port) +
                                          ": " + error.message());
  };
  if (acceptor_.open(endpoint.protocol(), error); error) return failed("open");
  if (acceptor_.set_option(tcp::acceptor::reuse_address(true), error); error) return failed("configure");
  if (acceptor_.bind(endpoint, error); error) return failed("bind");
  if (acceptor_.listen(asio::socket_base::max_listen_connections, error); error) return failed("listen on");
  port_ = acceptor_.local_endpoint(error).port();
  if (error) return failed("query");
  return success();
}

void SocketcandServer::Impl::accept() {
  acceptor_.async_accept([self = shared_from_this()](const asio::error_code& error, tcp::socket socket) {
    if (self->closed_) return;
    if (!error) {
      self->counters_.clients_accepted.fetch_add(1, std::memory_order_relaxed);
      if (self->connections_.size() >= self->options_.max_clients) {
        asio::error_code ignored;
        socket.close(ignored);
      } else {
        auto connection = std::make_shared<Connection>(std::move(socket), self);
        self->connections_.insert(connection);
        self->counters_.clients_connected.store(self->connections_.size());
        connection->start();
      }
    }
    // Transient accept errors (e.g. out of descriptors) must not stop the server.
    self->accept();
  });
}

void SocketcandServer::Impl::relay(const Frame& frame, const Connection* sender) {
  for (const auto& connection : connections_) {
    if (connection.get() != sender && connection->in_raw_mode()) {
      connection->queue_frame(frame, counters_, options_.max_client_queue_bytes);
    }
  }
}

void SocketcandServer::Impl::forward_from_client(const Frame& frame, const Connection* sender) {
  Frame stamped = frame;
  stamped.timestamp_ns = detail::wall_clock_ns();
  stamped.bus.assign(options_.channel);
  if (auto sent = bus_->send(stamped); !sent) {
    counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
  }
  relay(stamped, sender);
}

void SocketcandServer::Impl::remove(const std::shared_ptr<Connection>& connection) {
  connections_.erase(connection);
  counters_.clients_connected.store(connections_.size());
}

void SocketcandServer::Impl::close() {
  if (closed_) return;
  closed_ = true;
  asio::error_code ignored;
  acceptor_.close(ignored);
  for (const auto& connection : connections_) connection->close();
  connections_.clear();
  counters_.clients_connected.store(0);
  bus_->close();
}

Result<std::unique_ptr<SocketcandServer>> SocketcandServer::start(asio::io_context& io,
                                                                  SocketcandServerOptions options) {
  if (options.inproc_bus.empty()) {
    return Error(ErrorCode::invalid_argument, "socketcand server: no in-process bus to serve");
  }
  if (auto open = socketcand::format_open(options.channel); !open) return open.error();
  if (options.max_client_queue_bytes < socketcand::kMaxElementBytes) {
    return Error(ErrorCode::invalid_argument, "socketcand server: client queue smaller than one element");
  }
  auto bus = detail::open_inproc_bus(io, options.inproc_bus);
  if (!bus) return bus.error();
  auto impl = std::make_shared<Impl>(io, std::move(options), std::move(bus.value()));
  if (auto listening = impl->listen(); !listening) return listening.error();
  std::weak_ptr<Impl> weak = impl;
  impl->bus_->on_receive([weak](const Frame& frame) {
    if (auto server = weak.lock()) server->relay(frame, nullptr);
  });
  impl->accept();
  return std::unique_ptr<SocketcandServer>(new SocketcandServer(std::move(impl)));
}

SocketcandServer::SocketcandServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

SocketcandServer::~SocketcandServer() { close(); }

std::uint16_t SocketcandServer::port() const { return impl_->port_; }

void SocketcandServer::close() { impl_->close(); }

SocketcandServerCounters SocketcandServer::counters() const {
  const ServerCounters& c = impl_->counters_;
  return {c.clients_accepted.load(),  c.clients_connected.load(), c.frames_from_clients.load(),
          c.frames_to_clients.load(), c.frames_dropped.load(),    c.malformed_elements.load()};
}

}  // namespace cellguard::can
