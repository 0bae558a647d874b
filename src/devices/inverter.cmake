# Inverter Modbus client (inverter_client.h): libmodbus on a worker thread, results posted to the
# loop's io_context.
target_sources(cellguard_devices PRIVATE ${CMAKE_CURRENT_LIST_DIR}/power_device.cpp ${CMAKE_CURRENT_LIST_DIR}/modbus_link.cpp
  ${CMAKE_CURRENT_LIST_DIR}/modbus_session.cpp   ${CMAKE_CURRENT_LIST_DIR}/inverter_client.cpp ${CMAKE_CURRENT_LIST_DIR}/modbus_worker.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sunspec_device.cpp)
target_link_libraries(cellguard_devices PUBLIC PkgConfig::MODBUS Threads::Threads)
# Tests against real peers: the simulator's inverter (TCP, RTU on a pty) and pymodbus.
# The half-dead inverter tests put a rogue Modbus server (tests/support) in front of the simulator's
# and drive the safety supervisor with the client's results, as the edge does.
cellguard_test(devices_inverter_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/inverter_client_test.cpp
  DEPS cellguard_devices cellguard_sim cellguard_safety)
if(TARGET devices_inverter_test)
  target_compile_definitions(devices_inverter_test PRIVATE CELLGUARD_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  target_include_directories(devices_inverter_test PRIVATE ${PROJECT_SOURCE_DIR}/tests)
endif()
# The SunSpec device (sunspec_device.h): its pure session against the simulator's register logic,
# the whole device over Modbus TCP against the simulator's SunSpec device with a real supervisor,
# and against an independent pymodbus server laid out from the official definitions
# (CELLGUARD_SUNSPEC_DIR; skipped without it).
cellguard_test(devices_sunspec_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/sunspec_device_test.cpp
  DEPS cellguard_devices cellguard_sim cellguard_safety nlohmann_json::nlohmann_json)
if(TARGET devices_sunspec_test)
  target_compile_definitions(devices_sunspec_test PRIVATE CELLGUARD_TEST_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
