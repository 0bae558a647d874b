// CANopen facts of CiA 301 v4.2 (the section in each test's comment) against the pure library.
#include "canopen/canopen.h"

#include <gtest/gtest.h>

#include <vector>

namespace cellguard::canopen {
namespace {

can::Frame frame(std::uint32_t id, std::vector<std::uint8_t> bytes) {
  can::Frame f;
  f.id = id;
  f.set_payload(bytes);
  return f;
}
std::vector<std::uint8_t> bytes_of(const can::Frame& f) { return {f.payload().begin(), f.payload().end()}; }

// ---- COB-IDs --------------------------------------------------------------------------------------

// §7.3.5, table 73 (pre-defined connection set): function code in bits 10..7, node id in 6..0.
TEST(CanopenCobId, PredefinedConnectionSet) {
  EXPECT_EQ(classify(0x000), (CobId{Function::nmt, 0}));
  EXPECT_EQ(classify(0x080), (CobId{Function::sync, 0}));
  EXPECT_EQ(classify(0x081), (CobId{Function::emcy, 1}));
  EXPECT_EQ(classify(0x0FF), (CobId{Function::emcy, 127}));
  EXPECT_EQ(classify(0x100), (CobId{Function::time, 0}));
  EXPECT_EQ(classify(0x183), (CobId{Function::tpdo1, 3}));
  EXPECT_EQ(classify(0x203), (CobId{Function::rpdo1, 3}));
  EXPECT_EQ(classify(0x283), (CobId{Function::tpdo2, 3}));
  EXPECT_EQ(classify(0x383), (CobId{Function::tpdo3, 3}));
  EXPECT_EQ(classify(0x483), (CobId{Function::tpdo4, 3}));
  EXPECT_EQ(classify(0x503), (CobId{Function::rpdo4, 3}));
  EXPECT_EQ(classify(0x585), (CobId{Function::sdo_response, 5}));
  EXPECT_EQ(classify(0x605), (CobId{Function::sdo_request, 5}));
  EXPECT_EQ(classify(0x705), (CobId{Function::heartbeat, 5}));
}

// Node 0 exists only for the broadcast objects; extended ids and the unassigned ranges map to nothing.
TEST(CanopenCobId, UnassignedIds) {
  EXPECT_FALSE(classify(0x180));
  EXPECT_FALSE(classify(0x580));
  EXPECT_FALSE(classify(0x101));  // TIME has no node id
  EXPECT_FALSE(classify(0x001));  // NMT: node 0 only
  EXPECT_FALSE(classify(0x681));  // 0x680..0x6FF: not in the pre-defined set
  EXPECT_FALSE(classify(0x7E5));  // LSS
  EXPECT_FALSE(classify(0x185, true));
  EXPECT_FALSE(classify(0x800));
}

TEST(CanopenCobId, RoundTripsEveryNodeAndFunction) {
  for (Function f : {Function::emcy, Function::tpdo1, Function::rpdo1, Function::tpdo2, Function::rpdo2,
                     Function::tpdo3, Function::rpdo3, Function::tpdo4, Function::rpdo4,
                     Function::sdo_response, Function::sdo_request, Function::heartbeat}) {
    for (int node = 1; node <= kMaxNodeId; ++node) {
      const auto back = classify(cob_id(f, node));
      ASSERT_TRUE(back) << to_string(f) << " node " << node;
      EXPECT_EQ(*back, (CobId{f, node}));
    }
  }
  EXPECT_EQ(cob_id(Function::sync, 9), 0x080u);
}

// ---- SYNC -----------------------------------------------------------------------------------------

// §7.2.5.2.1: without a counter the SYNC has DLC 0; with one (object 1019h = overflow value) the
// counter starts at 1 and returns to 1 after reaching the overflow value.
TEST(CanopenSync, CounterRunsOneToOverflowValue) {
  SyncProducer plain({0x080, 100, 0});
  EXPECT_EQ(plain.produce().size, 0);
  SyncProducer counted({0x080, 100, 3});
  std::vector<int> counters;
  for (int i = 0; i < 7; ++i) {
    const can::Frame f = counted.produce();
    ASSERT_EQ(f.size, 1);
    EXPECT_EQ(f.id, 0x080u);
    counters.push_back(f.data[0]);
  }
  EXPECT_EQ(counters, (std::vector<int>{1, 2, 3, 1, 2, 3, 1}));
  EXPECT_EQ(counted.counter(), 1);
}

// The largest overflow value is 240 (object 1019h: 2..240; 241..255 reserved).
TEST(CanopenSync, OverflowAt240) {
  SyncProducer p({0x080, 1, 255});
  for (int i = 0; i < 240; ++i) p.produce();
  EXPECT_EQ(p.counter(), 240);
  EXPECT_EQ(p.produce().data[0], 1);
}

// Communication cycle period (object 1006h): fixed rate, and one missed period skips, not bursts.
TEST(CanopenSync, FixedRateSkipsWhenBehind) {
  SyncProducer p({0x080, 100, 0});
  p.start(1000);
  EXPECT_EQ(p.due_ns(), 1000);
  EXPECT_EQ(p.advance(1030), 1100);  // sent 30 ns late: the next is still due on the grid
  EXPECT_EQ(p.advance(1150), 1200);
  EXPECT_EQ(p.advance(1750), 1850);  // far behind: one period from now
}

// ---- SDO ------------------------------------------------------------------------------------------

// §7.2.4.3.17, table 22: abort codes by name and with a text for people.
TEST(CanopenSdo, AbortCodesByName) {
  EXPECT_EQ(sdo_abort_name(0x06020000), "object_missing");
  EXPECT_EQ(sdo_abort_name(0x05040000), "timed_out");
  EXPECT_EQ(sdo_abort_name(0x06090011), "subindex_missing");
  EXPECT_EQ(sdo_abort_name(0x08000000), "general_error");
  EXPECT_EQ(sdo_abort_name(0x12345678), "");
  EXPECT_EQ(sdo_abort_text(0x06010002), "attempt to write a read-only object (SDO abort 0x06010002)");
  EXPECT_EQ(sdo_abort_text(0x12345678), "unknown SDO abort code 0x12345678");
}

// §7.2.4.3.3: expedited download with size indicated: 0x2F (1 byte) .. 0x23 (4 bytes), index LE.
TEST(CanopenSdo, ExpeditedDownloadBytes) {
  const std::uint8_t one[] = {0x01};
  EXPECT_EQ(bytes_of(sdo_expedited_download(5, 0x1805, 1, one)),
            (std::vector<std::uint8_t>{0x2F, 0x05, 0x18, 0x01, 0x01, 0, 0, 0}));
  const std::uint8_t four[] = {0x11, 0x22, 0x33, 0x44};
  const can::Frame f = sdo_expedited_download(5, 0x2000, 2, four);
  EXPECT_EQ(f.id, 0x605u);
  EXPECT_EQ(bytes_of(f), (std::vector<std::uint8_t>{0x23, 0x00, 0x20, 0x02, 0x11, 0x22, 0x33, 0x44}));
}

// §7.2.4.3.6: expedited upload response 0x4B = 2 bytes (n = 2 unused), data LE from byte 4.
TEST(CanopenSdo, ExpeditedUpload) {
  SdoClient client(3, 1000);
  auto request = client.upload(0x1017, 0, 0);
  ASSERT_TRUE(request);
  EXPECT_EQ(request->id, 0x603u);
  EXPECT_EQ(bytes_of(*request), (std::vector<std::uint8_t>{0x40, 0x17, 0x10, 0x00, 0, 0, 0, 0}));
  const auto step = client.on_frame(frame(0x583, {0x4B, 0x17, 0x10, 0x00, 0xE8, 0x03, 0xAA, 0xBB}), 10);
  ASSERT_TRUE(step.done);
  EXPECT_FALSE(step.send);
  EXPECT_TRUE(step.done->ok());
  EXPECT_TRUE(step.done->upload);
  EXPECT_EQ(step.done->data, (std::vector<std::uint8_t>{0xE8, 0x03}));
  EXPECT_FALSE(client.busy());
}

// §7.2.4.3.6-.7: segmented upload: size announced (e = 0, s = 1), segments of 7 - n bytes, the
// request's toggle bit alternates starting at 0, c = 1 ends.
TEST(CanopenSdo, SegmentedUpload) {
  SdoClient client(4, 1000);
  ASSERT_TRUE(client.upload(0x1008, 0, 0));
  auto step = client.on_frame(frame(0x584, {0x41, 0x08, 0x10, 0x00, 10, 0, 0, 0}), 1);
  ASSERT_TRUE(step.send);
  EXPECT_EQ(bytes_of(*step.send), (std::vector<std::uint8_t>{0x60, 0, 0, 0, 0, 0, 0, 0}));
  step = client.on_frame(frame(0x584, {0x00, 'c', 'e', 'l', 'l', 'g', 'u', 'a'}), 2);
  ASSERT_TRUE(step.send);
  EXPECT_EQ(step.send->data[0], 0x70);  // toggle 1
  // Last segment: t = 1, n = 4 (3 bytes), c = 1 -> 0x10 | 4 << 1 | 1 = 0x19.
  step = client.on_frame(frame(0x584, {0x19, 'r', 'd', '!', 0, 0, 0, 0}), 3);
  ASSERT_TRUE(step.done);
  EXPECT_TRUE(step.done->ok());
  EXPECT_EQ(std::string(step.done->data.begin(), step.done->data.end()), "cellguard!");
}

// §7.2.4.3.7: a segment whose toggle bit did not alternate aborts with 0x05030000.
TEST(CanopenSdo, ToggleErrorAborts) {
  SdoClient client(4, 1000);
  ASSERT_TRUE(client.upload(0x1008, 0, 0));
  ASSERT_TRUE(client.on_frame(frame(0x584, {0x41, 0x08, 0x10, 0x00, 14, 0, 0, 0}), 1).send);
  ASSERT_TRUE(client.on_frame(frame(0x584, {0x00, 1, 2, 3, 4, 5, 6, 7}), 2).send);
  const auto step = client.on_frame(frame(0x584, {0x00, 1, 2, 3, 4, 5, 6, 7}), 3);  // toggle 0 again
  ASSERT_TRUE(step.done);
  EXPECT_EQ(step.done->abort_code, 0x05030000u);
  EXPECT_FALSE(step.done->aborted_by_server);
  ASSERT_TRUE(step.send);
  EXPECT_EQ(bytes_of(*step.send),
            (std::vector<std::uint8_t>{0x80, 0x08, 0x10, 0x00, 0x00, 0x00, 0x03, 0x05}));
}

// §7.2.4.3.3-.4: segmented download: initiate with size (0x21), then segments with toggle, n and c.
TEST(CanopenSdo, SegmentedDownload) {
  SdoClient client(2, 1000);
  const std::vector<std::uint8_t> data = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  auto first = client.download(0x2001, 0, data, 0);
  ASSERT_TRUE(first);
  EXPECT_EQ(bytes_of(*first), (std::vector<std::uint8_t>{0x21, 0x01, 0x20, 0x00, 9, 0, 0, 0}));
  auto step = client.on_frame(frame(0x582, {0x60, 0x01, 0x20, 0x00, 0, 0, 0, 0}), 1);
  ASSERT_TRUE(step.send);
  EXPECT_EQ(bytes_of(*step.send), (std::vector<std::uint8_t>{0x00, 1, 2, 3, 4, 5, 6, 7}));
  step = client.on_frame(frame(0x582, {0x20, 0, 0, 0, 0, 0, 0, 0}), 2);  // scs 1, t = 0
  ASSERT_TRUE(step.send);
  // t = 1, n = 5 (2 bytes), c = 1: 0x10 | 0x0A | 0x01 = 0x1B.
  EXPECT_EQ(bytes_of(*step.send), (std::vector<std::uint8_t>{0x1B, 8, 9, 0, 0, 0, 0, 0}));
  step = client.on_frame(frame(0x582, {0x30, 0, 0, 0, 0, 0, 0, 0}), 3);
  ASSERT_TRUE(step.done);
  EXPECT_TRUE(step.done->ok());
  EXPECT_FALSE(step.done->upload);
}

TEST(CanopenSdo, ExpeditedDownloadDone) {
  SdoClient client(2, 1000);
  const std::uint8_t value[] = {0x00};
  ASSERT_TRUE(client.download(0x1805, 1, value, 0));
  EXPECT_FALSE(client.download(0x1805, 2, value, 0)) << "one transfer at a time";
  const auto step = client.on_frame(frame(0x582, {0x60, 0x05, 0x18, 0x01, 0, 0, 0, 0}), 1);
  ASSERT_TRUE(step.done);
  EXPECT_TRUE(step.done->ok());
}

// §7.2.4.3.17: the server's abort ends the transfer with its code; the client sends nothing back.
TEST(CanopenSdo, ServerAbort) {
  SdoClient client(6, 1000);
  ASSERT_TRUE(client.upload(0x6000, 0, 0));
  // Another node's response and an abort for another object are not this transfer's.
  EXPECT_FALSE(client.on_frame(frame(0x587, {0x80, 0x00, 0x60, 0x00, 0, 0, 2, 6}), 1).done);
  EXPECT_FALSE(client.on_frame(frame(0x586, {0x80, 0x01, 0x60, 0x00, 0, 0, 2, 6}), 1).done);
  const auto step = client.on_frame(frame(0x586, {0x80, 0x00, 0x60, 0x00, 0x00, 0x00, 0x02, 0x06}), 2);
  ASSERT_TRUE(step.done);
  EXPECT_FALSE(step.send);
  EXPECT_TRUE(step.done->aborted_by_server);
  EXPECT_EQ(sdo_abort_name(step.done->abort_code), "object_missing");
}

// §7.2.4.3.17: no answer within the timeout: the client aborts with 0x05040000.
TEST(CanopenSdo, TimeoutAborts) {
  SdoClient client(6, 1000);
  ASSERT_TRUE(client.upload(0x1000, 0, 500));
  EXPECT_FALSE(client.tick(1499).done);
  const auto step = client.tick(1500);
  ASSERT_TRUE(step.done);
  EXPECT_EQ(step.done->abort_code, 0x05040000u);
  ASSERT_TRUE(step.send);
  EXPECT_EQ(step.send->id, 0x606u);
  EXPECT_EQ(step.send->data[0], 0x80);
}

// §7.2.4.3: SDO frames are 8 bytes; block transfer (cs 5, 6) is not spoken.
TEST(CanopenSdo, DecodeRejectsMalformed) {
  const std::uint8_t shortened[] = {0x43, 0x00, 0x10};
  auto r = decode_sdo(shortened, SdoDirection::response);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("3 bytes, expected 8"), std::string::npos);
  const std::uint8_t block[] = {0xC0, 0, 0, 0, 0, 0, 0, 0};
  r = decode_sdo(block, SdoDirection::response);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("block transfer"), std::string::npos);
  const std::uint8_t unknown[] = {0xE0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(decode_sdo(unknown, SdoDirection::request));
}

// A segmented upload that sends more than it announced is aborted, not buffered.
TEST(CanopenSdo, UploadLongerThanAnnouncedAborts) {
  SdoClient client(1, 1000);
  ASSERT_TRUE(client.upload(0x1008, 0, 0));
  ASSERT_TRUE(client.on_frame(frame(0x581, {0x41, 0x08, 0x10, 0x00, 3, 0, 0, 0}), 1).send);
  const auto step = client.on_frame(frame(0x581, {0x00, 1, 2, 3, 4, 5, 6, 7}), 2);
  ASSERT_TRUE(step.done);
  EXPECT_EQ(sdo_abort_name(step.done->abort_code), "length_too_high");
}

// ---- EMCY -----------------------------------------------------------------------------------------

// §7.2.7.3.1: EMCY = error code (UNSIGNED16 LE), error register (object 1001h), 5 manufacturer bytes.
TEST(CanopenEmcy, DecodesCodeRegisterAndManufacturerBytes) {
  auto e = decode_emcy(frame(0x083, {0x10, 0x32, 0x05, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE}));
  ASSERT_TRUE(e) << e.error().message;
  EXPECT_EQ(e->node, 3);
  EXPECT_EQ(e->error_code, 0x3210);
  EXPECT_EQ(e->error_register, 0x05);
  EXPECT_TRUE(e->has(ErrorRegisterBit::generic));
  EXPECT_TRUE(e->has(ErrorRegisterBit::voltage));
  EXPECT_FALSE(e->has(ErrorRegisterBit::temperature));
  EXPECT_EQ(e->manufacturer, (std::array<std::uint8_t, 5>{0xAA, 0xBB, 0xCC, 0xDD, 0xEE}));
  EXPECT_EQ(describe(*e),
            "node 3: voltage inside the device (EMCY 0x3210; error register 0x05: generic, voltage)");
}

// §7.2.7.1, table 21: error code classes; 0000h is the error reset.
TEST(CanopenEmcy, ErrorCodeClasses) {
  EXPECT_EQ(emcy_class_text(0x0000), "error reset or no error");
  EXPECT_EQ(emcy_class_text(0x1000), "generic error");
  EXPECT_EQ(emcy_class_text(0x2310), "current, device output side");
  EXPECT_EQ(emcy_class_text(0x4210), "device temperature");
  EXPECT_EQ(emcy_class_text(0x5000), "device hardware");
  EXPECT_EQ(emcy_class_text(0x8130), "life guard error or heartbeat error");
  EXPECT_EQ(emcy_class_text(0x8140), "recovered from bus off");
  EXPECT_EQ(emcy_class_text(0x8199), "communication");
  EXPECT_EQ(emcy_class_text(0x9000), "external error");
  EXPECT_EQ(emcy_class_text(0xFF01), "device specific");
  auto reset = decode_emcy(frame(0x0FF, {0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_TRUE(reset);
  EXPECT_TRUE(reset->error_reset());
  EXPECT_EQ(reset->node, 127);
}

// §7.2.7.3.1: an EMCY has 8 bytes; 0x080 is SYNC, not an EMCY of node 0.
TEST(CanopenEmcy, RejectsWhatIsNoEmcy) {
  auto e = decode_emcy(frame(0x083, {0x10, 0x32}));
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "EMCY from node 3: 2 bytes, expected 8");
  e = decode_emcy(frame(0x080, {0, 0, 0, 0, 0, 0, 0, 0}));
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("not an EMCY"), std::string::npos);
}

}  // namespace
}  // namespace cellguard::canopen
