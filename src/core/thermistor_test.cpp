#include "core/thermistor.h"

#include <gtest/gtest.h>

namespace cellguard {
namespace {

TEST(RigThermistorTable, IsTheSeedCurveByFallingTemperatureAndRisingResistance) {
  const auto& table = rig_thermistor_table();
  ASSERT_EQ(table.size(), 29u);
  EXPECT_EQ(table.front().temperature_c, 140);
  EXPECT_EQ(table.front().resistance_ohm, 40);
  EXPECT_EQ(table[21].temperature_c, 21);  // room temperature row
  EXPECT_EQ(table[21].resistance_ohm, 3400);
  EXPECT_EQ(table.back().temperature_c, -40);
  EXPECT_EQ(table.back().resistance_ohm, 100700);  // the row the spec calls suspicious, kept
  for (std::size_t i = 1; i < table.size(); ++i) {
    EXPECT_LT(table[i].temperature_c, table[i - 1].temperature_c) << "row " << i;
    EXPECT_GT(table[i].resistance_ohm, table[i - 1].resistance_ohm) << "row " << i;
  }
  EXPECT_EQ(&rig_thermistor_table(), &table);  // one instance
}

}  // namespace
}  // namespace cellguard
