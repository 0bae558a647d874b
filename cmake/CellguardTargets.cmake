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
if(CELLGUARD_FUZZ)
  # Every library is instrumented for coverage; the fuzz targets add the libFuzzer main.
  target_compile_options(cellguard_options INTERFACE
    -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  target_link_options(cellguard_options INTERFACE -fsanitize=address,undefined)
endif()

# cellguard_library(NAME SOURCES... [DEPS ...]): the library of one subsystem, src/<NAME>/.
# Its public header lives in the folder and is included as "<NAME>/<header>.h" from src/.
function(cellguard_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(cellguard_${name} STATIC ${ARG_SOURCES})
  target_include_directories(cellguard_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(cellguard_${name} PUBLIC ${ARG_DEPS} PRIVATE cellguard_options)
endfunction()

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
  if(ARG_PROPERTIES)
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${ARG_PROPERTIES})
  else()
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST)
  endif()
endfunction()
