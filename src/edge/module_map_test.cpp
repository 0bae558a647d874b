#include "edge/module_map.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "dbc/dbc.h"

namespace cellguard::edge {
namespace {

std::string rig_dbc_path() {
  return std::string(std::getenv("CELLGUARD_SOURCE_DIR")) + "/data/cellguard-rig.dbc";
}

std::unique_ptr<dbc::DatabaseCodec> load(const std::string& path) {
  auto parsed = dbc::load_dbc(path);
  EXPECT_TRUE(parsed) << (parsed ? "" : parsed.error().message);
  return std::make_unique<dbc::DatabaseCodec>(std::move(parsed->database));
}

safety::Supervisor make_supervisor() {
  auto s = safety::Supervisor::create(safety::rig_defaults());
  EXPECT_TRUE(s);
  return std::move(s.value());
}

TEST(ModuleMap, CanopenDiscoveryMapsAllEightPdosOfEveryRigModule) {
  auto codec = load(rig_dbc_path());
  auto supervisor = make_supervisor();
  ModulesSection modules;
  auto map = ModuleMap::build(*codec, modules, supervisor);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(map->defined_modules().size(), 15u);
  EXPECT_EQ(map->defined_modules().front(), 1);
  EXPECT_EQ(map->defined_modules().back(), 15);
  // 12 cells + module voltage, max and min temperature, current per module.
  EXPECT_EQ(map->watched_count(), 15u * 16u);
  EXPECT_EQ(supervisor.channel_count(), 15u * 16u);
  // pdo1..pdo4 by COB-ID, pdo5..pdo8 (0x190+n: node 16+n by COB-ID alone) by their name prefix.
  for (std::uint32_t base : {0x180u, 0x280u, 0x380u, 0x480u, 0x190u, 0x290u, 0x390u, 0x490u}) {
    for (int node = 1; node <= 15; ++node) {
      const ModuleMessage* m = map->find(base + static_cast<std::uint32_t>(node), false);
      ASSERT_NE(m, nullptr) << std::hex << base + node;
      EXPECT_EQ(m->module_id, node) << m->codec->message().name;
    }
  }
  const ModuleMessage* sync = map->find(0x080, false);
  ASSERT_NE(sync, nullptr);
  EXPECT_EQ(sync->module_id, 0);
  EXPECT_EQ(map->find(0x7FF, false), nullptr);
  // Cells beyond `cells` are not watched (an unused channel reads 2.2 V, below every limit).
  const ModuleMessage* pdo4 = map->find(0x483, false);
  ASSERT_NE(pdo4, nullptr);
  for (const WatchedSignal& w : pdo4->watched) {
    const std::string& name = pdo4->codec->message().signals[w.signal_index].name;
    EXPECT_TRUE(name == "Cell_9_Voltage" || name == "Cell_10_Voltage" || name == "Cell_11_Voltage" ||
                name == "Cell_12_Voltage")
        << name;
    EXPECT_EQ(supervisor.channel(w.channel).module_id, 3);
    EXPECT_EQ(supervisor.channel(w.channel).quantity, safety::Quantity::cell_voltage);
  }
  EXPECT_EQ(pdo4->watched.size(), 4u);
}

TEST(ModuleMap, NamePatternDiscoveryGivesTheSameModules) {
  auto codec = load(rig_dbc_path());
  auto supervisor = make_supervisor();
  ModulesSection modules;
  modules.discovery = ModulesSection::Discovery::name_pattern;
  modules.name_pattern = "BMU{id}_pdo";
  auto map = ModuleMap::build(*codec, modules, supervisor);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(map->defined_modules().size(), 15u);
  EXPECT_EQ(map->find(0x19F, false)->module_id, 15);
  EXPECT_EQ(map->find(0x080, false)->module_id, 0);
}

TEST(ModuleMap, MissingSignalIsNamedWithItsConfigurationKey) {
  auto codec = load(rig_dbc_path());
  auto supervisor = make_supervisor();
  ModulesSection modules;
  modules.max_temperature_signal = "CMA_Hottest";
  auto map = ModuleMap::build(*codec, modules, supervisor);
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().message.find("CMA_Hottest"), std::string::npos) << map.error().message;
  EXPECT_NE(map.error().message.find("max_temperature_signal"), std::string::npos) << map.error().message;

  auto supervisor2 = make_supervisor();
  modules = {};
  modules.cells = 15;  // the DBC has 14 cell channels
  map = ModuleMap::build(*codec, modules, supervisor2);
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().message.find("Cell_15_Voltage"), std::string::npos) << map.error().message;
}

TEST(ModuleMap, NoModuleAtAllIsAnError) {
  auto parsed = dbc::parse_dbc(
      "VERSION \"\"\nBU_: A\nBO_ 291 Other: 8 A\n SG_ X : 0|8@1+ (1,0) [0|255] \"\" A\n", "t.dbc");
  ASSERT_TRUE(parsed) << parsed.error().message;
  dbc::DatabaseCodec codec(std::move(parsed->database));
  auto supervisor = make_supervisor();
  auto map = ModuleMap::build(codec, {}, supervisor);
  ASSERT_FALSE(map);
  EXPECT_NE(map.error().message.find("no module"), std::string::npos);
}

TEST(ModuleMap, TheRigsOriginalDbcWorks) {
  const char* seed = std::getenv("CELLGUARD_SEED_DIR");
  if (seed == nullptr) GTEST_SKIP() << "CELLGUARD_SEED_DIR not set";
  const std::string path = std::string(seed) + "/Goodwood_15BMUs_IFSpecV3_Node.dbc";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << path << " missing";
  auto codec = load(path);
  auto supervisor = make_supervisor();
  auto map = ModuleMap::build(*codec, {}, supervisor);
  ASSERT_TRUE(map) << map.error().message;
  EXPECT_EQ(map->defined_modules().size(), 15u);
  EXPECT_EQ(map->find(0x191, false)->module_id, 1);
  EXPECT_EQ(map->watched_count(), 15u * 16u);
}

TEST(ModuleMap, NamePatternMatching) {
  EXPECT_EQ(match_name_pattern("BMU{id}_", "BMU07_pdo3"), 7);
  EXPECT_EQ(match_name_pattern("BMU{id}_", "BMU15_SDO_Resp"), 15);
  EXPECT_EQ(match_name_pattern("BMU{id}_", "BMUx_pdo3"), 0);
  EXPECT_EQ(match_name_pattern("BMU{id}_", "XBMU07_pdo3"), 0);
  EXPECT_EQ(match_name_pattern("Pack{id}", "Pack3"), 3);
  EXPECT_EQ(match_name_pattern("no placeholder", "no placeholder"), 0);
}

}  // namespace
}  // namespace cellguard::edge
