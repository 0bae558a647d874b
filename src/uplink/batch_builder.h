// Turns the edge's recorded blocks (recorder/recorder.h: raw CAN frames, board and inverter samples,
// events) into uplink batches of channel samples, and names the channels for the server.
//
// Channels: every signal of every DBC message ("<message>.<signal>", with the signal's unit, the
// module the edge maps the message to and the rig's CSV column), then every non-CAN channel of the
// recording ("board.temp1_c", "inverter.dc_link_power_kw", "safety.state", ...). Ids are positions in
// that catalogue, so the same DBC and recording give the same ids.
//
// A block becomes one batch with the same seq: the frames of each DBC message form one series (one
// row per frame, NaN for signals a multiplexer did not select, each column with the signal's scaling
// as the integer-coding hint); samples recorded at the same instant form rows of a series per set
// of channels; events are copied. Frames of unknown ids, remote and error frames, and frames too
// short for their message are not samples: they stay in the local recording and are counted.
//
// Thread safety: build() mutates scratch buffers; one thread at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/result.h"
#include "recorder/recorder.h"
#include "uplink/protocol.h"

namespace cellguard::dbc {
class DatabaseCodec;
struct Message;
}  // namespace cellguard::dbc

namespace cellguard::uplink {

struct ModuleOfMessage {
  std::uint32_t module = 0;  // 0: not a battery module's message
  std::string rig_prefix;    // e.g. "BMU03_": the rig CSV column is prefix + signal name; empty: none
};

struct CatalogueHints {
  // Which module a DBC message belongs to (the edge's module map); unset: none.
  std::function<ModuleOfMessage(const dbc::Message&)> module_of;
  // For non-CAN channels: unit and rig CSV column by channel name.
  std::map<std::string, std::string, std::less<>> units;
  std::map<std::string, std::string, std::less<>> rig_columns;
};

struct BuildCounters {
  std::uint64_t frames = 0;          // frames turned into rows
  std::uint64_t unknown_frames = 0;  // no DBC message (or remote/error frames)
  std::uint64_t failed_frames = 0;   // too short or invalid multiplexer
};

class BatchBuilder {
 public:
  // `dbc_text` as stored in the recording; `sample_channels` from RecordingReader::channels().
  static Result<BatchBuilder> create(std::string_view dbc_text,
                                     const std::vector<recorder::ChannelInfo>& sample_channels,
                                     const CatalogueHints& hints);
  BatchBuilder(BatchBuilder&&) noexcept;
  BatchBuilder& operator=(BatchBuilder&&) noexcept;
  ~BatchBuilder();

  const std::vector<ChannelInfo>& catalogue() const;
  Batch build(const recorder::Block& block);
  const BuildCounters& counters() const;

 private:
  struct Impl;
  explicit BatchBuilder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cellguard::uplink
