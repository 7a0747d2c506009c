#!/usr/bin/env bash
# graydebug-agent: /probe/dlv round trip (agent -> dlv GetVersion -> back, as the controller sees
# it) beside the floor measured in the same run (the same GetVersion sent straight to dlv), and the
# agent's resident memory and CPU while Prometheus-style scraped every second.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PROBES=${PROBES:-150}
SCRAPE_SECONDS=${SCRAPE_SECONDS:-30}
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
DLV="$("$REPO/hack/tools/bin-dir" dlv)/dlv"
dir=$(mktemp -d /tmp/graydebug-bench-XXXXXX)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$dir"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
app_port=$(free_port); dlv_port=$(free_port); agent_port=$(free_port)
"$BIN/leaky-app" --listen "127.0.0.1:$app_port" 2>"$dir/app.log" & app=$!; pids+=($app)
"$BIN/graydebug-agent" launch-dlv --dlv-path="$DLV" --target-pid="$app" --listen="127.0.0.1:$dlv_port" \
  2>"$dir/launcher.log" & pids+=($!)
"$BIN/graydebug-agent" --listen="127.0.0.1:$agent_port" --dlv-addr="127.0.0.1:$dlv_port" --target-pid="$app" \
  --expvar-url="http://127.0.0.1:$app_port/debug/vars" --sample-interval=1s --log-level=warn 2>"$dir/agent.log" &
agent=$!; pids+=($agent)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$agent_port/probe/dlv" >/dev/null 2>&1 && break; sleep 0.1; done

python3 - "$agent_port" "$dlv_port" "$PROBES" > "$dir/latency.json" <<'PY'
import json, socket, statistics, sys, time, urllib.request
agent_port, dlv_port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def direct():
    t = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", dlv_port), 5)
    s.sendall(b'{"method":"RPCServer.GetVersion","params":[{}],"id":1}\n')
    buf = b""
    while not buf.endswith(b"\n"):
        buf += s.recv(65536)
    s.close()
    return time.perf_counter() - t
def probe():
    t = time.perf_counter()
    body = json.load(urllib.request.urlopen(f"http://127.0.0.1:{agent_port}/probe/dlv", timeout=5))
    return time.perf_counter() - t, body
agent_ms, direct_ms, cached = [], [], 0
for i in range(n):
    time.sleep(0.11)  # past the agent's 100 ms result reuse: every probe is a real dlv call
    d, body = probe()
    if body.get("cached") or body.get("shared"):
        cached += 1
        continue
    agent_ms.append(d * 1000)
    direct_ms.append(direct() * 1000)
def p(v, q): return sorted(v)[min(len(v) - 1, int(q * len(v)))]
print(json.dumps({"n": len(agent_ms), "cached": cached,
                  "agent_p50": statistics.median(agent_ms), "agent_p99": p(agent_ms, 0.99),
                  "direct_p50": statistics.median(direct_ms), "direct_p99": p(direct_ms, 0.99)}))
PY
ticks() { awk '{print $14 + $15}' "/proc/$agent/stat"; }
t0=$(ticks)
for _ in $(seq "$SCRAPE_SECONDS"); do curl -sf "http://127.0.0.1:$agent_port/metrics" >/dev/null; sleep 1; done
t1=$(ticks)
rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$agent/status")
hwm_kb=$(awk '/VmHWM/ {print $2}' "/proc/$agent/status")
hz=$(getconf CLK_TCK)
out=$(mktemp)
python3 - "$dir/latency.json" "$rss_kb" "$hwm_kb" "$t0" "$t1" "$hz" "$SCRAPE_SECONDS" "$(machine)" "$PROBES" > "$out" <<'PY'
import json, sys
lat = json.load(open(sys.argv[1]))
rss, hwm, t0, t1, hz, secs, machine, probes = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), sys.argv[8], sys.argv[9]
cpu = (t1 - t0) / hz / secs * 100
print("## graydebug-agent (bench/agent.bench.sh)\n")
print(f"Machine: {machine}. Command: `make bench` (`PROBES={probes} SCRAPE_SECONDS={secs} bench/agent.bench.sh`). "
      "The real leaky app with the pinned dlv v1.27.2 attached by `launch-dlv`; probes 110 ms apart so each one is a "
      "real dlv call (past the agent's 100 ms reuse); the floor is the same GetVersion sent straight to dlv, "
      "measured right after each probe in the same run.\n")
print("| | p50 (ms) | p99 (ms) |")
print("|---|---|---|")
print(f"| `GET /probe/dlv` through the agent ({lat['n']} probes) | {lat['agent_p50']:.2f} | {lat['agent_p99']:.2f} |")
print(f"| GetVersion straight to dlv (floor) | {lat['direct_p50']:.2f} | {lat['direct_p99']:.2f} |")
print(f"| agent ÷ floor | {lat['agent_p50']/lat['direct_p50']:.2f} | {lat['agent_p99']/lat['direct_p99']:.2f} |")
print(f"\nWhile scraped every second for {secs} s (sampling the app every second, expvar on, a dlv probe "
      f"every 15 s): resident memory {rss/1024:.1f} MiB (peak {hwm/1024:.1f} MiB), CPU {cpu:.2f} % of one core.")
PY
write_section agent "$out"
cat "$out"
