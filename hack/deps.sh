#!/usr/bin/env bash
# `make deps`: installs the Debian packages graydebug builds with and builds the pinned tools
# (hack/tools/build.sh) into the cache outside the repo. Idempotent: a second run changes nothing.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)

PACKAGES=(
  build-essential cmake ninja-build pkg-config git curl openssl python3 python3-yaml
  libssl-dev libboost-dev libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev doctest-dev
  clang clang-format clang-tidy libclang-rt-14-dev wrk nginx-light sslscan
  # the informer's list pages (lib/kube/packed_page.cpp) and bench/json_decode_bench (issue #18)
  libsimdjson-dev
  # graydebug-webhook's allocator (issue #18, docs/decisions.md)
  libmimalloc-dev
  # the real node (hack/node): CNI plugins in /usr/lib/cni, kube-proxy's iptables and conntrack,
  # the netns plumbing (ip, nsenter, unshare), image rootfs builds, and runc's libseccomp (cgo).
  # No kmod: this kernel has everything built in and no /lib/modules.
  containernetworking-plugins iptables conntrack iproute2 util-linux mmdebstrap libseccomp-dev
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
  # nginx-light is the benchmarks' ceiling, started by bench/webhook.bench.sh on loopback with its
  # own config; its package would also start a system nginx on port 80. A policy-rc.d that says
  # "no" keeps every package's service from starting during this install (where none exists yet).
  policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy"
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  [ -z "$policy" ] || $sudo rm -f "$policy"
  [ "$rc" -eq 0 ] || exit "$rc"
else
  echo "deps: Debian packages up to date"
fi

command -v go >/dev/null || { echo "deps: error: Go is required to build the pinned tools (see docs/tools.md)" >&2; exit 1; }
"$REPO/hack/tools/build.sh"
