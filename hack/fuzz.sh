#!/usr/bin/env bash
# `make fuzz`: builds the libFuzzer targets with clang (ASan + UBSan) in build-fuzz/ and runs each
# for FUZZ_SECONDS (default 60) on its committed corpus (tests/fuzz/corpus/<target>). New inputs go
# to a scratch directory; a crash leaves crash-* in build-fuzz/ and fails the run. Not part of CI.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
SECONDS_PER_TARGET=${FUZZ_SECONDS:-60}
BUILD="$REPO/build-fuzz"
"$REPO/hack/deps.sh" >/dev/null
cmake -S "$REPO" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DGRAYDEBUG_FUZZ=ON -DGRAYDEBUG_TESTS=OFF >/dev/null
cmake --build "$BUILD" --target fuzz_targets
status=0
for target in admission; do
  scratch=$(mktemp -d)
  echo "fuzz: $target for ${SECONDS_PER_TARGET}s"
  (cd "$BUILD" && "./bin/${target}_fuzz" -max_total_time="$SECONDS_PER_TARGET" -max_len=262144 -rss_limit_mb=4096 \
    -print_final_stats=1 "$scratch" "$REPO/tests/fuzz/corpus/$target") 2>&1 | grep -E "^#|stat::|ERROR|crash|Done" | tail -8 \
    || status=1
  rm -rf "$scratch"
done
ls "$BUILD"/crash-* >/dev/null 2>&1 && { echo "fuzz: crashes found: $(ls "$BUILD"/crash-*)"; exit 1; }
exit $status
