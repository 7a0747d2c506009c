#!/usr/bin/env bash
# `make test-asan` / `make test-tsan`: configures BUILD_DIR with GRAYDEBUG_SANITIZE=KIND (address:
# ASan + UBSan; thread: TSan), builds everything the tests need and runs every CTest test (unit and
# integration, like `make test`). Sanitizer reports of any process go to BUILD_DIR/sanitizer-reports
# and make the `sanitizer_reports` test fail (see docs/reliability.md#sanitizers-and-fuzzing).
# Extra arguments go to ctest (e.g. -L unit, -R http_server). JOBS sets the build's parallelism.
# SANITIZE_STEP=build only configures and builds; SANITIZE_STEP=test only runs the tests (`make test`
# builds beside the release tests, hack/test.sh).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
kind=${1:?usage: sanitize.sh address|thread BUILD_DIR [ctest args]}
build=${2:?usage: sanitize.sh address|thread BUILD_DIR [ctest args]}
shift 2
cd "$REPO"
step=${SANITIZE_STEP:-all}
case $step in all | build | test) ;; *) echo "sanitize.sh: SANITIZE_STEP must be all, build or test, not '$step'" >&2; exit 2 ;; esac
start=$(date +%s)
if [[ $step != test ]]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DGRAYDEBUG_SANITIZE="$kind" -DGRAYDEBUG_BENCH=OFF >/dev/null
  nice -n 10 cmake --build "$build" -j "${JOBS:-$(nproc)}"
fi
built=$(date +%s)
if [[ $step == build ]]; then
  echo "sanitize ($kind): build $((built - start)) s"
  exit 0
fi
status=0
(cd "$build" && ctest --output-on-failure --timeout 1800 "$@") || status=$?
end=$(date +%s)
echo "sanitize ($kind): build $((built - start)) s, tests $((end - built)) s"
exit $status
