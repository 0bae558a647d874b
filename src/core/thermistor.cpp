#include "core/thermistor.h"

namespace cellguard {

const std::vector<ThermistorPoint>& rig_thermistor_table() {
  static const std::vector<ThermistorPoint> table = {
      {140, 40},   {138, 50},    {132, 65},    {126, 75},    {122, 90},     {115, 115},
      {110, 120},  {104, 145},   {100, 185},   {93, 225},    {87, 260},     {82, 325},
      {79, 346},   {77, 385},    {71, 450},    {65, 575},    {60, 685},     {54, 815},
      {43, 1200},  {37, 1600},   {33, 2150},   {21, 3400},   {5, 7500},     {0, 9600},
      {-6, 13500}, {-16, 18500}, {-18, 25000}, {-30, 50000}, {-40, 100700},
  };
  return table;
}

}  // namespace cellguard
