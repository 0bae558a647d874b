// The SunSpec points against the official model definitions, and the model-chain walk.
// CELLGUARD_SUNSPEC_DIR names the folder with the SunSpec Alliance's model_<id>.json files (CI sets
// it from ../shared/corpus/sunspec); without it the conformance tests are skipped.
#include "sunspec/sunspec.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <vector>

namespace cellguard::sunspec {
namespace {

using nlohmann::json;

std::optional<std::filesystem::path> definitions_dir() {
  const char* dir = std::getenv("CELLGUARD_SUNSPEC_DIR");
  if (dir == nullptr || *dir == '\0') return std::nullopt;
  return std::filesystem::path(dir);
}

struct OfficialPoint {
  std::uint16_t offset = 0;
  std::string type;
  std::uint16_t size = 0;
  std::string sf;
};

struct OfficialModel {
  std::uint16_t length = 0;  // L: the fixed points after ID and L
  std::map<std::string, OfficialPoint> points;
};

// Reads model_<id>.json: the top-level points in order give the offsets (ID is 0, L is 1).
OfficialModel load_model(const std::filesystem::path& dir, std::uint16_t id) {
  const auto path = dir / ("model_" + std::to_string(id) + ".json");
  std::ifstream in(path);
  EXPECT_TRUE(in) << "cannot open " << path;
  OfficialModel model;
  if (!in) return model;
  const json doc = json::parse(in);
  EXPECT_EQ(doc.at("id").get<int>(), id) << path;
  std::uint16_t offset = 0;
  for (const auto& p : doc.at("group").at("points")) {
    OfficialPoint point{offset, p.at("type").get<std::string>(), p.at("size").get<std::uint16_t>(),
                        p.value("sf", "")};
    model.points[p.at("name").get<std::string>()] = point;
    offset = static_cast<std::uint16_t>(offset + point.size);
  }
  model.length = static_cast<std::uint16_t>(offset - 2);
  return model;
}

TEST(SunSpecDefinitions, EveryPointMatchesTheOfficialModel) {
  const auto dir = definitions_dir();
  if (!dir)
    GTEST_SKIP() << "set CELLGUARD_SUNSPEC_DIR to the SunSpec model definitions (shared/corpus/sunspec)";
  std::map<std::uint16_t, OfficialModel> models;
  for (const Point& point : kPoints) {
    if (!models.contains(point.model)) models[point.model] = load_model(*dir, point.model);
    const OfficialModel& model = models[point.model];
    const std::string where = "model " + std::to_string(point.model) + " point " + std::string(point.name);
    const auto it = model.points.find(std::string(point.name));
    ASSERT_NE(it, model.points.end()) << where << ": not in the official definition";
    EXPECT_EQ(point.offset, it->second.offset) << where;
    EXPECT_EQ(to_string(point.type), it->second.type) << where;
    EXPECT_EQ(point.size, it->second.size) << where;
    EXPECT_EQ(point.scale_factor, it->second.sf) << where;
    if (!point.scale_factor.empty()) {
      // The scale factor is itself a point of the model, of type sunssf.
      const auto sf = model.points.find(std::string(point.scale_factor));
      ASSERT_NE(sf, model.points.end()) << where << ": scale factor " << point.scale_factor;
      EXPECT_EQ(sf->second.type, "sunssf") << where;
    }
  }
  EXPECT_EQ(models.size(), kModelLengths.size());
}

TEST(SunSpecDefinitions, ModelLengthsMatch) {
  const auto dir = definitions_dir();
  if (!dir)
    GTEST_SKIP() << "set CELLGUARD_SUNSPEC_DIR to the SunSpec model definitions (shared/corpus/sunspec)";
  for (const ModelLength& m : kModelLengths) {
    EXPECT_EQ(m.length, load_model(*dir, m.id).length) << "model " << m.id;
  }
}

TEST(SunSpecDefinitions, StateSymbolsMatch) {
  const auto dir = definitions_dir();
  if (!dir)
    GTEST_SKIP() << "set CELLGUARD_SUNSPEC_DIR to the SunSpec model definitions (shared/corpus/sunspec)";
  auto symbols = [&](std::uint16_t id, const std::string& point) {
    std::ifstream in(*dir / ("model_" + std::to_string(id) + ".json"));
    std::map<std::string, int> out;
    const json doc = json::parse(in);  // kept: the loop below iterates into it
    for (const auto& p : doc.at("group").at("points")) {
      if (p.at("name") != point) continue;
      for (const auto& s : p.at("symbols")) out[s.at("name").get<std::string>()] = s.at("value").get<int>();
    }
    return out;
  };
  const auto st = symbols(inverter::kId, "St");
  EXPECT_EQ(st.at("OFF"), static_cast<int>(inverter::State::off));
  EXPECT_EQ(st.at("MPPT"), static_cast<int>(inverter::State::mppt));
  EXPECT_EQ(st.at("FAULT"), static_cast<int>(inverter::State::fault));
  EXPECT_EQ(st.at("STANDBY"), static_cast<int>(inverter::State::standby));
  const auto set = symbols(battery::kId, "SetInvState");
  EXPECT_EQ(set.at("INVERTER_STOPPED"), static_cast<int>(battery::InverterCommand::stopped));
  EXPECT_EQ(set.at("INVERTER_STARTED"), static_cast<int>(battery::InverterCommand::started));
  const auto state = symbols(battery::kId, "State");
  EXPECT_EQ(state.at("CONNECTED"), static_cast<int>(battery::BankState::connected));
  EXPECT_EQ(state.at("FAULT"), static_cast<int>(battery::BankState::fault));
  const auto mod = symbols(storage::kId, "StorCtl_Mod");
  EXPECT_EQ(1 << mod.at("CHARGE"), storage::kChargeBit);
  EXPECT_EQ(1 << mod.at("DiSCHARGE"), storage::kDischargeBit);  // sic, the standard's spelling
}

// --- values ---

TEST(SunSpecValues, ScaleFactors) {
  EXPECT_DOUBLE_EQ(*scaled(PointType::uint16, 3523, static_cast<std::uint16_t>(-1)), 352.3);
  EXPECT_DOUBLE_EQ(
      *scaled(PointType::int16, static_cast<std::uint16_t>(-1234), static_cast<std::uint16_t>(-2)), -12.34);
  EXPECT_DOUBLE_EQ(*scaled(PointType::int16, 12, 3), 12000.0);
  EXPECT_FALSE(scaled(PointType::int16, 0x8000, 0));   // not implemented
  EXPECT_FALSE(scaled(PointType::uint16, 0xFFFF, 0));  // not implemented
  EXPECT_FALSE(scaled(PointType::uint16, 1, 0x8000));  // scale factor not implemented
  EXPECT_FALSE(scaled(PointType::uint16, 1, 11));      // outside −10..10
  EXPECT_EQ(*to_raw(PointType::int16, -12.34, static_cast<std::uint16_t>(-2)),
            static_cast<std::uint16_t>(-1234));
  EXPECT_EQ(*to_raw(PointType::int16, -1e9, 0), static_cast<std::uint16_t>(-32767));  // never 0x8000
  EXPECT_EQ(*to_raw(PointType::uint16, 1e9, 0), 65534);                               // never 0xFFFF
  EXPECT_FALSE(to_raw(PointType::uint16, std::nan(""), 0));
}

TEST(SunSpecValues, Strings) {
  std::uint16_t regs[4] = {};
  encode_string("cellguard", regs);
  EXPECT_EQ(regs[0], ('c' << 8) | 'e');
  EXPECT_EQ(decode_string(regs), "cellguar");  // 8 characters fit
  encode_string("ab", regs);
  EXPECT_EQ(decode_string(regs), "ab");
}

// --- the chain ---

std::vector<std::uint16_t> image_with(std::initializer_list<std::pair<std::uint16_t, std::uint16_t>> models) {
  std::vector<std::uint16_t> regs = {kMarkerHigh, kMarkerLow};
  for (const auto& [id, length] : models) {
    regs.push_back(id);
    regs.push_back(length);
    regs.resize(regs.size() + length, 0);
  }
  regs.push_back(kEndId);
  regs.push_back(0);
  return regs;
}

TEST(SunSpecChain, WalksTheModelsFromEachBase) {
  for (const std::uint16_t base : kBaseAddresses) {
    const auto regs = image_with({{1, 66}, {103, 50}, {124, 24}, {802, 62}});
    auto chain = parse_model_chain(base, regs);
    ASSERT_TRUE(chain.ok()) << chain.error().message;
    EXPECT_EQ(chain->base, base);
    ASSERT_EQ(chain->models.size(), 4u);
    EXPECT_EQ(chain->models[0].address, base + 2);
    EXPECT_EQ(chain->models[1].id, 103);
    EXPECT_EQ(chain->models[1].address, base + 2 + 68);
    EXPECT_EQ(chain->find(802)->address, base + 2 + 68 + 52 + 26);
    EXPECT_EQ(chain->find(802)->at(battery::V), base + 2 + 68 + 52 + 26 + 34);
    EXPECT_TRUE(chain->find(802)->holds(battery::W_SF));
    EXPECT_EQ(chain->find(704), nullptr);
  }
}

TEST(SunSpecChain, ErrorsNameTheAddressAndCause) {
  auto regs = image_with({{1, 66}});
  regs[0] = 0x1234;
  auto none = parse_model_chain(40000, regs);
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.error().message, "40000: no SunSpec marker \"SunS\" (found 1234 6E53)");

  auto truncated = image_with({{1, 66}});
  truncated.resize(truncated.size() - 2);  // no end marker
  auto cut = parse_model_chain(40000, truncated);
  ASSERT_FALSE(cut.ok());
  EXPECT_EQ(cut.error().message, "40070: the chain runs past the end of the image (40070)");

  auto huge = image_with({{1, 66}});
  huge[2 + 68 + 1] = 0;  // the end marker's length does not matter
  huge[3] = 60000;       // model 1 claims 60000 registers
  auto past = parse_model_chain(40000, huge);
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().message, "40002: model 1 of length 60000 runs past register 65535");

  ChainWalker walker(0);
  std::vector<std::uint16_t> model = {7, 0};
  ASSERT_TRUE(walker.feed(std::vector<std::uint16_t>{kMarkerHigh, kMarkerLow}).ok());
  Result<bool> step = false;
  for (std::size_t i = 0; i <= kMaxModels && step.ok(); ++i) step = walker.feed(model);
  ASSERT_FALSE(step.ok());
  EXPECT_NE(step.error().message.find("more than 128 models"), std::string::npos) << step.error().message;
}

}  // namespace
}  // namespace cellguard::sunspec
