# Sensor board link and outputs (board_link.h, outputs.h).
target_sources(cellguard_devices PRIVATE board_link.cpp outputs.cpp gpio_outputs.cpp)
# The ASIO definitions cellguard_can uses, so every TU agrees (see src/can/CMakeLists.txt).
target_compile_definitions(cellguard_devices PUBLIC ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_DISABLE_STD_ALIGNED_ALLOC)
target_link_libraries(cellguard_devices PUBLIC Threads::Threads PkgConfig::GPIOD)
# The test drives the link over real pseudo-terminals; the simulator's Pty, board device and
# conversions serve as the independent peer (only the test links cellguard_sim).
cellguard_test(devices_board_test SOURCES board_link_test.cpp outputs_test.cpp DEPS cellguard_devices cellguard_sim)
