#!/usr/bin/env bash
# graydebug-controller on the local control plane: DebugSessions from `kubectl create` to Active
# (N = 1, 100, 1000; one real attach each, through the real agent to a real dlv), and resident
# memory idle, then with 5000 injected pods and 1000 sessions cached. The controller-runtime peer
# measured in the same run arrives with issue #10.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
PODS=${PODS:-5000}
SIZES=${SIZES:-"1 100 1000"}
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
DLV="$("$REPO/hack/tools/bin-dir" dlv)/dlv"
KUBECTL="$("$REPO/hack/tools/bin-dir" kubernetes)/kubectl"
dir=$(mktemp -d /tmp/graydebug-bench-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  "$REPO/hack/cluster" down --dir "$dir/cluster" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
kc=$("$REPO/hack/cluster" up --dir "$dir/cluster" --owner-pid $$ 2>/dev/null)
k() { "$KUBECTL" --kubeconfig "$kc" "$@"; }
k apply -f "$REPO/manifests/crds/graydebug.io_debugsessions.yaml" >/dev/null
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s >/dev/null
k create namespace shop >/dev/null

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
app_port=$(free_port); dlv_port=$(free_port); agent_port=$(free_port)
"$BIN/leaky-app" --listen "127.0.0.1:$app_port" 2>"$dir/app.log" & app=$!; pids+=($app)
"$BIN/graydebug-agent" launch-dlv --dlv-path="$DLV" --target-pid="$app" --listen="127.0.0.1:$dlv_port" 2>"$dir/launcher.log" & pids+=($!)
"$BIN/graydebug-agent" --listen="127.0.0.1:$agent_port" --dlv-addr="127.0.0.1:$dlv_port" --target-pid="$app" --log-level=warn 2>"$dir/agent.log" & pids+=($!)
for _ in $(seq 200); do curl -sf "http://127.0.0.1:$agent_port/probe/dlv" >/dev/null 2>&1 && break; sleep 0.1; done
python3 - "$agent_port" "$dlv_port" > "$dir/pod.json" <<'PY'
import json, sys
agent, dlv = int(sys.argv[1]), int(sys.argv[2])
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "order-v2-alpha-1", "namespace": "shop",
               "labels": {"app": "order", "version": "v2-alpha", "graydebug.io/injected": "true"},
               "annotations": {"graydebug.io/status": json.dumps({"dlvPort": dlv, "agentPort": agent})}},
  "spec": {"containers": [{"name": "order", "image": "order"}, {"name": "dlv-server", "image": "graydebug"},
           {"name": "graydebug-agent", "image": "graydebug", "ports": [{"name": "gd-agent", "containerPort": agent}]}]}}))
PY
k create -f "$dir/pod.json" >/dev/null
k patch pod -n shop order-v2-alpha-1 --subresource=status --type=merge \
  -p '{"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}}' >/dev/null

mport=$(free_port)
"$BIN/graydebug-controller" --kubeconfig="$kc" --metrics-addr="127.0.0.1:$mport" --health-addr="127.0.0.1:$(free_port)" \
  --workers=4 --log-level=warn 2>"$dir/controller.log" & ctl=$!; pids+=($ctl)
sleep 3
rss() { awk '/VmRSS/ {print $2}' "/proc/$ctl/status"; }
rss_idle=$(rss)

active() { curl -sf "http://127.0.0.1:$mport/metrics" | awk '/^debug_session_active\{/ {s += $2} END {print s + 0}'; }
: > "$dir/results"
for n in $SIZES; do
  python3 - "$n" > "$dir/sessions-$n.json" <<'PY'
import json, sys
n = int(sys.argv[1])
items = [{"apiVersion": "graydebug.io/v1alpha1", "kind": "DebugSession",
          "metadata": {"name": f"s{n}-{i}", "namespace": "shop"},
          "spec": {"target": {"pod": "order-v2-alpha-1"}, "ttl": "4h"}} for i in range(n)]
print(json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))
PY
  t0=$(now_ms)
  k create -f "$dir/sessions-$n.json" >/dev/null
  while [ "$(active)" -lt "$n" ]; do sleep 0.05; done
  t1=$(now_ms)
  echo "{\"n\":$n,\"ms\":$((t1 - t0))}" | tee -a "$dir/results"
  [ "$n" = "1000" ] && rss_sessions=$(rss)
  [ "$n" != "1000" ] && k delete debugsessions -n shop --all --wait=true >/dev/null
  while [ "$n" != "1000" ] && [ "$(active)" -ne 0 ]; do sleep 0.1; done
done
rss_sessions=${rss_sessions:-$(rss)}
"$BIN/informer_bench" --kubeconfig "$kc" --namespace pods --count "$PODS" --create 1
sleep 5
rss_full=$(rss)

out=$(mktemp)
python3 - "$dir/results" "$rss_idle" "$rss_sessions" "$rss_full" "$PODS" "$(machine)" "$SIZES" > "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
idle, sessions, full, pods, machine, sizes = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
print("## graydebug-controller (bench/controller.bench.sh)\n")
print(f"Machine: {machine}. Command: `make bench` (`SIZES=\"{sizes}\" PODS={pods} bench/controller.bench.sh`), one run. "
      "Local kube-apiserver v1.37.2 + etcd; 4 workers; each session does one real attach (controller -> agent "
      "/probe/dlv -> dlv GetVersion) on one local gray pod; timed from `kubectl create -f` of the whole list "
      "to `debug_session_active` summing to N.\n")
print("| sessions created at once | create -> all Active (s) | sessions/s |")
print("|---|---|---|")
for r in rows:
    print(f"| {r['n']} | {r['ms']/1000:.2f} | {r['n']/(r['ms']/1000):.0f} |")
print(f"\nResident memory: idle (informers synced, 1 pod) {idle/1024:.1f} MiB; with 1000 Active sessions "
      f"{sessions/1024:.1f} MiB; plus {pods} injected pods cached {full/1024:.1f} MiB.\n")
print("The controller-runtime peer watching the same objects is measured in the same run from issue #10 on.")
PY
write_section controller "$out"
cat "$out"
