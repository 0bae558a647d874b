// The live monitor's model (`cellguard monitor`): the latest decoded values of every message, its
// rate and age, multiplexed messages split per multiplexer value, and the battery modules' cells as a
// grid. Pure: frames and times go in, a Snapshot comes out; no I/O, no clock (the caller passes the
// time of each frame and of each snapshot), so tests replay exactly.
//
// Rates: the last kRateSamples arrivals of a message (per mux value) within `rate_window` before
// the snapshot; rate = (arrivals - 1) / (newest - oldest). A message silent for a whole window has
// rate 0. The total rate counts all frames of the window in 100 ms buckets over the time those
// buckets cover (or since the first frame, if later). Ages: snapshot time minus the latest arrival.
//
// Module grid (the rig's layout, as the edge finds its modules, edge/module_map.h): a message belongs
// to module N by its CANopen PDO COB-ID (offset from the nearest configured PDO base below it) or by
// its name ("BMU{id}_"); within a module's messages, signals named like `cell_voltage_signal`
// ("Cell_{n}_Voltage") are cell voltages, like `temperature_signal` ("CMA_Temp{n}") temperatures,
// and the module's voltage, current, state of charge and min/max temperature by name.
//
// Filters: shell globs (fnmatch) matched against a message name, a signal name, or "message.signal".
// A message is shown when its name matches (all its signals) or some of its signals match (those).
// No filter: everything. The grid is not filtered.
//
// Memory is bounded: per DBC message and mux value one entry (mux values seen are capped at
// kMaxMuxValuesPerMessage, the rest counted), unknown ids capped at kMaxUnknownIds.
//
// Thread safety: one thread at a time.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "can/frame.h"
#include "dbc/codec.h"

namespace cellguard::monitor {

using TimeNs = std::int64_t;  // ns; one clock for all times given to one Monitor

inline constexpr std::size_t kRateSamples = 32;
inline constexpr std::size_t kMaxMuxValuesPerMessage = 256;
inline constexpr std::size_t kMaxUnknownIds = 64;

struct GridLayout {
  enum class Discovery { canopen, name_pattern };
  Discovery discovery = Discovery::canopen;
  std::vector<std::uint32_t> pdo_bases = {0x180, 0x280, 0x380, 0x480, 0x190, 0x290, 0x390, 0x490};
  std::string name_pattern = "BMU{id}_";                 // {id}: the module number
  std::string cell_voltage_signal = "Cell_{n}_Voltage";  // {n}: the cell number
  std::string temperature_signal = "CMA_Temp{n}";        // {n}: the sensor number
  std::string module_voltage_signal = "CMA_Voltage";
  std::string current_signal = "CMA_Current";
  std::string soc_signal = "SOC";
  std::string min_temperature_signal = "CMA_Min_Temp";
  std::string max_temperature_signal = "CMA_Max_Temp";
  int max_cells = 64;  // cells beyond this are not shown in the grid
};

struct MonitorOptions {
  std::vector<std::string> filters;  // globs; empty: everything
  TimeNs rate_window_ns = 2'000'000'000;
  GridLayout layout;
};

struct SignalView {
  std::string name;
  std::string unit;
  double value = 0;
  std::string choice;  // the value table's text for the raw value, if any
  int decimals = 0;    // digits after the point that the signal's scale gives (0.01 -> 2)
};

struct MessageView {
  std::string name;
  std::uint32_t id = 0;
  bool extended = false;
  // Multiplexed messages: one view per value of the top-level multiplexer.
  std::string multiplexer;  // its signal name; empty if the message is not multiplexed
  std::uint64_t mux_value = 0;
  std::uint64_t frames = 0;  // frames of this message (and mux value) so far
  double rate_hz = 0;
  std::optional<TimeNs> age_ns;     // since the latest frame; none if none
  std::vector<SignalView> signals;  // the latest frame's signals (filtered)
  std::string error;                // why the latest frame did not decode, if it did not
};

struct ModuleRow {
  int module = 0;
  std::vector<std::optional<double>> cell_voltages;  // [0] = cell 1; none: not yet seen
  std::vector<std::optional<double>> temperatures;   // [0] = sensor 1
  std::optional<double> voltage, current, soc, min_temperature, max_temperature;
  std::optional<TimeNs> age_ns;  // since the module's latest frame
};

struct UnknownId {
  std::uint32_t id = 0;
  bool extended = false;
  std::uint64_t frames = 0;
  double rate_hz = 0;
};

struct Snapshot {
  TimeNs time_ns = 0;                               // the time the snapshot is for
  std::uint64_t frames = 0;                         // every frame seen
  std::uint64_t unknown_frames = 0;                 // ids the DBC does not define
  std::uint64_t failed_frames = 0;                  // too short, bad multiplexer value
  std::uint64_t error_frames = 0;                   // CAN error frames
  std::uint64_t other_unknown_frames = 0;           // unknown frames beyond kMaxUnknownIds distinct ids
  double rate_hz = 0;                               // all frames
  std::vector<MessageView> messages;                // DBC order, then mux value; only messages seen
  std::vector<ModuleRow> modules;                   // ascending; only modules seen
  int grid_cells = 0;                               // highest cell number of the grid's modules
  int grid_temperatures = 0;                        // highest temperature sensor number
  std::vector<UnknownId> unknown;                   // ascending id
  std::string cell_voltage_unit, temperature_unit;  // from the DBC
  int cell_voltage_decimals = 3;                    // from the cell signals' scale
};

// Matches `pattern` with "{id}"/"{n}" style placeholder `placeholder` standing for a decimal number
// against the whole of `text` (or its prefix if `prefix_only`); the number, or 0.
int match_numbered(std::string_view pattern, std::string_view placeholder, std::string_view text,
                   bool prefix_only);

class Monitor {
 public:
  // The codec must outlive the Monitor.
  Monitor(const dbc::DatabaseCodec& codec, MonitorOptions options);

  // One frame, arrived at `at_ns`.
  void on_frame(const can::Frame& frame, TimeNs at_ns);
  Snapshot snapshot(TimeNs now_ns) const;

  // True if a glob of the options matches `message` (or any of its signals).
  bool shows(const dbc::Message& message) const;

 private:
  struct Arrivals {
    std::array<TimeNs, kRateSamples> times{};
    std::size_t count = 0;  // total arrivals
    void add(TimeNs t) { times[count++ % kRateSamples] = t; }
    double rate(TimeNs now, TimeNs window) const;
    std::optional<TimeNs> latest() const {
      if (count == 0) return std::nullopt;
      return times[(count - 1) % kRateSamples];
    }
  };
  struct Entry {  // one message (and mux value)
    Arrivals arrivals;
    std::vector<double> values;
    std::vector<std::uint64_t> raw;
    dbc::PresenceMask present;
    std::string error;
  };
  enum class Role : std::uint8_t { none, cell, temperature, voltage, current, soc, min_temp, max_temp };
  struct SignalRole {
    Role role = Role::none;
    int index = 0;  // cell or sensor number
  };
  struct MessageInfo {
    const dbc::MessageCodec* codec = nullptr;
    std::size_t order = 0;       // position in the DBC
    int module = 0;              // 0: no module
    int multiplexer_index = -1;  // the top-level multiplexer signal, if any
    std::vector<bool> shown;     // per signal, after the filters
    bool shown_any = false;
    std::vector<SignalRole> roles;           // per signal
    std::vector<int> decimals;               // per signal
    std::map<std::uint64_t, Entry> entries;  // by mux value (0 if not multiplexed)
    std::uint64_t mux_overflow = 0;
  };
  struct ModuleState {
    std::vector<std::optional<double>> cells, temperatures;
    std::optional<double> voltage, current, soc, min_temp, max_temp;
    std::optional<TimeNs> latest;
  };

  MessageInfo* info_for(const can::Frame& frame);
  void update_module(const MessageInfo& info, const Entry& entry, TimeNs at_ns);
  bool glob_matches(std::string_view text) const;

  const dbc::DatabaseCodec& codec_;
  MonitorOptions options_;
  std::vector<MessageInfo> infos_;  // parallel to the DBC's messages
  std::map<int, ModuleState> modules_;
  std::map<std::uint64_t, Arrivals> unknown_;  // key: extended << 32 | id
  // All frames: counts per 100 ms (bursts, as after a SYNC, make arrival spacing meaningless).
  std::deque<std::pair<TimeNs, std::uint64_t>> buckets_;
  std::optional<TimeNs> first_at_;
  double total_rate(TimeNs now) const;
  std::uint64_t frames_ = 0, unknown_frames_ = 0, failed_frames_ = 0, error_frames_ = 0, other_unknown_ = 0;
  std::string cell_unit_, temperature_unit_;
  int cell_decimals_ = 3;
};

// Digits after the point for a signal of this scale: 0.01 -> 2, 0.5 -> 1, 1 -> 0 (at most 6).
int decimals_for_scale(double scale);

}  // namespace cellguard::monitor
