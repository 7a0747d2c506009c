#!/usr/bin/env bash
# `make deps`: installs the Debian packages graydebug builds with and builds the pinned tools
# (hack/tools/build.sh) into the cache outside the repo. Idempotent: a second run changes nothing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl openssl python3 python3-yaml
  libcpprest-dev libssl-dev libboost-dev libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev doctest-dev
  clang clang-format clang-tidy libclang-rt-14-dev wrk nginx-light sslscan
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing Debian packages: ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "deps: Debian packages up to date"
fi

command -v go >/dev/null || { echo "deps: error: Go is required to build the pinned tools (see docs/tools.md)" >&2; exit 1; }
"$REPO/hack/tools/build.sh"
