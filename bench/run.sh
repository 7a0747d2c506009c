#!/usr/bin/env bash
# `make bench` / `make bench-quick`: runs the benchmarks in bench/ one after the other; each
# rewrites its own section of docs/benchmarks.md.
#
#   bench/run.sh [--quick] [NAME...]     NAME: controller, agent, webhook, ... (default: all)
#
# --quick (QUICK=1): one run per figure with small counts, a smoke test of the whole harness in
# under 2 minutes; its sections go to build/bench-quick/benchmarks.md, never to docs/. RUNS=N and
# the scripts' own variables (see each script's header) override the defaults.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
. "$REPO/bench/lib.sh"
names=()
for a in "$@"; do
  case "$a" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench/run.sh: unknown flag $a" >&2; exit 2 ;;
    *) names+=("$a") ;;
  esac
done
export QUICK
if [ "$QUICK" = 1 ] && [ -z "${BENCH_DOC:-}" ]; then
  export BENCH_DOC="$REPO/build/bench-quick/benchmarks.md"
  mkdir -p "$(dirname "$BENCH_DOC")"
  cp "$REPO/docs/benchmarks.md" "$BENCH_DOC"
fi
scripts=()
if [ ${#names[@]} = 0 ]; then
  scripts=("$REPO"/bench/*.bench.sh)
else
  for n in "${names[@]}"; do
    [ -x "$REPO/bench/$n.bench.sh" ] || { echo "bench/run.sh: no bench/$n.bench.sh" >&2; exit 2; }
    scripts+=("$REPO/bench/$n.bench.sh")
  done
fi
trap 'echo "bench: interrupted" >&2; exit 130' INT TERM
start=$(now_ms) failed=() times=() load=$(cut -d' ' -f1-3 /proc/loadavg)
for b in "${scripts[@]}"; do
  name=$(basename "$b" .bench.sh)
  echo "bench: $name$([ "$QUICK" = 1 ] && echo ' (quick)')"
  t0=$(now_ms)
  if "$b"; then :; else failed+=("$name"); fi
  times+=("$name $(( ($(now_ms) - t0) / 1000 )) s")
done
echo "bench: wall time $(( ($(now_ms) - start) / 1000 )) s ($(IFS=,; echo "${times[*]}" | sed 's/,/, /g'))"
echo "bench: results in $(bench_doc)"
# A run of every benchmark records its wall time in docs/benchmarks.md (also in quick mode: only
# this line, so both budgets stay checked).
if [ ${#names[@]} = 0 ]; then
  sec=wall-time title='`make bench`'
  [ "$QUICK" = 1 ] && sec=wall-time-quick title='`make bench-quick`'
  body=$(mktemp)
  total=$(( ($(now_ms) - start) / 1000 )) budget=900
  [ "$QUICK" = 1 ] && budget=120
  verdict="within"; [ "$total" -le "$budget" ] || verdict="**over**"
  {
    printf '### Wall time of %s\n\n' "$title"
    printf '%s s (%s) on %s, %s UTC, load average before the run %s: %s the %s s budget.' "$total" \
      "$(IFS=,; echo "${times[*]}" | sed 's/,/, /g')" "$(machine)" "$(date -u '+%Y-%m-%d %H:%M')" "$load" \
      "$verdict" "$budget"
    [ ${#failed[@]} = 0 ] || printf ' Failed: %s.' "${failed[*]}"
    echo
  } > "$body"
  BENCH_DOC="$REPO/docs/benchmarks.md" write_section "$sec" "$body"
  rm -f "$body"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
