#!/usr/bin/env bash
# Installs what the arm64 cross build (cmake/toolchain-aarch64-linux-gnu.cmake, scripts/arm64-test.sh)
# needs on Debian 12 amd64: the cross compiler, the arm64 (-dev:arm64) packages of cellguard's
# libraries beside the native ones (multiarch), and qemu-user-static to run the result.
# Header-only libraries (asio, CLI11, nlohmann-json) and protoc are the native packages of
# scripts/install-deps.sh. Idempotent: packages already installed are skipped.
#
# Multiarch needs the same version of a library for both architectures, so installing an :arm64
# package can upgrade its amd64 twin (e.g. libssl3) to the version in the archive.
set -euo pipefail
"$(dirname "$0")/install-deps.sh"

packages=(
  crossbuild-essential-arm64  # aarch64-linux-gnu-gcc-12/g++-12, libc6-dev-arm64-cross
  qemu-user-static            # qemu-aarch64-static runs the arm64 binary on this machine
  libssl-dev:arm64 libmodbus-dev:arm64 libsqlite3-dev:arm64 libtomlplusplus-dev:arm64 libspdlog-dev:arm64
  libfmt-dev:arm64 libzstd-dev:arm64 libcpp-httplib-dev:arm64 libgpiod-dev:arm64 libprotobuf-dev:arm64
)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
updated=0
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  echo "install-cross-deps: adding the arm64 architecture (dpkg --add-architecture arm64)" >&2
  $sudo dpkg --add-architecture arm64
  $sudo apt-get update -qq
  updated=1
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
echo "install-cross-deps: installing ${missing[*]}" >&2
[ "$updated" = 1 ] || $sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
