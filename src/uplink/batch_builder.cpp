// Recorded blocks to uplink batches (batch_builder.h).
#include "uplink/batch_builder.h"

#include <cmath>
#include <limits>
#include <unordered_map>

#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace cellguard::uplink {

struct BatchBuilder::Impl {
  std::unique_ptr<dbc::DatabaseCodec> codec;
  std::vector<ChannelInfo> catalogue;
  // Per DBC message (index into the database): its first channel id and scaling hints.
  std::vector<std::uint32_t> first_channel;
  std::vector<std::vector<Scaling>> scaling;
  std::unordered_map<const dbc::MessageCodec*, std::size_t> message_index;
  std::unordered_map<std::uint32_t, std::uint32_t> sample_channel;  // recorder channel id -> wire id
  BuildCounters counters;

  // Scratch, reused between blocks.
  std::vector<double> decoded;
  dbc::PresenceMask present;
  std::vector<int> series_of_message;  // index into the batch's series, -1 if none yet
};

BatchBuilder::BatchBuilder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BatchBuilder::BatchBuilder(BatchBuilder&&) noexcept = default;
BatchBuilder& BatchBuilder::operator=(BatchBuilder&&) noexcept = default;
BatchBuilder::~BatchBuilder() = default;

Result<BatchBuilder> BatchBuilder::create(std::string_view dbc_text,
                                          const std::vector<recorder::ChannelInfo>& sample_channels,
                                          const CatalogueHints& hints) {
  auto impl = std::make_unique<Impl>();
  auto parsed = dbc::parse_dbc(dbc_text, "recording's DBC");
  if (!parsed) return parsed.error();
  impl->codec = std::make_unique<dbc::DatabaseCodec>(std::move(parsed->database));
  const dbc::Database& db = impl->codec->database();
  std::uint32_t next_id = 1;
  for (std::size_t m = 0; m < db.messages.size(); ++m) {
    const dbc::Message& message = db.messages[m];
    const ModuleOfMessage module = hints.module_of ? hints.module_of(message) : ModuleOfMessage{};
    impl->first_channel.push_back(next_id);
    std::vector<Scaling> scaling;
    for (const dbc::Signal& signal : message.signals) {
      ChannelInfo c;
      c.id = next_id++;
      c.name = message.name + "." + signal.name;
      c.unit = signal.unit;
      c.module = module.module;
      if (!module.rig_prefix.empty()) c.rig_column = module.rig_prefix + signal.name;
      c.integral = signal.value_type == dbc::ValueType::integer && signal.scale == std::floor(signal.scale) &&
                   signal.offset == std::floor(signal.offset);
      impl->catalogue.push_back(std::move(c));
      // Float signals have no integer coding; others: physical = raw * scale + offset.
      scaling.push_back(signal.value_type == dbc::ValueType::integer ? Scaling{signal.scale, signal.offset}
                                                                     : Scaling{});
    }
    impl->scaling.push_back(std::move(scaling));
    if (const dbc::MessageCodec* mc = impl->codec->find(message.id, message.extended);
        mc && &mc->message() == &message)
      impl->message_index[mc] = m;
  }
  for (const recorder::ChannelInfo& rc : sample_channels) {
    ChannelInfo c;
    c.id = next_id++;
    c.name = rc.name;
    c.unit = rc.unit;
    if (auto u = hints.units.find(rc.name); u != hints.units.end() && c.unit.empty()) c.unit = u->second;
    if (auto r = hints.rig_columns.find(rc.name); r != hints.rig_columns.end()) c.rig_column = r->second;
    impl->sample_channel[rc.id] = c.id;
    impl->catalogue.push_back(std::move(c));
  }
  return BatchBuilder(std::move(impl));
}

const std::vector<ChannelInfo>& BatchBuilder::catalogue() const { return impl_->catalogue; }
const BuildCounters& BatchBuilder::counters() const { return impl_->counters; }

Batch BatchBuilder::build(const recorder::Block& block) {
  Impl& s = *impl_;
  Batch batch;
  batch.seq = block.seq;
  batch.lost_records = block.lost_records;
  batch.records = block.frames.size() + block.samples.size() + block.events.size() + block.lost_records;
  const dbc::Database& db = s.codec->database();
  s.series_of_message.assign(db.messages.size(), -1);
  constexpr double kAbsent = std::numeric_limits<double>::quiet_NaN();

  for (const can::Frame& frame : block.frames) {
    const dbc::MessageCodec* mc =
        frame.error || frame.remote ? nullptr : s.codec->find(frame.id, frame.extended);
    const auto found = mc ? s.message_index.find(mc) : s.message_index.end();
    if (found == s.message_index.end()) {
      ++s.counters.unknown_frames;
      continue;
    }
    const std::size_t m = found->second;
    const std::size_t width = mc->signal_count();
    s.decoded.assign(width, kAbsent);
    s.present.resize(width);
    if (mc->decode(frame.payload(), s.decoded.data(), s.present) != dbc::DecodeStatus::ok) {
      ++s.counters.failed_frames;
      continue;
    }
    if (s.series_of_message[m] < 0) {
      s.series_of_message[m] = static_cast<int>(batch.series.size());
      Series series;
      for (std::size_t k = 0; k < width; ++k)
        series.channels.push_back(s.first_channel[m] + static_cast<std::uint32_t>(k));
      series.scaling = s.scaling[m];
      batch.series.push_back(std::move(series));
    }
    Series& series = batch.series[static_cast<std::size_t>(s.series_of_message[m])];
    series.times_ns.push_back(frame.timestamp_ns);
    for (std::size_t k = 0; k < width; ++k)
      series.values.push_back(s.present.test(k) ? s.decoded[k] : kAbsent);
    ++s.counters.frames;
  }

  // Samples: runs with the same time are one reading (the board's three values, the inverter's six).
  std::map<std::vector<std::uint32_t>, std::size_t> series_of_channels;
  std::vector<std::uint32_t> row_channels;
  std::vector<double> row_values;
  auto flush_row = [&](TimeNs t) {
    if (row_channels.empty()) return;
    auto [it, inserted] = series_of_channels.try_emplace(row_channels, batch.series.size());
    if (inserted) {
      Series series;
      series.channels = row_channels;
      series.scaling.assign(row_channels.size(), Scaling{});
      batch.series.push_back(std::move(series));
    }
    Series& series = batch.series[it->second];
    series.times_ns.push_back(t);
    series.values.insert(series.values.end(), row_values.begin(), row_values.end());
    row_channels.clear();
    row_values.clear();
  };
  TimeNs row_time = 0;
  for (const recorder::SampleRecord& sample : block.samples) {
    const auto id = s.sample_channel.find(sample.channel);
    if (id == s.sample_channel.end()) continue;  // a channel registered after the catalogue was made
    bool repeated = false;
    for (std::uint32_t c : row_channels) repeated = repeated || c == id->second;
    if (!row_channels.empty() && (sample.time_ns != row_time || repeated)) flush_row(row_time);
    row_time = sample.time_ns;
    row_channels.push_back(id->second);
    row_values.push_back(sample.value);
  }
  flush_row(row_time);

  batch.events.reserve(block.events.size());
  for (const recorder::EventRecord& e : block.events) batch.events.push_back({e.time_ns, e.kind, e.json});
  return batch;
}

}  // namespace cellguard::uplink
