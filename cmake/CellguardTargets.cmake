# Shared build settings for every cellguard target: warnings as errors, optional sanitizers.

set(CELLGUARD_WARNINGS
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align -Woverloaded-virtual
  -Wimplicit-fallthrough -Werror)

add_library(cellguard_options INTERFACE)
target_compile_options(cellguard_options INTERFACE ${CELLGUARD_WARNINGS})
if(CELLGUARD_SANITIZE)
  target_compile_options(cellguard_options INTERFACE
    -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  target_link_options(cellguard_options INTERFACE -fsanitize=address,undefined)
endif()
if(CELLGUARD_TSAN)
  # ThreadSanitizer (`make test-tsan`): only the threaded tests are built (CELLGUARD_THREADED_TESTS).
  # GCC 12 by default: clang 14 cannot compile the asio coroutines (uplink sender, server ingest) with
  # GCC 12's libstdc++. -Wno-tsan: GCC warns that atomic_thread_fence (asio, spdlog) is not modelled.
  target_compile_options(cellguard_options INTERFACE -fsanitize=thread -fno-omit-frame-pointer
    $<$<CXX_COMPILER_ID:GNU>:-Wno-tsan>)
  target_link_options(cellguard_options INTERFACE -fsanitize=thread)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  # The lock annotations (core/thread_annotations.h) are checked wherever clang builds (fuzz build,
  # a clang TSan build); GCC ignores them.
  target_compile_options(cellguard_options INTERFACE -Wthread-safety)
endif()
if(CELLGUARD_FUZZ)
  # Every library is instrumented for coverage; the fuzz targets add the libFuzzer main.
  target_compile_options(cellguard_options INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(cellguard_options INTERFACE -fsanitize=address,undefined)
endif()

include(${CMAKE_CURRENT_LIST_DIR}/CellguardPch.cmake)

# cellguard_library(NAME SOURCES... [DEPS ...]): the library of one subsystem, src/<NAME>/.
# Its public header lives in the folder and is included as "<NAME>/<header>.h" from src/.
function(cellguard_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cellguard_${name} STATIC ${ARG_SOURCES})
  target_include_directories(cellguard_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(cellguard_${name} PUBLIC ${ARG_DEPS} PRIVATE cellguard_options)
  cellguard_use_pch(cellguard_${name} lib)
endfunction()

# The tests of code that runs several threads: the ThreadSanitizer run (`make test-tsan`) builds and
# runs only these. Add a test here when it drives threads of the code under test.
set(CELLGUARD_THREADED_TESTS
  edge_test                                   # src/edge
  uplink_protocol_test uplink_batch_builder_test
  server_ingest_test server_http_test server_http_limits_test server_unit_test  # ingest also runs the uplink sender
  devices_inverter_test devices_sunspec_test  # the power devices' libmodbus worker
  edge_inproc_test                            # the edge loop with the simulator's modules on an inproc bus
  recorder_test store_test)
if(CELLGUARD_TESTS)
  add_custom_target(threaded_tests)
endif()

# cellguard_test(NAME SOURCES... DEPS ... [PROPERTIES ...]): one GoogleTest binary; each TEST is one
# ctest entry (PROPERTIES are set on each, e.g. RUN_SERIAL TRUE for real-time tests).
# Its main (tests/support/test_main.cpp) sets CELLGUARD_SOURCE_DIR and CELLGUARD_BINARY.
function(cellguard_test name)
  if(NOT CELLGUARD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} cellguard_options cellguard_test_main GTest::gtest)
  cellguard_use_pch(${name} test)
  if(name IN_LIST CELLGUARD_THREADED_TESTS)
    # The threaded tests carry the label `threaded` (ctest -L threaded) and build with the target
    # threaded_tests: `make test-tsan` builds and runs only them.
    list(APPEND ARG_PROPERTIES LABELS threaded)
    add_dependencies(threaded_tests ${name})
  endif()
  if(ARG_PROPERTIES)
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${ARG_PROPERTIES})
  else()
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST)
  endif()
endfunction()
