# Sensor board link and outputs (board_link.h, outputs.h).
target_sources(cellguard_devices PRIVATE board_link.cpp board_writer.cpp outputs.cpp gpio_outputs.cpp)
target_link_libraries(cellguard_devices PUBLIC Threads::Threads PkgConfig::GPIOD)
# The test drives the link over real pseudo-terminals; the simulator's Pty, board device and
# conversions serve as the independent peer (only the test links cellguard_sim).
cellguard_test(devices_board_test SOURCES board_link_test.cpp board_writer_test.cpp outputs_test.cpp DEPS cellguard_devices cellguard_sim)
# GpioOutputs against a real kernel GPIO chip (gpio-sim); skips where there is none. vcan_vm_test
# does not run it: Debian 12's kernels lack CONFIG_GPIO_SIM (see the test's header).
cellguard_test(gpio_outputs_vm_test SOURCES gpio_outputs_vm_test.cpp DEPS cellguard_devices)
