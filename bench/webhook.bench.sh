#!/usr/bin/env bash
# graydebug-webhook over HTTPS on loopback: keep-alive throughput and latency with wrk at 1, 4 and
# 16 connections for 2, 16 and 64 KB AdmissionReviews, the server pinned to core 0 and wrk to
# core 1; plus the in-process cost (bench/admission_bench.cpp) beside its parse+dump floor.
# The controller-runtime peer and the nginx ceiling measured in the same run arrive with issue #10.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
RUNS=${RUNS:-3}
DURATION=${DURATION:-8s}
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
command -v wrk >/dev/null || { echo "bench: wrk is missing (make deps installs it)" >&2; exit 1; }
dir=$(mktemp -d /tmp/graydebug-bench-XXXXXX)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$dir/tls.key" \
  -out "$dir/tls.crt" -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 2>/dev/null
python3 - "$REPO/tests/fixtures/injector/simple-gray.pod.json" "$dir" <<'PY'
import json, sys
pod = json.load(open(sys.argv[1]))
for kb in (2, 16, 64):
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
              "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
                          "kind": {"group": "", "version": "v1", "kind": "Pod"},
                          "resource": {"group": "", "version": "v1", "resource": "pods"},
                          "namespace": "shop", "operation": "CREATE",
                          "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
                          "object": json.loads(json.dumps(pod))}}
    env = review["request"]["object"]["spec"]["containers"][0].setdefault("env", [])
    i = 0
    while len(json.dumps(review)) < kb * 1024:
        env.append({"name": f"FEATURE_FLAG_{i}", "value": "enabled-for-gray-release-v2-alpha"}); i += 1
    open(f"{sys.argv[2]}/review-{kb}.json", "w").write(json.dumps(review))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port)
taskset -c 0 "$BIN/graydebug-webhook" --listen="127.0.0.1:$port" --metrics-addr="127.0.0.1:$(free_port)" --threads=2 \
  --tls-cert-file="$dir/tls.crt" --tls-key-file="$dir/tls.key" --log-level=warn 2>"$dir/webhook.log" &
pid=$!
for _ in $(seq 100); do
  curl -sf --cacert "$dir/tls.crt" "https://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -sf --cacert "$dir/tls.crt" "https://127.0.0.1:$port/readyz" >/dev/null || { cat "$dir/webhook.log"; exit 1; }

: > "$dir/results"
for kb in 2 16 64; do
  cat > "$dir/post-$kb.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$dir/review-$kb.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA
  for conns in 1 4 16; do
    for run in $(seq "$RUNS"); do
      out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" --latency -s "$dir/post-$kb.lua" \
        "https://127.0.0.1:$port/mutate/pods" 2>&1)
      rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
      p50=$(echo "$out" | awk '$1=="50%" {print $2}')
      p99=$(echo "$out" | awk '$1=="99%" {print $2}')
      errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
      echo "{\"kb\":$kb,\"conns\":$conns,\"run\":$run,\"rps\":$rps,\"p50\":\"$p50\",\"p99\":\"$p99\",\"errors\":\"$errors\"}" | tee -a "$dir/results"
    done
  done
done
rss_kb=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
inproc=$(cd "$REPO" && taskset -c 0 "$BIN/admission_bench" tests/fixtures/injector/simple-gray.pod.json 5)

out=$(mktemp)
python3 - "$dir/results" "$RUNS" "$DURATION" "$(machine)" "$rss_kb" "$inproc" > "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
runs, duration, machine, rss_kb, inproc = sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
def ms(v):
    v = v.strip()
    for unit, f in (("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if v.endswith(unit):
            return float(v[: -len(unit)]) * f
    return float("nan")
print("## graydebug-webhook admission cost (bench/webhook.bench.sh)\n")
print(f"Machine: {machine}. Command: `make bench` (`RUNS={runs} DURATION={duration} bench/webhook.bench.sh`); "
      f"medians of {runs} runs. graydebug-webhook (2 handler threads) pinned to core 0, wrk (1 thread, keep-alive, "
      "TLS 1.3, ECDSA P-256) pinned to core 1, loopback. Bodies: a gray pod padded with env vars to 2, 16 and 64 KB.\n")
print("| body | connections | reviews/s | p50 (ms) | p99 (ms) | errors |")
print("|---|---|---|---|---|---|")
for kb in (2, 16, 64):
    for c in (1, 4, 16):
        rs = [r for r in rows if r["kb"] == kb and r["conns"] == c]
        err = "none" if not any(r["errors"].strip() for r in rs) else "; ".join(sorted({r["errors"].strip() for r in rs}))
        print(f"| {kb} KB | {c} | {statistics.median(r['rps'] for r in rs):,.0f} | "
              f"{statistics.median(ms(r['p50']) for r in rs):.2f} | {statistics.median(ms(r['p99']) for r in rs):.2f} | {err} |")
print(f"\nPeak resident memory of the webhook over the whole run: {rss_kb/1024:.1f} MiB.\n")
print("In process (`build/bin/admission_bench`, median of 5 runs, one core): decode + inject + encode, beside the floor "
      "of parsing and re-serialising the same body with nlohmann_json alone.\n")
print("| body | ns/op | allocations/op | parse+dump floor ns/op | floor allocations/op | ÷ floor |")
print("|---|---|---|---|---|---|")
for line in inproc.splitlines():
    r = json.loads(line)
    print(f"| {r['size_kb']} KB | {r['ns_per_op']:,.0f} | {r['allocs_per_op']:,.0f} | {r['parse_dump_ns']:,.0f} | "
          f"{r['parse_dump_allocs']:,.0f} | {r['ns_per_op']/r['parse_dump_ns']:.2f} |")
print("\nThe peers (a controller-runtime webhook doing the same injection, nginx returning a fixed reply as the "
      "ceiling) are measured in the same run from issue #10 on.")
PY
write_section webhook "$out"
cat "$out"
