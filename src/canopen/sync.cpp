#include "canopen/canopen.h"

namespace cellguard::canopen {

SyncProducer::SyncProducer(SyncConfig config) : config_(config) {
  // Object 1019h: 1 and 241..255 are reserved; treat them as the nearest valid overflow value.
  if (config_.counter_overflow == 1) config_.counter_overflow = 2;
  if (config_.counter_overflow > 240) config_.counter_overflow = 240;
}

void SyncProducer::start(std::int64_t now_ns) { due_ns_ = now_ns; }

can::Frame SyncProducer::produce() {
  can::Frame frame;
  frame.id = config_.cob_id;
  if (config_.counter_overflow > 0) {
    // §7.2.5.2.1: the counter starts at 1 and is reset to 1 after reaching the overflow value.
    counter_ = counter_ >= config_.counter_overflow ? 1 : static_cast<std::uint8_t>(counter_ + 1);
    frame.size = 1;
    frame.data[0] = counter_;
  }
  return frame;
}

std::int64_t SyncProducer::advance(std::int64_t now_ns) {
  std::int64_t next = due_ns_ + config_.period_ns;
  if (next < now_ns) next = now_ns + config_.period_ns;  // fell behind: skip, do not burst
  due_ns_ = next;
  return due_ns_;
}

}  // namespace cellguard::canopen
