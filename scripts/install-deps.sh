#!/usr/bin/env bash
# Installs every Debian package cellguard needs to build, test, benchmark and fuzz.
# Idempotent: packages already installed are skipped, and `apt-get update` runs at most once.
set -euo pipefail

packages=(
  # toolchain
  g++ cmake ninja-build make pkg-config git
  clang-14 libclang-rt-14-dev llvm-14
  clang-format-14 clang-tidy-14  # make format-check / make lint (one version: others format differently)
  # libraries
  libasio-dev libssl-dev libmodbus-dev libsqlite3-dev libtomlplusplus-dev libcli11-dev
  nlohmann-json3-dev libspdlog-dev libfmt-dev libzstd-dev libcpp-httplib-dev libgpiod-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # independent protocol peers used by the tests
  python3 python3-can python3-pymodbus python3-serial python3-serial-asyncio
  openssl  # s_client, s_server, verify, x509: the TLS tests' independent peer
  # the SocketCAN tests in a QEMU VM with Debian's kernel (tests/vm, shared/spec/vcan-vm.md)
  qemu-system-x86 busybox-static cpio xz-utils can-utils iproute2
  # the uplink: protobuf for the wire schema; libfaketime for the edge clock-jump test
  libprotobuf-dev protobuf-compiler faketime
  # "server disk full" tests (tests/support/small_fs.h, scripts/disk-full.sh): mount, mkfs.ext4
  mount e2fsprogs
  # the sensor board firmware (firmware/board) and its tests in simavr
  gcc-avr avr-libc binutils-avr simavr libsimavr-dev
  # the rig's own board sketch, built at test time (tests/firmware/rig_sketch_e2e_test.cpp)
  arduino-core-avr arduino-mk
  # packages (make package, ctest packaging_deb_test): man pages from --help, dpkg-shlibdeps, lintian
  help2man dpkg-dev lintian
  # the dashboard's browser test (tests/browser): headless chromium driven by playwright-core
  chromium
)

# The dashboard (web/) is built with Node.js and npm. A machine may already have a newer Node.js than
# Debian's (not from a Debian package): keep it, and ask apt for nodejs/npm only when node is missing.
# Debian 12's nodejs 18 and npm 9 build it (web/package.json's engines: node >= 18.19; tested by ctest
# web_debian_node18_test); with an older node CMake says so and builds everything else.
if ! command -v node >/dev/null 2>&1; then
  packages+=(nodejs)
fi
if ! command -v npm >/dev/null 2>&1; then
  packages+=(npm)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
