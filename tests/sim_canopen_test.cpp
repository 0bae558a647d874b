// The simulated modules on CAN (issue 3, items 2 and 8): SYNC -> 8 PDOs per present module,
// decoded back with our codec to the model's values; SDO server; EMCY; module-level faults.
#include <gtest/gtest.h>

#include <asio.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string>

#include "can/bus.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "sim/canopen_modules.h"
#include "sim/pack_model.h"

namespace cellguard::sim {
namespace {

std::string source_dir() {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  return dir ? dir : CELLGUARD_TEST_SOURCE_DIR;
}

std::shared_ptr<const dbc::DatabaseCodec> load_codec(const std::string& path) {
  auto parsed = dbc::load_dbc(path);
  EXPECT_TRUE(parsed.ok()) << (parsed.ok() ? "" : parsed.error().message);
  if (!parsed.ok()) return nullptr;
  return std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
}

std::shared_ptr<const dbc::DatabaseCodec> project_codec() {
  return load_codec(source_dir() + "/data/cellguard-rig.dbc");
}

// Decodes a frame by signal name.
std::map<std::string, double> decode(const dbc::DatabaseCodec& codec, const can::Frame& frame) {
  std::map<std::string, double> values;
  const dbc::MessageCodec* message = codec.find(frame.id, frame.extended);
  if (message == nullptr) return values;
  std::vector<double> out(message->signal_count());
  dbc::PresenceMask present(message->signal_count());
  if (message->decode(frame.payload(), out.data(), present) != dbc::DecodeStatus::ok) return values;
  for (std::size_t i = 0; i < out.size(); ++i)
    if (present.test(i)) values[message->message().signals[i].name] = out[i];
  return values;
}

struct Rig {
  explicit Rig(std::shared_ptr<const dbc::DatabaseCodec> c, PackConfig config = {})
      : codec(std::move(c)), pack(std::move(config)) {
    auto created = CanopenModules::create(codec, pack);
    EXPECT_TRUE(created.ok()) << (created.ok() ? "" : created.error().message);
    if (created.ok()) modules = std::move(created.value());
  }
  std::vector<can::Frame> send(const can::Frame& frame) {
    std::vector<can::Frame> out;
    modules->on_frame(frame, pack, out);
    return out;
  }
  std::shared_ptr<const dbc::DatabaseCodec> codec;
  PackModel pack;
  std::unique_ptr<CanopenModules> modules;
};

TEST(SimCanopen, TheProjectDbcParsesCleanlyAndDescribesFifteenModules) {
  auto parsed = dbc::load_dbc(source_dir() + "/data/cellguard-rig.dbc");
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_TRUE(parsed->warnings.empty());
  for (const dbc::Problem& problem : dbc::check_dbc(parsed->database))
    EXPECT_NE(problem.severity, dbc::Problem::Severity::error) << problem.message;
  const dbc::Database& db = parsed->database;
  for (int n = 1; n <= 15; ++n)
    for (std::uint32_t base : kPdoBase)
      EXPECT_NE(db.find_message(base + static_cast<std::uint32_t>(n), false), nullptr);
  const dbc::Message* pdo1 = db.find_message("BMU07_pdo1");
  ASSERT_NE(pdo1, nullptr);
  EXPECT_EQ(pdo1->id, 0x187u);
  const dbc::Signal* voltage = pdo1->find_signal("CMA_Voltage");
  ASSERT_NE(voltage, nullptr);
  EXPECT_EQ(voltage->start_bit, 16u);
  EXPECT_EQ(voltage->scale, 0.01);
}

TEST(SimCanopen, SyncMakesEveryPresentModuleSendItsEightPdos) {
  PackConfig config;
  config.module_ids = {1, 2, 5};
  Rig rig(project_codec(), config);
  ASSERT_TRUE(rig.modules);
  std::vector<can::Frame> out = rig.send(make_sync(0));
  ASSERT_EQ(out.size(), 24u);
  std::set<std::uint32_t> ids;
  for (const can::Frame& f : out) {
    ids.insert(f.id);
    EXPECT_EQ(f.size, 8);
  }
  for (int n : {1, 2, 5})
    for (std::uint32_t base : kPdoBase)
      EXPECT_TRUE(ids.count(base + static_cast<std::uint32_t>(n))) << base + n;
}

TEST(SimCanopen, PdosDecodeToTheModelsValues) {
  Rig rig(project_codec());
  ASSERT_TRUE(rig.modules);
  rig.pack.set_positive_contactor(true);
  rig.pack.set_negative_contactor(true);
  rig.pack.set_inverter_current_a(-42.5);
  rig.pack.step(60);
  std::map<std::string, double> v;
  for (const can::Frame& f : rig.send(make_sync(7)))
    if ((f.id & 0x0F) == 3)
      for (auto& [name, value] : decode(*rig.codec, f)) v[name] = value;
  const ModuleState& m = *rig.pack.module(3);
  ASSERT_EQ(v.size(), 6u + 4u + 8u + 6u + 2u + 7u + 8u +
                          6u);  // all signals of pdo1..8 (the node id is the COB-ID's low nibble)
  EXPECT_NEAR(v["CMA_Current"], -42.5, 0.05);
  EXPECT_NEAR(v["CMA_Voltage"], m.voltage_v(), 0.006);
  EXPECT_NEAR(v["CMA_Voltage"], 47.3, 0.8);
  EXPECT_NEAR(v["Cell_1_Voltage"], m.cells[0].voltage_v, 0.006);
  EXPECT_NEAR(v["Cell_13_Voltage"], 2.2, 1e-9);  // unpopulated: raw 0 as on the rig
  EXPECT_NEAR(v["Cell_14_Voltage"], 2.2, 1e-9);
  EXPECT_NEAR(v["Min_Cell_Voltage"], m.min_cell_v(), 0.006);
  EXPECT_NEAR(v["Max_Cell_Voltage"], m.max_cell_v(), 0.006);
  EXPECT_NEAR(v["CMA_Temp4"], m.sensor_c(3), 0.51);
  EXPECT_NEAR(v["CMA_Max_Temp"], m.max_temperature_c(), 0.51);
  EXPECT_NEAR(v["SOC"], 100 * m.soc(), 0.26);
  EXPECT_NEAR(v["Cell05_SOC"], 100 * m.cells[4].soc, 0.26);
  EXPECT_EQ(v["Cell13_SOC"], 0.0);
  EXPECT_EQ(v["SOH"], 98.0);
  EXPECT_NEAR(v["Charge_Ah_from_BMU"], 42.5 * 60, 1.0);  // ampere-seconds, as the rig counts
  EXPECT_EQ(v["Discharge_Ah_from_BMU"], 0.0);
}

TEST(SimCanopen, TheRigsOwnDbcDrivesTheModulesToo) {
  // The rig's original file: CELLGUARD_SEED_DIR (set by CI), else shared/ beside the checkout.
  const char* seed_dir = std::getenv("CELLGUARD_SEED_DIR");
  const std::string rig_dbc =
      (seed_dir != nullptr ? std::string(seed_dir) : source_dir() + "/../shared/seed") +
      "/Goodwood_15BMUs_IFSpecV3_Node.dbc";
  if (!std::filesystem::exists(rig_dbc)) GTEST_SKIP() << "no " << rig_dbc;
  Rig rig(load_codec(rig_dbc));
  ASSERT_TRUE(rig.modules);
  std::vector<can::Frame> out = rig.send(make_sync(0));
  ASSERT_EQ(out.size(), 64u);
  for (const can::Frame& f : out) {
    if (f.id != 0x181) continue;
    auto v = decode(*rig.codec, f);
    EXPECT_NEAR(v["CMA_Voltage"], rig.pack.module(1)->voltage_v(), 0.006);
  }
}

TEST(SimCanopen, TheRigsStartUpSdoDownloadIsAcknowledged) {
  Rig rig(project_codec());
  can::Frame request;
  request.id = 0x604;
  const std::uint8_t bytes[8] = {0x2F, 0x05, 0x18, 0x01, 0x00, 0x00, 0x00, 0x00};  // seed-rig.md
  request.set_payload(bytes);
  std::vector<can::Frame> out = rig.send(request);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 0x584u);
  const std::uint8_t expected[8] = {0x60, 0x05, 0x18, 0x01, 0, 0, 0, 0};
  EXPECT_EQ(std::vector<std::uint8_t>(out[0].payload().begin(), out[0].payload().end()),
            std::vector<std::uint8_t>(expected, expected + 8));
  ASSERT_NE(rig.modules->sdo_value(4, 0x1805, 1), nullptr);
  EXPECT_EQ(*rig.modules->sdo_value(4, 0x1805, 1), 0u);
  auto decoded = decode(*rig.codec, out[0]);
  EXPECT_EQ(decoded["SDO_CMD"], 3.0);
  EXPECT_EQ(decoded["SDO_Index"], 0x1805);
}

TEST(SimCanopen, SdoUploadsAnswerExpeditedAndUnknownObjectsAbort) {
  Rig rig(project_codec());
  std::vector<can::Frame> out = rig.send(make_sdo_upload_request(6, 0x1018, 4));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 0x586u);
  EXPECT_EQ(out[0].data[0], 0x43);
  EXPECT_EQ(out[0].data[4], 6);  // serial number = node id
  out = rig.send(make_sdo_upload_request(6, 0x1801, 1));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data[4] | out[0].data[5] << 8, 0x286);  // TPDO2 COB-ID
  out = rig.send(make_sdo_upload_request(6, 0x2345, 0));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data[0], 0x80);
  EXPECT_EQ(out[0].data[4] | out[0].data[5] << 8 | out[0].data[6] << 16 | out[0].data[7] << 24, 0x06020000);
  out = rig.send(make_sdo_download(6, 0x1000, 0, 5, 4));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].data[0], 0x80);
  EXPECT_TRUE(rig.send(make_sdo_upload_request(9, 0x1018, 4)).empty());  // absent node: silence
}

TEST(SimCanopen, ASilentModuleAnswersNothing) {
  Rig rig(project_codec());
  ASSERT_TRUE(rig.modules->set_faults(2, {.silent = true}));
  std::vector<can::Frame> out = rig.send(make_sync(0));
  EXPECT_EQ(out.size(), 56u);
  for (const can::Frame& f : out) EXPECT_NE(f.id & 0x0F, 2u);
  EXPECT_TRUE(rig.send(make_sdo_upload_request(2, 0x1018, 4)).empty());
  rig.modules->clear_faults();
  EXPECT_EQ(rig.send(make_sync(0)).size(), 64u);
}

TEST(SimCanopen, AFrozenModuleRepeatsItsLastPayloads) {
  Rig rig(project_codec());
  std::vector<can::Frame> before = rig.send(make_sync(0));
  ASSERT_TRUE(rig.modules->set_faults(1, {.frozen = true}));
  rig.pack.set_positive_contactor(true);
  rig.pack.set_negative_contactor(true);
  rig.pack.set_inverter_current_a(100);
  rig.pack.step(600);
  std::vector<can::Frame> after = rig.send(make_sync(1));
  ASSERT_EQ(before.size(), after.size());
  for (std::size_t i = 0; i < before.size(); ++i) {
    const bool same =
        before[i].payload().size() == after[i].payload().size() &&
        std::equal(before[i].payload().begin(), before[i].payload().end(), after[i].payload().begin());
    if ((before[i].id & 0x0F) == 1) {
      EXPECT_TRUE(same) << std::hex << before[i].id;
    }
    if (before[i].id == 0x182) {
      EXPECT_FALSE(same);
    }
  }
}

TEST(SimCanopen, TruncatedAndGarbagePdosReachTheBus) {
  Rig rig(project_codec());
  ASSERT_TRUE(rig.modules->set_faults(3, {.truncated = true}));
  ASSERT_TRUE(rig.modules->set_faults(4, {.garbage = true}));
  std::vector<can::Frame> first = rig.send(make_sync(0));
  std::vector<can::Frame> second = rig.send(make_sync(1));
  int garbage_changed = 0;
  for (std::size_t i = 0; i < first.size(); ++i) {
    const can::Frame& f = first[i];
    if ((f.id & 0x0F) == 3) {
      EXPECT_EQ(f.size, 3);
      EXPECT_EQ(decode(*rig.codec, f).size(), 0u);  // too short for the codec
    }
    if ((f.id & 0x0F) == 4 && std::memcmp(f.data.data(), second[i].data.data(), 8) != 0) ++garbage_changed;
  }
  EXPECT_GE(garbage_changed, 7);
}

TEST(SimCanopen, AnInternalFaultRaisesAnEmcyAndItsEndAnErrorReset) {
  Rig rig(project_codec());
  std::vector<can::Frame> out;
  rig.modules->append_emergencies(rig.pack, out);
  EXPECT_TRUE(out.empty());
  ASSERT_TRUE(rig.pack.drift_cell(5, 3, 0.05, 4.3));
  rig.pack.step(20);
  rig.modules->append_emergencies(rig.pack, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].id, 0x085u);
  auto v = decode(*rig.codec, out[0]);
  EXPECT_EQ(v["EMCY_Error_Code"], 0x3210);
  EXPECT_EQ(static_cast<int>(v["EMCY_CMA_Status"]) & kStatusCellOverVoltage, kStatusCellOverVoltage);
  out.clear();
  rig.modules->append_emergencies(rig.pack, out);
  EXPECT_TRUE(out.empty());  // once per change
  rig.pack.clear_faults();
  rig.modules->append_emergencies(rig.pack, out);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(decode(*rig.codec, out[0])["EMCY_Error_Code"], 0.0);
}

// The same through a real in-process bus: a controller endpoint sends SYNC and the startup SDO,
// the modules' endpoint answers; the controller waits for the frames (no sleeps).
TEST(SimCanopen, ModulesAnswerSyncAndSdoOverAnInProcessBus) {
  Rig rig(project_codec());
  asio::io_context io;
  auto modules_bus = can::open_bus(io, "inproc:sim-canopen-test");
  auto controller = can::open_bus(io, "inproc:sim-canopen-test");
  ASSERT_TRUE(modules_bus.ok() && controller.ok());
  std::vector<can::Frame> out;
  (*modules_bus)->on_receive([&](const can::Frame& frame) {
    out.clear();
    rig.modules->on_frame(frame, rig.pack, out);
    for (const can::Frame& f : out) ASSERT_TRUE((*modules_bus)->send(f).ok());
  });
  std::map<std::uint32_t, int> received;
  (*controller)->on_receive([&](const can::Frame& frame) {
    ++received[frame.id];
    if (received.size() == 65) io.stop();
  });
  (*controller)->on_ready([&] {
    ASSERT_TRUE((*controller)->send(make_sync(1)).ok());
    can::Frame sdo;
    sdo.id = 0x601;
    const std::uint8_t bytes[8] = {0x2F, 0x05, 0x18, 0x01, 0, 0, 0, 0};
    sdo.set_payload(bytes);
    ASSERT_TRUE((*controller)->send(sdo).ok());
  });
  asio::steady_timer give_up(io, std::chrono::seconds(10));
  give_up.async_wait([&](asio::error_code ec) {
    if (!ec) io.stop();
  });
  io.run();
  EXPECT_EQ(received.size(), 65u);  // 8 modules x 8 PDOs + one SDO response
  EXPECT_EQ(received[0x581], 1);
  for (int n = 1; n <= 8; ++n)
    for (std::uint32_t base : kPdoBase) EXPECT_EQ(received[base + static_cast<std::uint32_t>(n)], 1);
}

TEST(SimCanopen, ADbcWithoutTheModulesPdosIsRefusedByName) {
  dbc::Database db;
  auto codec = std::make_shared<const dbc::DatabaseCodec>(db);
  PackModel pack(PackConfig{});
  auto created = CanopenModules::create(codec, pack);
  ASSERT_FALSE(created.ok());
  EXPECT_NE(created.error().message.find("BMU01_pdo1"), std::string::npos);
}

}  // namespace
}  // namespace cellguard::sim
