#!/usr/bin/env bash
# Issue #18: JSON decoders on graydebug's two hot paths, side by side in one run on the same bytes
# (bench/json_decode_bench.cpp): the ~2 KB AdmissionReview and a 500-pod list page, decoded by
# nlohmann_json's DOM (today's code: the peer), nlohmann with a filtering callback, simdjson's DOM
# and simdjson On-Demand. Pinned to one core; each invocation prints the median of 5 runs, and the
# table shows the median (min–max) of RUNS invocations.
#
#   RUNS=3 bench/decoders.bench.sh      (QUICK=1: 1 invocation)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-1}; fi
RUNS=${RUNS:-3}
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
if [ ! -x "$BIN/json_decode_bench" ]; then
  echo "decoders: $BIN/json_decode_bench is not built (libsimdjson-dev missing? make deps installs it)" >&2
  exit 1
fi
raw=$(mktemp); out=$(mktemp)
trap 'rm -f "$raw" "$out"' EXIT
for _ in $(seq "$RUNS"); do
  (cd "$REPO" && taskset -c 0 "$BIN/json_decode_bench" tests/fixtures/injector/simple-gray.pod.json 5) >>"$raw"
done
python3 - "$raw" "$RUNS" "$(machine)" "$(dpkg-query -W -f='${Version}' libsimdjson-dev)" \
  "$(dpkg-query -W -f='${Version}' nlohmann-json3-dev)" >"$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs, machine, simd, nl = sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
print("## JSON decoders on the hot paths (bench/decoders.bench.sh)\n")
print(f"Machine: {machine}. Command: `make bench` (`RUNS={runs} bench/decoders.bench.sh`): "
      f"`build/bin/json_decode_bench` pinned to one core, median of 5 runs per invocation, median (min–max) of "
      f"{runs} invocations. nlohmann_json {nl}, simdjson {simd} (Debian). Each decoder reads the same fields and "
      "the run checks that they all read the same values. simdjson's time includes copying the body into its "
      "padded buffer. The peer is today's decoder, nlohmann's DOM.\n")
paths = {"admission": "AdmissionReview of a gray pod ({b:,} bytes): apiVersion, uid, kind, subResource, operation, namespace, dryRun, the pod's labels and annotations",
         "informer": "PodList page of 500 injected pods ({b:,} bytes): name, namespace, resourceVersion, uid, labels, the injection annotation, phase, podIP, container names"}
for path, what in paths.items():
    sel = [r for r in rows if r["path"] == path]
    decs = list(dict.fromkeys(r["decoder"] for r in sel))
    base = statistics.median(r["ns_per_op"] for r in sel if r["decoder"] == "nlohmann-dom")
    print(f"**{path}**: " + what.format(b=sel[0]["bytes"]) + "\n")
    print("| decoder | µs/op | allocations/op | ÷ nlohmann DOM |")
    print("|---|---|---|---|")
    for d in decs:
        ns = [r["ns_per_op"] for r in sel if r["decoder"] == d]
        al = statistics.median(r["allocs_per_op"] for r in sel if r["decoder"] == d)
        m = statistics.median(ns)
        print(f"| {d} | {m/1000:.2f} ({min(ns)/1000:.2f}–{max(ns)/1000:.2f}) | {al:,.0f} | {m/base:.3f} |")
    print()
PY
write_section decoders "$out"
cat "$out"
