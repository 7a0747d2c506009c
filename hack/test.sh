#!/usr/bin/env bash
# `make test`: the release build and every CTest test in BUILD_DIR (unit, integration, the real-node
# suite), then the unit and integration tests again on an ASan+UBSan build (build-asan/, ASAN=0
# skips it). The ASan build is niced and runs beside the release build and tests, which leave a
# core idle most of the time (waiting for pods, kubelets and timeouts); its log is
# build-asan/build.log. A failed release half stops the run, as `make` would. Arguments go to both
# ctest runs (CTEST_ARGS).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
build=${BUILD_DIR:-build}
jobs=${JOBS:-$(nproc)}
asan=${ASAN:-1}
t0=$(date +%s)

asan_pid=
asan_log=build-asan/build.log
stop_asan() {
  if [[ -n $asan_pid ]] && kill -0 "$asan_pid" 2>/dev/null; then
    kill -TERM -- "-$asan_pid" 2>/dev/null || true
    wait "$asan_pid" 2>/dev/null || true
  fi
}
if [[ $asan != 0 ]]; then
  mkdir -p build-asan
  # Its own process group, so stopping it stops cmake, ninja and every compiler.
  # A new session is also a new scheduler autogroup (sched_autogroup_enabled), which would share
  # the CPU equally with this one whatever the build's own nice: it nices its group first.
  SANITIZE_STEP=build setsid bash -c 'echo 10 >/proc/self/autogroup 2>/dev/null; exec hack/sanitize.sh address build-asan' \
    >"$asan_log" 2>&1 &
  asan_pid=$!
  trap stop_asan EXIT
  trap 'stop_asan; exit 130' INT
  trap 'stop_asan; exit 143' TERM
fi

cmake --build "$build" -j "$jobs"
t1=$(date +%s)
status=0
(cd "$build" && ctest --output-on-failure --timeout 900 "$@") || status=$?
t2=$(date +%s)
echo "make test: release build $((t1 - t0)) s, tests $((t2 - t1)) s"
if [[ $status != 0 ]]; then
  echo "make test: the release half failed (ctest exit $status); the ASan half does not run" >&2
  exit "$status"
fi
[[ $asan != 0 ]] || exit 0

if ! wait "$asan_pid"; then
  asan_pid=
  tail -n 40 "$asan_log" >&2
  echo "make test: the ASan build failed (whole log: $asan_log)" >&2
  exit 1
fi
asan_pid=
t3=$(date +%s)
echo "make test: $(tail -n 1 "$asan_log"), done $((t3 - t0)) s after the start; waited $((t3 - t2)) s for it"
SANITIZE_STEP=test hack/sanitize.sh address build-asan -LE e2e "$@"
