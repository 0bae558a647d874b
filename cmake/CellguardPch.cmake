# Precompiled headers (CELLGUARD_PCH): asio, nlohmann/json, GoogleTest and the common standard headers
# are parsed once per build instead of once per translation unit. Three headers, each compiled once
# and reused (target_precompile_headers REUSE_FROM) by many targets:
#   lib    the standard headers, asio, nlohmann/json: subsystem libraries and the CLI
#   test   the same plus gtest: tests with a file that uses asio or nlohmann/json
#   gtest  a few standard headers and gtest: the other tests
# Loading a precompiled header is not free (about 0.3 s for asio, 0.7 s for json, 1.1 s for all of
# test's with GCC 12 at -O3), so a library source that reaches neither asio nor nlohmann/json (directly
# or through the project's headers; a configure-time scan, _cellguard_pch_reaches) compiles without.
# Measured effect: docs/ci.md ("Build time").
#
# GCC only: the clang builds (fuzz, lint) compile without, so they still check that every file
# includes what it uses. -Winvalid-pch (added by CMake) with -Werror makes a header that GCC would
# silently ignore (different flags or macros) an error instead of a slow build.
# One set of flags and macros for all users of a header: every cellguard target links
# cellguard_options, which carries the asio configuration (ASIO_STANDALONE, ...) for that reason.
#
# Off by default: with the headers precompiled, GCC 12 at -O3 inlines std::string's operator+ in the
# CAN log tests (can/asc_test.cpp, can/candump_test.cpp) differently and raises a false
# -Warray-bounds there, an error under -Werror. Until that is worked around, PCH is opt-in
# (-DCELLGUARD_PCH=ON) and the CI figures in docs/ci.md are those without it.
option(CELLGUARD_PCH "Precompiled headers for the standard library, asio, nlohmann/json and gtest (GCC)" OFF)

set(CELLGUARD_PCH_ACTIVE OFF)
if(CELLGUARD_PCH AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(CELLGUARD_PCH_ACTIVE ON)
endif()

set(CELLGUARD_PCH_STD_HEADERS
  <algorithm> <array> <atomic> <chrono> <cmath> <cstdint> <cstdio> <cstring> <filesystem> <fstream>
  <functional> <map> <memory> <mutex> <optional> <set> <sstream> <string> <string_view> <thread>
  <utility> <variant> <vector>)
set(CELLGUARD_PCH_LIB_HEADERS ${CELLGUARD_PCH_STD_HEADERS}
  <asio/io_context.hpp> <asio/ip/tcp.hpp> <asio/steady_timer.hpp> <asio/write.hpp> <asio/read_until.hpp>
  <nlohmann/json.hpp>)
set(CELLGUARD_PCH_TEST_HEADERS ${CELLGUARD_PCH_LIB_HEADERS} <gtest/gtest.h>)
set(CELLGUARD_PCH_GTEST_HEADERS <chrono> <cstdint> <string> <string_view> <vector> <gtest/gtest.h>)

if(CELLGUARD_PCH_ACTIVE)
  # ccache caches compiles that use a precompiled header only with this sloppiness (ccache manual,
  # "Precompiled headers"); CMake passes the header with -include, as ccache needs.
  if(CMAKE_CXX_COMPILER_LAUNCHER MATCHES "ccache" AND NOT CMAKE_CXX_COMPILER_LAUNCHER MATCHES "CCACHE_SLOPPINESS")
    set(CMAKE_CXX_COMPILER_LAUNCHER env CCACHE_SLOPPINESS=pch_defines,time_macros ${CMAKE_CXX_COMPILER_LAUNCHER})
  endif()

  # The macros of the headers above must be the same in every translation unit that uses them.
  target_compile_definitions(cellguard_options INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED ASIO_DISABLE_STD_ALIGNED_ALLOC)

  # The targets that compile the headers (an empty source each: CMake needs one).
  file(WRITE ${CMAKE_BINARY_DIR}/cellguard_pch_anchor.cpp "// Compiles a precompiled header (cmake/CellguardPch.cmake).\n")
  add_library(cellguard_pch_lib STATIC ${CMAKE_BINARY_DIR}/cellguard_pch_anchor.cpp)
  target_link_libraries(cellguard_pch_lib PRIVATE cellguard_options nlohmann_json::nlohmann_json)
  target_precompile_headers(cellguard_pch_lib PRIVATE ${CELLGUARD_PCH_LIB_HEADERS})
  if(CELLGUARD_TESTS)
    add_library(cellguard_pch_test STATIC ${CMAKE_BINARY_DIR}/cellguard_pch_anchor.cpp)
    target_link_libraries(cellguard_pch_test PRIVATE cellguard_options nlohmann_json::nlohmann_json GTest::gtest)
    target_precompile_headers(cellguard_pch_test PRIVATE ${CELLGUARD_PCH_TEST_HEADERS})
    add_library(cellguard_pch_gtest STATIC ${CMAKE_BINARY_DIR}/cellguard_pch_anchor.cpp)
    target_link_libraries(cellguard_pch_gtest PRIVATE cellguard_options GTest::gtest)
    target_precompile_headers(cellguard_pch_gtest PRIVATE ${CELLGUARD_PCH_GTEST_HEADERS})
  endif()
endif()

# _cellguard_pch_reaches(FILE OUT): OUT is TRUE when FILE includes asio or nlohmann/json directly or
# through the project's own headers (quoted includes found beside FILE, in src/ or in tests/).
function(_cellguard_pch_reaches file out)
  string(MAKE_C_IDENTIFIER "${file}" key)
  get_property(seen GLOBAL PROPERTY CELLGUARD_PCH_REACHES_${key} SET)
  if(seen)
    get_property(result GLOBAL PROPERTY CELLGUARD_PCH_REACHES_${key})
    set(${out} ${result} PARENT_SCOPE)
    return()
  endif()
  set_property(GLOBAL PROPERTY CELLGUARD_PCH_REACHES_${key} FALSE)  # against include cycles
  set(result FALSE)
  if(EXISTS "${file}")
    file(STRINGS "${file}" includes REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
    get_filename_component(dir "${file}" DIRECTORY)
    foreach(line IN LISTS includes)
      if(line MATCHES "<(asio|asio/[^>]*|nlohmann/[^>]*)>")
        set(result TRUE)
        break()
      endif()
      if(line MATCHES "\"([^\"]+)\"")
        set(name "${CMAKE_MATCH_1}")
        foreach(base "${dir}" "${PROJECT_SOURCE_DIR}/src" "${PROJECT_SOURCE_DIR}/tests")
          if(EXISTS "${base}/${name}")
            _cellguard_pch_reaches("${base}/${name}" child)
            if(child)
              set(result TRUE)
            endif()
            break()
          endif()
        endforeach()
        if(result)
          break()
        endif()
      endif()
    endforeach()
  endif()
  set_property(GLOBAL PROPERTY CELLGUARD_PCH_REACHES_${key} ${result})
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# cellguard_use_pch(TARGET lib|test): TARGET's sources get the library's or a test header; decided at
# the end of the configuration, when every source of TARGET is known (target_sources after the fact).
function(cellguard_use_pch target kind)
  if(CELLGUARD_PCH_ACTIVE)
    set_property(GLOBAL APPEND PROPERTY CELLGUARD_PCH_TARGETS_${kind} ${target})
  endif()
endfunction()

function(_cellguard_pch_sources target out_reaching out_other)
  get_target_property(sources ${target} SOURCES)
  get_target_property(source_dir ${target} SOURCE_DIR)
  set(reaching "")
  set(other "")
  foreach(source IN LISTS sources)
    if(NOT source MATCHES "\\.(cpp|cc|cxx)$")
      continue()
    endif()
    get_filename_component(path "${source}" ABSOLUTE BASE_DIR "${source_dir}")
    _cellguard_pch_reaches("${path}" reaches)
    if(reaches)
      list(APPEND reaching "${path}")
    else()
      list(APPEND other "${path}")
    endif()
  endforeach()
  set(${out_reaching} "${reaching}" PARENT_SCOPE)
  set(${out_other} "${other}" PARENT_SCOPE)
endfunction()

function(_cellguard_pch_finalize)
  get_property(libs GLOBAL PROPERTY CELLGUARD_PCH_TARGETS_lib)
  foreach(target IN LISTS libs)
    _cellguard_pch_sources(${target} reaching other)
    if(reaching)
      target_precompile_headers(${target} REUSE_FROM cellguard_pch_lib)
      if(other)
        set_source_files_properties(${other} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
      endif()
    endif()
  endforeach()
  get_property(tests GLOBAL PROPERTY CELLGUARD_PCH_TARGETS_test)
  foreach(target IN LISTS tests)
    _cellguard_pch_sources(${target} reaching other)
    if(reaching)
      target_precompile_headers(${target} REUSE_FROM cellguard_pch_test)
    else()
      target_precompile_headers(${target} REUSE_FROM cellguard_pch_gtest)
    endif()
  endforeach()
endfunction()
if(CELLGUARD_PCH_ACTIVE)
  cmake_language(DEFER DIRECTORY ${PROJECT_SOURCE_DIR} CALL _cellguard_pch_finalize)
endif()
