// GpioOutputs (gpio_outputs.cpp) against a real kernel GPIO chip: the kernel's gpio-sim driver.
// Every line level is read back through the simulator's own sysfs attributes
// (/sys/devices/platform/gpio-sim.N/gpiochipM/sim_gpioK/value), independently of libgpiod.
//
// Needs a live gpio-sim chip with at least 8 lines (set up through configfs, see
// Documentation/admin-guide/gpio/gpio-sim.rst); the test finds it under
// /sys/bus/platform/drivers/gpio-sim. Where there is none every test skips itself, except inside
// the test VM (VM_GUEST=1), where a missing chip is a failure.
//
// Debian 12's kernels (6.1 and 6.12, amd64) are built without CONFIG_GPIO_SIM, so the test VM
// (scripts/vm) has no gpio-sim and vcan_vm_test does not run this binary. It has passed inside that
// VM with gpio-sim.c and kernel/irq/irq_sim.c of Debian's linux-source-6.1 built out of tree against
// linux-headers-6.1.0-56-amd64 (one module, plus configfs.ko; a chip of 8 lines, bank0).
#include <dirent.h>
#include <gpiod.h>
#include <gtest/gtest.h>

#include <array>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "devices/outputs.h"

namespace cellguard::devices {
namespace {

constexpr const char* kSimDriverDir = "/sys/bus/platform/drivers/gpio-sim";
constexpr int kMinLines = 8;

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string name = entry->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  ::closedir(dir);
  return names;
}

std::optional<std::string> read_line(const std::string& path) {
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text)) return std::nullopt;
  return text;
}

// A gpio-sim bank: its chip name (gpiochipN) and its sysfs folder.
struct SimChip {
  std::string name;
  std::string sysfs;  // /sys/bus/platform/drivers/gpio-sim/gpio-sim.0/gpiochip3
};

std::optional<SimChip> find_sim_chip() {
  for (const std::string& device : list_dir(kSimDriverDir)) {
    if (device.rfind("gpio-sim.", 0) != 0) continue;
    const std::string device_dir = std::string(kSimDriverDir) + "/" + device;
    for (const std::string& chip : list_dir(device_dir)) {
      if (chip.rfind("gpiochip", 0) != 0) continue;
      const std::string chip_dir = device_dir + "/" + chip;
      int lines = 0;
      for (const std::string& group : list_dir(chip_dir)) lines += group.rfind("sim_gpio", 0) == 0 ? 1 : 0;
      if (lines >= kMinLines) return SimChip{chip, chip_dir};
    }
  }
  return std::nullopt;
}

bool in_vm() {
  const char* value = std::getenv("VM_GUEST");
  return value != nullptr && std::string(value) == "1";
}

class GpioSimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto chip = find_sim_chip();
    if (!chip) {
      if (in_vm()) FAIL() << "no gpio-sim chip with " << kMinLines << " lines under " << kSimDriverDir;
      GTEST_SKIP() << "no gpio-sim chip with " << kMinLines << " lines here (see this test's header)";
    }
    chip_ = *chip;
  }

  GpioConfig config() const {
    GpioConfig config;
    config.chip = chip_.name;
    config.lines = {6, 7, 5, 3, 4};  // the rig's layout: not in output order
    config.consumer = "cellguard-test";
    return config;
  }

  // The physical level of a line as the simulator sees it: 0, 1, or -1 when unreadable.
  int level(int offset) const {
    const auto text = read_line(chip_.sysfs + "/sim_gpio" + std::to_string(offset) + "/value");
    if (!text) return -1;
    return *text == "1" ? 1 : *text == "0" ? 0 : -1;
  }

  // Levels of the configured lines, in output order.
  std::array<int, kOutputCount> levels(const GpioConfig& config) const {
    std::array<int, kOutputCount> result{};
    for (std::size_t i = 0; i < kOutputCount; ++i) result[i] = level(config.lines[i]);
    return result;
  }

  std::unique_ptr<Outputs> open(const GpioConfig& config) {
    auto outputs = open_gpio_outputs(config);
    if (!outputs) {
      ADD_FAILURE() << "open_gpio_outputs(" << config.chip << "): " << outputs.error().message;
      return nullptr;
    }
    return std::move(outputs).value();
  }

  SimChip chip_;
};

using Levels = std::array<int, kOutputCount>;

TEST_F(GpioSimTest, OpensByNameWithEveryOutputOff) {
  const GpioConfig cfg = config();
  auto outputs = open(cfg);
  ASSERT_NE(outputs, nullptr);
  EXPECT_EQ(outputs->describe(), "gpio " + chip_.name);
  EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 0, 0}));
  for (std::size_t i = 0; i < kOutputCount; ++i) EXPECT_FALSE(outputs->commanded(static_cast<Output>(i)));
  // The kernel lists the lines as outputs of our consumer.
  gpiod_chip* chip = gpiod_chip_open_by_name(chip_.name.c_str());
  ASSERT_NE(chip, nullptr);
  for (int offset : cfg.lines) {
    gpiod_line* line = gpiod_chip_get_line(chip, static_cast<unsigned>(offset));
    ASSERT_NE(line, nullptr);
    EXPECT_TRUE(gpiod_line_is_used(line)) << "line " << offset;
    EXPECT_EQ(gpiod_line_direction(line), GPIOD_LINE_DIRECTION_OUTPUT) << "line " << offset;
    const char* consumer = gpiod_line_consumer(line);
    EXPECT_EQ(std::string(consumer != nullptr ? consumer : ""), "cellguard-test") << "line " << offset;
  }
  gpiod_chip_close(chip);
}

TEST_F(GpioSimTest, OpensByDevPath) {
  GpioConfig cfg = config();
  cfg.chip = "/dev/" + chip_.name;
  auto outputs = open(cfg);
  ASSERT_NE(outputs, nullptr);
  EXPECT_EQ(outputs->describe(), "gpio /dev/" + chip_.name);
  ASSERT_TRUE(outputs->set(Output::fan, true));
  EXPECT_EQ(levels(cfg), (Levels{0, 1, 0, 0, 0}));
}

TEST_F(GpioSimTest, SetDrivesOnlyThatLine) {
  const GpioConfig cfg = config();
  auto outputs = open(cfg);
  ASSERT_NE(outputs, nullptr);
  auto result = outputs->set(Output::pump, true);
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(level(6), 1);
  EXPECT_EQ(levels(cfg), (Levels{1, 0, 0, 0, 0}));
  EXPECT_TRUE(outputs->commanded(Output::pump));
  EXPECT_EQ(level(0), 0);  // an unconfigured line stays as it was
  ASSERT_TRUE(outputs->set(Output::relay3, true));
  EXPECT_EQ(levels(cfg), (Levels{1, 0, 0, 0, 1}));
  ASSERT_TRUE(outputs->set(Output::pump, false));
  EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 0, 1}));
  EXPECT_FALSE(outputs->commanded(Output::pump));
}

TEST_F(GpioSimTest, SetAllDrivesTheGivenOutputsAndLeavesTheOthers) {
  const GpioConfig cfg = config();
  auto outputs = open(cfg);
  ASSERT_NE(outputs, nullptr);
  ASSERT_TRUE(outputs->set(Output::relay2, true));
  auto result = outputs->set_all({true, std::nullopt, true, std::nullopt, true});
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(levels(cfg), (Levels{1, 0, 1, 1, 1}));
  result = outputs->set_all({false, true, std::nullopt, false, std::nullopt});
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(levels(cfg), (Levels{0, 1, 1, 0, 1}));
  EXPECT_FALSE(outputs->commanded(Output::pump));
  EXPECT_TRUE(outputs->commanded(Output::fan));
  EXPECT_TRUE(outputs->commanded(Output::relay1));
  EXPECT_FALSE(outputs->commanded(Output::relay2));
  EXPECT_TRUE(outputs->commanded(Output::relay3));
}

TEST_F(GpioSimTest, ActiveLowInvertsThePhysicalLevel) {
  GpioConfig cfg = config();
  cfg.active_low = true;
  {
    auto outputs = open(cfg);
    ASSERT_NE(outputs, nullptr);
    EXPECT_EQ(levels(cfg), (Levels{1, 1, 1, 1, 1})) << "off is high on active-low lines";
    ASSERT_TRUE(outputs->set(Output::pump, true));
    EXPECT_EQ(levels(cfg), (Levels{0, 1, 1, 1, 1}));
    ASSERT_TRUE(outputs->set_all({std::nullopt, true, true, std::nullopt, std::nullopt}));
    EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 1, 1}));
    EXPECT_TRUE(outputs->commanded(Output::pump));
    ASSERT_TRUE(outputs->refresh());
    EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 1, 1}));
  }
  // Released: the simulator's pull (down) decides again.
  EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 0, 0}));
}

TEST_F(GpioSimTest, RefreshKeepsTheCommandedState) {
  const GpioConfig cfg = config();
  auto outputs = open(cfg);
  ASSERT_NE(outputs, nullptr);
  ASSERT_TRUE(outputs->set_all({true, false, true, false, false}));
  auto result = outputs->refresh();
  ASSERT_TRUE(result) << result.error().message;
  EXPECT_EQ(levels(cfg), (Levels{1, 0, 1, 0, 0}));
  ASSERT_TRUE(outputs->refresh());
  EXPECT_EQ(levels(cfg), (Levels{1, 0, 1, 0, 0}));
}

TEST_F(GpioSimTest, LineHeldByAnotherConsumerIsAClearError) {
  gpiod_chip* chip = gpiod_chip_open_by_name(chip_.name.c_str());
  ASSERT_NE(chip, nullptr);
  gpiod_line* held = gpiod_chip_get_line(chip, 5);  // relay1 in the rig layout
  ASSERT_NE(held, nullptr);
  ASSERT_EQ(gpiod_line_request_output(held, "someone-else", 1), 0);
  const GpioConfig cfg = config();
  auto outputs = open_gpio_outputs(cfg);
  ASSERT_FALSE(outputs);
  const std::string& message = outputs.error().message;
  EXPECT_NE(message.find("gpio " + chip_.name), std::string::npos) << message;
  EXPECT_NE(message.find("line 5 (relay1)"), std::string::npos) << message;
  EXPECT_NE(message.find("held by 'someone-else'"), std::string::npos) << message;
  EXPECT_NE(message.find("busy"), std::string::npos) << message;
  EXPECT_EQ(level(5), 1) << "the other consumer's level is untouched";
  // What the failed open had requested went back to the kernel: pump (6) and fan (7) are free.
  for (unsigned offset : {6U, 7U}) {
    gpiod_line* line = gpiod_chip_get_line(chip, offset);
    ASSERT_NE(line, nullptr);
    EXPECT_FALSE(gpiod_line_is_used(line)) << "line " << offset;
  }
  gpiod_line_release(held);
  gpiod_chip_close(chip);
  auto again = open_gpio_outputs(cfg);
  EXPECT_TRUE(again) << again.error().message;
}

TEST_F(GpioSimTest, LineBeyondTheChipIsAClearError) {
  GpioConfig cfg = config();
  cfg.lines = {0, 1, 2, 3, 4000};
  auto outputs = open_gpio_outputs(cfg);
  ASSERT_FALSE(outputs);
  const std::string& message = outputs.error().message;
  EXPECT_NE(message.find("gpio " + chip_.name + " line 4000 (relay3)"), std::string::npos) << message;
}

TEST_F(GpioSimTest, ClosingReleasesTheLines) {
  const GpioConfig cfg = config();
  {
    auto outputs = open(cfg);
    ASSERT_NE(outputs, nullptr);
    ASSERT_TRUE(outputs->set_all({true, true, true, true, true}));
    EXPECT_EQ(levels(cfg), (Levels{1, 1, 1, 1, 1}));
    // A second opener is refused while the first holds the lines.
    EXPECT_FALSE(open_gpio_outputs(cfg));
  }
  EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 0, 0})) << "released lines fall back to the simulator's pull";
  gpiod_chip* chip = gpiod_chip_open_by_name(chip_.name.c_str());
  ASSERT_NE(chip, nullptr);
  for (int offset : cfg.lines) {
    gpiod_line* line = gpiod_chip_get_line(chip, static_cast<unsigned>(offset));
    ASSERT_NE(line, nullptr);
    EXPECT_FALSE(gpiod_line_is_used(line)) << "line " << offset;
  }
  gpiod_chip_close(chip);
  auto again = open(cfg);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(levels(cfg), (Levels{0, 0, 0, 0, 0}));
}

}  // namespace
}  // namespace cellguard::devices
