// In-process bus: endpoints opened on the same name with the same io_context form one bus. A frame
// sent by one endpoint is posted to every other endpoint's loop; the sender does not see it (as a
// SocketCAN raw socket without CAN_RAW_RECV_OWN_MSGS).
//
// The registry of names is an io_context service, not a process global, so tests that use separate
// io_contexts never see each other's buses.
#include <asio/io_context.hpp>
#include <asio/post.hpp>
#include <map>
#include <mutex>
#include <vector>

#include "can/bus_backends.h"

namespace cellguard::can::detail {
namespace {

// Frames posted to one endpoint and not yet delivered; beyond this the endpoint drops (and counts)
// rather than letting a sender on another thread grow the loop's queue without bound.
constexpr std::size_t kMaxPendingFrames = 65536;

class Hub;

class Endpoint : public std::enable_shared_from_this<Endpoint> {
 public:
  Endpoint(asio::io_context& io, std::shared_ptr<Hub> hub, std::string_view name)
      : io_(io), hub_(std::move(hub)), name_(name) {}

  Result<void> send(const Frame& frame);
  void close();

  // Called by the hub on the sender's thread.
  void post_delivery(const Frame& frame) {
    if (pending_.fetch_add(1, std::memory_order_relaxed) >= kMaxPendingFrames) {
      pending_.fetch_sub(1, std::memory_order_relaxed);
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    asio::post(io_, [self = shared_from_this(), frame] {
      self->pending_.fetch_sub(1, std::memory_order_relaxed);
      self->deliver(frame);
    });
  }

  void on_ready(Bus::ReadyHandler handler) {
    asio::post(io_, [self = shared_from_this(), handler = std::move(handler)] {
      if (!self->closed_.load()) handler();
    });
  }

  asio::io_context& io_;
  std::shared_ptr<Hub> hub_;
  BusName name_;
  std::atomic<bool> closed_{false};
  std::atomic<std::size_t> pending_{0};
  AtomicCounters counters_;
  Bus::ReceiveHandler receive_handler_;
  Bus::ErrorHandler error_handler_;

 private:
  void deliver(Frame frame) {
    if (closed_.load()) {
      counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    frame.bus = name_;
    counters_.frames_received.fetch_add(1, std::memory_order_relaxed);
    if (receive_handler_) receive_handler_(frame);
  }
};

class Hub {
 public:
  explicit Hub(std::string name) : name_(std::move(name)) {}

  void attach(const std::shared_ptr<Endpoint>& endpoint) {
    std::lock_guard lock(mutex_);
    endpoints_.push_back(endpoint);
  }
  void detach(const Endpoint* endpoint) {
    std::lock_guard lock(mutex_);
    std::erase_if(endpoints_, [endpoint](const auto& e) { return e.get() == endpoint; });
  }
  // Posts `frame` to every endpoint but `sender`, under the lock so that frames from one sender keep
  // their order and an endpoint that detached gets nothing more.
  void broadcast(const Endpoint* sender, const Frame& frame) {
    std::lock_guard lock(mutex_);
    for (const auto& endpoint : endpoints_) {
      if (endpoint.get() != sender) endpoint->post_delivery(frame);
    }
  }
  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<Endpoint>> endpoints_;
};

Result<void> Endpoint::send(const Frame& frame) {
  if (closed_.load()) {
    counters_.frames_dropped.fetch_add(1, std::memory_order_relaxed);
    return Error(ErrorCode::io_error, "inproc:" + hub_->name() + ": bus is closed");
  }
  if (auto valid = validate_frame(frame); !valid) return valid.error();
  Frame stamped = frame;
  stamped.timestamp_ns = wall_clock_ns();
  counters_.frames_sent.fetch_add(1, std::memory_order_relaxed);
  hub_->broadcast(this, stamped);
  return success();
}

void Endpoint::close() {
  if (closed_.exchange(true)) return;
  hub_->detach(this);
}

// The names of one io_context's in-process buses.
class InprocRegistry : public asio::execution_context::service {
 public:
  static inline asio::execution_context::id id;

  explicit InprocRegistry(asio::execution_context& context) : service(context) {}

  std::shared_ptr<Hub> hub(std::string_view name) {
    std::lock_guard lock(mutex_);
    auto it = hubs_.find(name);
    if (it != hubs_.end()) {
      if (auto hub = it->second.lock()) return hub;
    }
    auto hub = std::make_shared<Hub>(std::string(name));
    hubs_.insert_or_assign(std::string(name), hub);
    return hub;
  }

 private:
  void shutdown() override {}

  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<Hub>, std::less<>> hubs_;
};

class InprocBus final : public Bus {
 public:
  explicit InprocBus(std::shared_ptr<Endpoint> endpoint) : endpoint_(std::move(endpoint)) {}
  ~InprocBus() override { close(); }

  Result<void> send(const Frame& frame) override { return endpoint_->send(frame); }
  void on_receive(ReceiveHandler handler) override { endpoint_->receive_handler_ = std::move(handler); }
  void on_error(ErrorHandler handler) override { endpoint_->error_handler_ = std::move(handler); }
  void on_ready(ReadyHandler handler) override { endpoint_->on_ready(std::move(handler)); }
  void close() override { endpoint_->close(); }
  bool is_closed() const override { return endpoint_->closed_.load(); }
  std::string describe() const override { return "inproc:" + endpoint_->hub_->name(); }
  BusCounters counters() const override { return endpoint_->counters_.snapshot(); }

 private:
  std::shared_ptr<Endpoint> endpoint_;
};

}  // namespace

Result<std::unique_ptr<Bus>> open_inproc_bus(asio::io_context& io, std::string_view name) {
  auto hub = asio::use_service<InprocRegistry>(io).hub(name);
  auto endpoint = std::make_shared<Endpoint>(io, hub, name);
  hub->attach(endpoint);
  return std::unique_ptr<Bus>(std::make_unique<InprocBus>(std::move(endpoint)));
}

}  // namespace cellguard::can::detail
