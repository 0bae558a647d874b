// libFuzzer target for the signal codec: arbitrary payloads decoded against a small fixed DBC that
// has every extraction case (Intel and Motorola at odd positions, signed, float, an unaligned
// 64-bit signal spanning 9 bytes of a 16-byte message, simple and cascaded multiplexing).
// Input: byte 0 picks the message, the rest is the payload. Checks: no crash or UB; decode,
// decode_exact and decode_raw agree on status and presence; encoding the decoded raw values into
// the payload leaves it unchanged (the active signals of each message do not share bits).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <span>
#include <vector>

#include "dbc/codec.h"
#include "dbc/dbc.h"

namespace {

constexpr const char* kDbc = R"(VERSION ""
NS_ :
BS_:
BU_: Rig
BO_ 385 Pdo: 8 Rig
 SG_ Current : 0|16@1- (0.1,0) [-3276.8|3276.7] "A" Rig
 SG_ Voltage : 23|16@0+ (0.01,0) [0|655.35] "V" Rig
 SG_ Odd : 35|5@1+ (3,-7) [0|0] "" Rig
 SG_ Flag : 47|1@0+ (1,0) [0|1] "" Rig
 SG_ Temp : 48|8@1- (1,0) [-128|127] "degC" Rig
BO_ 2147483905 Wide: 16 Rig
 SG_ Unaligned : 4|64@1+ (1,0) [0|0] "" Rig
 SG_ Moto : 75|52@0- (2,1) [0|0] "" Rig
BO_ 386 Floats: 12 Rig
 SG_ F32 : 0|32@1- (0.5,1) [0|0] "" Rig
 SG_ F64 : 39|64@0- (1,0) [0|0] "" Rig
BO_ 387 Muxed: 8 Rig
 SG_ MuxA M : 0|8@1+ (1,0) [0|0] "" Rig
 SG_ MuxB m2M : 8|8@1+ (1,0) [0|0] "" Rig
 SG_ A1 m1 : 8|16@1+ (1,0) [0|0] "" Rig
 SG_ B0 m0 : 16|16@0+ (1,0) [0|0] "" Rig
 SG_ B1 m1 : 24|32@1- (0.25,0) [0|0] "" Rig
SIG_VALTYPE_ 386 F32 : 1;
SIG_VALTYPE_ 386 F64 : 2;
VAL_ 387 MuxA 7 "spare" ;
SG_MUL_VAL_ 387 MuxB MuxA 2-2;
SG_MUL_VAL_ 387 A1 MuxA 1-1;
SG_MUL_VAL_ 387 B0 MuxB 0-0;
SG_MUL_VAL_ 387 B1 MuxB 1-3, 9-12;
)";

const cellguard::dbc::DatabaseCodec* codecs() {
  static const std::unique_ptr<cellguard::dbc::DatabaseCodec> loaded = [] {
    auto parsed = cellguard::dbc::parse_dbc(kDbc, "codec_fuzz.dbc");
    if (!parsed.ok()) std::abort();  // the fixed DBC must parse
    return std::make_unique<cellguard::dbc::DatabaseCodec>(std::move(parsed->database));
  }();
  return loaded.get();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cellguard::dbc;
  if (size == 0) return 0;
  const auto& messages = codecs()->database().messages;
  const Message& message = messages[data[0] % messages.size()];
  const MessageCodec* codec = codecs()->find(message.id, message.extended);
  if (codec == nullptr) std::abort();
  const std::span<const std::uint8_t> payload(data + 1, size - 1);

  const std::size_t n = codec->signal_count();
  std::vector<double> physical(n);
  std::vector<PhysicalValue> exact(n);
  std::vector<std::uint64_t> raw(n);
  PresenceMask present(n);
  PresenceMask exact_present(n);
  PresenceMask raw_present(n);
  const DecodeStatus status = codec->decode(payload, physical.data(), present);
  if (codec->decode_exact(payload, exact.data(), exact_present) != status) std::abort();
  if (codec->decode_raw(payload, raw.data(), raw_present) != status) std::abort();
  for (std::size_t i = 0; i != n; ++i) {
    if (present.test(i) != exact_present.test(i) || present.test(i) != raw_present.test(i)) std::abort();
  }
  (void)codec->describe(status, payload);
  if (status != DecodeStatus::ok) return 0;

  std::vector<std::uint8_t> copy(payload.begin(), payload.end());
  if (!codec->encode_raw(raw.data(), present, copy).ok()) std::abort();
  for (std::size_t i = 0; i != copy.size(); ++i) {
    if (copy[i] != payload[i]) std::abort();
  }
  // Physical values encode without failing (NaN aside); the result need not be the same bits.
  bool has_nan = false;
  for (std::size_t i = 0; i != n; ++i) has_nan = has_nan || (present.test(i) && physical[i] != physical[i]);
  if (!has_nan && !codec->encode(physical.data(), present, copy).ok()) std::abort();
  return 0;
}
