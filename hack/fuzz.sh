#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each
# for FUZZ_SECONDS (default 60) on its committed corpus (tests/fuzz/corpus/<target>). New inputs go
# to a scratch directory; a crash, a leak or a hang (over 10 s on one input) leaves crash-*, leak-*
# or timeout-* in build-fuzz/ and fails the run. FUZZ_TARGETS picks some ("watch config"). The
# targets: docs/reliability.md#sanitizers-and-fuzzing. Not part of CI.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
BUILD="$REPO/build-fuzz"
"$REPO/hack/deps.sh" >/dev/null
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DGRAYDEBUG_FUZZ=ON -DGRAYDEBUG_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target fuzz_targets
status=0
targets=${FUZZ_TARGETS:-admission kubeconfig watch dlv_reply config}
for target in $targets; do
  scratch=$(mktemp -d)
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
  (cd "$BUILD" && "./bin/${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -max_len=262144 -rss_limit_mb=4096 \
    -timeout=10 -print_final_stats=1 "$scratch" "$REPO/tests/fuzz/corpus/$target") 2>&1 |
    grep -E "^#|stat::|ERROR|crash|Done|Test unit written" | tail -n 8 || status=1
  rm -rf "$scratch"
done
if ls "$BUILD"/crash-* "$BUILD"/leak-* "$BUILD"/timeout-* >/dev/null 2>&1; then
  echo "fuzz: findings: $(ls "$BUILD"/crash-* "$BUILD"/leak-* "$BUILD"/timeout-* 2>/dev/null)"
  exit 1
fi
exit $status
