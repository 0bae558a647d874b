# Cross build for arm64 (the rig's edge computer) on Debian 12 amd64 with multiarch libraries:
#   scripts/install-cross-deps.sh   (crossbuild-essential-arm64, the -dev:arm64 packages, qemu-user-static)
#   cmake -S . -B build-arm64 -G Ninja --toolchain cmake/toolchain-aarch64-linux-gnu.cmake \
#     -DCMAKE_BUILD_TYPE=Release -DCELLGUARD_TESTS=OFF -DCELLGUARD_BENCH=OFF -DCELLGUARD_FIRMWARE=OFF -DCELLGUARD_WEB=OFF
# scripts/arm64-test.sh does this and runs the binary under qemu-aarch64-static.
# No sysroot: Debian's multiarch puts the arm64 libraries in /usr/lib/aarch64-linux-gnu beside the
# native ones, and the headers in /usr/include are shared; protoc stays the native /usr/bin/protoc.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc-12)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++-12)
# find_library/find_package look in /usr/lib/aarch64-linux-gnu (and its cmake/ folder) only, never in
# the native /usr/lib/x86_64-linux-gnu.
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
# pkg-config (libmodbus, libgpiod, sqlite3, zstd, cpp-httplib): the arm64 .pc files and the
# architecture-independent ones. Debian 12 has no aarch64-linux-gnu-pkg-config without pkgconf.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
# Programs built for arm64 (tests, gtest_discover_tests) run through qemu; -L gives it the arm64
# dynamic loader and libc of crossbuild-essential-arm64.
find_program(CELLGUARD_QEMU_AARCH64 qemu-aarch64-static)
if(CELLGUARD_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR "${CELLGUARD_QEMU_AARCH64};-L;/usr/aarch64-linux-gnu")
endif()
