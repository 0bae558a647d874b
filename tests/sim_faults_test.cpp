// Fault injection's pure parts (issue 3, item 6): scenario files, the dispatcher, the control
// protocol — values and time in, decisions out.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "core/text.h"
#include "dbc/codec.h"
#include "dbc/dbc.h"
#include "sim/canopen_modules.h"
#include "sim/control_protocol.h"
#include "sim/faults.h"
#include "sim/rig_dbc.h"
#include "sim/scenario.h"

namespace cellguard::sim {
namespace {

using nlohmann::json;

struct Rig {
  Rig() : pack(PackConfig{}) {
    auto parsed = dbc::parse_dbc(builtin_rig_dbc());
    EXPECT_TRUE(parsed.ok());
    codec = std::make_shared<const dbc::DatabaseCodec>(std::move(parsed->database));
    modules = std::move(CanopenModules::create(codec, pack).value());
    faults = std::make_unique<FaultDispatcher>(pack, *modules);
    control = std::make_unique<ControlHandler>(pack, *modules, *faults);
  }
  json ask(const json& request) { return json::parse(control->handle(request.dump(), pack.time_s())); }
  std::shared_ptr<const dbc::DatabaseCodec> codec;
  PackModel pack;
  std::unique_ptr<CanopenModules> modules;
  std::unique_ptr<FaultDispatcher> faults;
  std::unique_ptr<ControlHandler> control;
};

TEST(SimScenario, StepsParseWithParametersAndComeOutSortedByTime) {
  auto steps = parse_scenario(R"(
# a comment
[[step]]
at_s = 30
fault = "clear"

[[step]]
at_s = 10.5
fault = "cell_drift"
module = 3
cell = 5
rate_v_per_s = -0.02
on = true
)",
                              "s.toml");
  ASSERT_TRUE(steps.ok()) << steps.error().message;
  ASSERT_EQ(steps->size(), 2u);
  EXPECT_EQ((*steps)[0].at_s, 10.5);
  EXPECT_EQ((*steps)[0].command.kind, "cell_drift");
  EXPECT_EQ((*steps)[0].command.number("rate_v_per_s", 0), -0.02);
  EXPECT_EQ((*steps)[0].command.number("on", 0), 1.0);
  EXPECT_EQ((*steps)[1].command.kind, "clear");
  ScenarioPlayer player(std::move(steps.value()));
  EXPECT_TRUE(player.due(10).empty());
  EXPECT_EQ(player.due(11).size(), 1u);
  EXPECT_EQ(player.due(100).size(), 1u);
  EXPECT_TRUE(player.finished());
}

TEST(SimScenario, MalformedFilesAreRefusedWithTheirLocation) {
  auto bad_toml = parse_scenario("[[step]\nat_s = 1", "bad.toml");
  ASSERT_FALSE(bad_toml.ok());
  EXPECT_NE(bad_toml.error().message.find("bad.toml:1"), std::string::npos) << bad_toml.error().message;
  auto no_time = parse_scenario("[[step]]\nfault = \"clear\"\n", "t.toml");
  ASSERT_FALSE(no_time.ok());
  EXPECT_NE(no_time.error().message.find("step 1: needs at_s"), std::string::npos);
  auto text_parameter = parse_scenario("[[step]]\nat_s = 1\nfault = \"x\"\nmodule = \"three\"\n", "p.toml");
  ASSERT_FALSE(text_parameter.ok());
  auto unknown_key = parse_scenario("speed = 3\n", "k.toml");
  ASSERT_FALSE(unknown_key.ok());
  EXPECT_TRUE(parse_scenario("", "empty.toml").ok());
}

TEST(SimScenario, TheShippedExampleScenarioIsValid) {
  const char* dir = std::getenv("CELLGUARD_SOURCE_DIR");
  const std::string path =
      std::string(dir ? dir : CELLGUARD_TEST_SOURCE_DIR) + "/data/scenarios/faults-tour.toml";
  Result<std::string> text = read_file(path);
  ASSERT_TRUE(text.ok()) << text.error().message;
  auto steps = parse_scenario(*text, path);
  ASSERT_TRUE(steps.ok()) << steps.error().message;
  EXPECT_EQ(steps->size(), 7u);
  Rig rig;
  for (const ScenarioStep& step : *steps) {
    EXPECT_TRUE(rig.faults->validate(step.command).ok()) << step.command.kind;
  }
}

TEST(SimFaults, TheDispatcherChecksKindModuleAndCell) {
  Rig rig;
  EXPECT_FALSE(rig.faults->validate({"no_such_fault", {}}).ok());
  EXPECT_FALSE(rig.faults->validate({"cell_drift", {{"module", 9}, {"cell", 1}}}).ok());
  EXPECT_FALSE(rig.faults->validate({"cell_drift", {{"module", 1}, {"cell", 13}}}).ok());  // unpopulated
  EXPECT_FALSE(rig.faults->validate({"module_silent", {}}).ok());
  EXPECT_FALSE(rig.faults->validate({"ambient", {{"value_c", 200}}}).ok());
  EXPECT_TRUE(rig.faults->validate({"cell_drift", {{"module", 1}, {"cell", 12}}}).ok());
}

TEST(SimFaults, ModuleFlagsSwitchOnAndOffAndClearResetsEverything) {
  Rig rig;
  ASSERT_TRUE(rig.faults->apply({"module_frozen", {{"module", 2}}}, 0).ok());
  ASSERT_TRUE(rig.faults->apply({"module_silent", {{"module", 2}}}, 0).ok());
  EXPECT_TRUE(rig.modules->faults(2)->frozen);
  EXPECT_TRUE(rig.modules->faults(2)->silent);
  ASSERT_TRUE(rig.faults->apply({"module_silent", {{"module", 2}, {"on", 0}}}, 0).ok());
  EXPECT_FALSE(rig.modules->faults(2)->silent);
  EXPECT_TRUE(rig.modules->faults(2)->frozen);
  ASSERT_TRUE(rig.faults->apply({"bus_error_storm", {{"duration_s", 3}}}, 10).ok());
  EXPECT_TRUE(rig.faults->storm().active(12.9));
  EXPECT_FALSE(rig.faults->storm().active(13.0));
  ASSERT_TRUE(rig.faults->apply({"pump_failure", {}}, 0).ok());
  ASSERT_TRUE(rig.faults->apply({"insulation_fault", {}}, 0).ok());
  ASSERT_TRUE(rig.faults->apply({"clear", {}}, 11).ok());
  EXPECT_FALSE(rig.modules->faults(2)->frozen);
  EXPECT_FALSE(rig.faults->storm().active(11.5));
  EXPECT_FALSE(rig.pack.pump_failed());
  EXPECT_FALSE(rig.pack.insulation_fault());
}

TEST(SimFaults, DevicesRegisterTheirOwnFaultKindsAndAreCleared) {
  Rig rig;
  int applied = 0;
  int cleared = 0;
  ASSERT_TRUE(rig.faults
                  ->register_handler(
                      "inverter_silent",
                      [&](const FaultCommand& c) {
                        applied += static_cast<int>(c.number("on", 1));
                        return success();
                      },
                      [&] { ++cleared; })
                  .ok());
  EXPECT_FALSE(
      rig.faults->register_handler("cell_drift", [](const FaultCommand&) { return success(); }).ok());
  ASSERT_TRUE(rig.faults->apply({"inverter_silent", {}}, 0).ok());
  ASSERT_TRUE(rig.faults->apply({"clear", {}}, 0).ok());
  EXPECT_EQ(applied, 1);
  EXPECT_EQ(cleared, 1);
  const auto kinds = rig.faults->kinds();
  EXPECT_NE(std::find(kinds.begin(), kinds.end(), "inverter_silent"), kinds.end());
}

TEST(SimControl, RequestsGetOneJsonAnswerEach) {
  Rig rig;
  EXPECT_TRUE(rig.ask({{"cmd", "fault"}, {"fault", "module_garbage"}, {"module", 4}})["ok"].get<bool>());
  EXPECT_TRUE(rig.modules->faults(4)->garbage);
  json bad = rig.ask({{"cmd", "fault"}, {"fault", "module_garbage"}, {"module", "four"}});
  EXPECT_FALSE(bad["ok"].get<bool>());
  EXPECT_NE(bad["error"].get<std::string>().find("module"), std::string::npos);
  EXPECT_TRUE(rig.ask({{"cmd", "drive"}, {"contactors", true}, {"current_a", 20}})["ok"].get<bool>());
  EXPECT_EQ(rig.pack.pack_current_a(), 20.0);
  EXPECT_FALSE(rig.ask({{"cmd", "drive"}, {"current_a", 5000}})["ok"].get<bool>());
  EXPECT_FALSE(rig.ask({{"cmd", "drive"}, {"warp", 9}})["ok"].get<bool>());
  json status = rig.ask({{"cmd", "status"}});
  ASSERT_TRUE(status["ok"].get<bool>());
  EXPECT_EQ(status["status"]["modules"].size(), 8u);
  EXPECT_TRUE(status["status"]["modules"][3]["garbage"].get<bool>());
  EXPECT_FALSE(json::parse(rig.control->handle("not json", 0))["ok"].get<bool>());
  EXPECT_FALSE(json::parse(rig.control->handle(std::string(5000, ' '), 0))["ok"].get<bool>());
  EXPECT_FALSE(json::parse(rig.control->handle(R"({"cmd":"status","a":[[[[[1]]]]]})", 0))["ok"].get<bool>());
  EXPECT_FALSE(rig.ask({{"cmd", "reboot"}})["ok"].get<bool>());
  rig.control->add_status("board", [] { return json{{"path", "/dev/pts/9"}}; });
  EXPECT_EQ(rig.ask({{"cmd", "status"}})["status"]["board"]["path"], "/dev/pts/9");
}

}  // namespace
}  // namespace cellguard::sim
