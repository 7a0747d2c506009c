#!/usr/bin/env bash
# graydebug on the real node (hack/node: kubelet, containerd, runc, CNI), what a user waits for:
#   1. `helm install --wait` of the chart in-cluster until every pod is Ready;
#   2. the example gray Deployment applied until its pod is Ready, with graydebug's sidecars and
#      without them (the same Deployment without the inject label: the peer);
#   3. `kubectl graydebug attach deploy/NAME` until the session is Active, and until the first dlv
#      reply through its port-forward, beside what users do without graydebug (the peer):
#      `kubectl debug --profile=general --target=order` with an ephemeral container running
#      `dlv attach 1 --headless` from the same image, `kubectl port-forward`, the first dlv reply.
# Each figure is the median of RUNS runs (min–max), with and without graydebug interleaved.
#
#   RUNS=5 bench/node.bench.sh        (QUICK=1: 1 run). Needs root; starts the node unless it runs
#                                     (and then takes it down again at the end).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_REPO=$REPO
. "$REPO/tests/e2e/lib.sh"
REPO=$BENCH_REPO
if [ "$QUICK" = 1 ]; then RUNS=${RUNS:-1}; fi
RUNS=${RUNS:-5}
[ "$(id -u)" = 0 ] || { echo "bench node: needs root (the node's namespaces)" >&2; exit 1; }
dir=$(mktemp -d /tmp/graydebug-bench-node-XXXXXX)
started_node=0
cleanup() {
  stop_bg "${BG_PIDS[@]}"
  k delete namespace bench-gray bench-plain --wait=false >/dev/null 2>&1 || true
  if [ "$started_node" = 1 ]; then "$REPO/hack/node" down --dir "$NODE_DIR" >/dev/null 2>&1 || true; fi
  [ -n "${KEEP_DIR:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export HELM_CONFIG_HOME="$dir/helm/config" HELM_CACHE_HOME="$dir/helm/cache" HELM_DATA_HOME="$dir/helm/data"

"$REPO/hack/node" status --dir "$NODE_DIR" >/dev/null 2>&1 || started_node=1
"$REPO/hack/node" up --dir "$NODE_DIR" >/dev/null 2>"$dir/node-up.log" || { cat "$dir/node-up.log" >&2; exit 1; }
tars=$("$REPO/hack/images.sh" build 2>"$dir/images.log") || { cat "$dir/images.log" >&2; exit 1; }
"$REPO/hack/node" import --dir "$NODE_DIR" $tars >/dev/null
node_exec "$(tool_bindir containerd)/ctr" --address "$NODE_DIR/containerd/containerd.sock" -n k8s.io images tag --force \
  "$APP_IMAGE" "$EXAMPLE_IMAGE" >/dev/null
GRAYDEBUG_IMAGE=docker.io/$IMAGE_REPO:$IMAGE_TAG
load=$(cut -d' ' -f1-3 /proc/loadavg)
begin=$(date -u '+%Y-%m-%d %H:%M')

ms_since() { echo $(( $(now_ms) - $1 )); }
poll() {  # seconds command...: every 50 ms until it succeeds
  local end=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do [ $SECONDS -lt "$end" ] || return 1; sleep 0.05; done
}
gone() { [ -z "$(k -n "$1" get pods -l "$2" -o name 2>/dev/null)" ]; }
dlv_replies() {  # port: one JSON-RPC GetVersion answered
  python3 - "$1" <<'PY'
import json, socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 2)
s.settimeout(2)
s.sendall(b'{"method":"RPCServer.GetVersion","params":[{}],"id":1}\n')
buf = b""
while not buf.endswith(b"\n"):
    chunk = s.recv(4096)
    if not chunk:
        sys.exit(1)
    buf += chunk
sys.exit(0 if json.loads(buf).get("result", {}).get("DelveVersion") else 1)
PY
}
# With graydebug's Deployment (gray) and the same Deployment without the inject label (plain).
manifest() {  # ns gray|plain
  if [ "$2" = gray ]; then
    sed "s/^  namespace: shop$/  namespace: $1/" "$REPO/manifests/examples/gray-deployment.yaml"
  else
    sed "s/^  namespace: shop$/  namespace: $1/; /graydebug.io\/inject:/d" "$REPO/manifests/examples/gray-deployment.yaml"
  fi
}
: > "$dir/results"
record() { echo "$1 $2" >> "$dir/results"; }

# --- 1. helm install → Ready ----------------------------------------------------------------------
for run in $(seq "$RUNS"); do
  "$HELM" uninstall "$RELEASE" -n "$RELEASE_NS" --wait >/dev/null 2>&1 || true
  poll 120 gone "$RELEASE_NS" app.kubernetes.io/instance=$RELEASE
  t0=$(now_ms)
  helm_install > "$dir/helm.log" 2>&1 || { cat "$dir/helm.log" >&2; exit 1; }
  record helm_install_ms "$(ms_since "$t0")"
done

# --- 2. Deployment apply → pod Ready, with and without graydebug -----------------------------------
fresh_ns bench-gray
fresh_ns bench-plain
for run in $(seq "$RUNS"); do
  for kind in gray plain; do
    ns=bench-$kind
    t0=$(now_ms)
    manifest "$ns" "$kind" | k apply -f - >/dev/null
    poll 180 pods_ready "$ns" app=order 1 || { echo "bench node: $kind pod not Ready" >&2; exit 1; }
    record "pod_ready_${kind}_ms" "$(ms_since "$t0")"
    k -n "$ns" delete deploy order-v2-alpha --wait=false >/dev/null
    poll 180 gone "$ns" app=order
  done
done

# --- 3. attach → Active → first dlv reply, graydebug and kubectl debug -----------------------------
manifest bench-gray gray | k apply -f - >/dev/null
poll 180 pods_ready bench-gray app=order 1
cat > "$dir/root.json" <<'JSON'
{"securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": false}}
JSON
for run in $(seq "$RUNS"); do
  # graydebug: one command; Active, then the port-forward (it checks dlv through it), then a reply.
  port=$(free_port)
  t0=$(now_ms)
  start_bg kubectl graydebug attach deploy/order-v2-alpha -n bench-gray --local-port "$port" --ttl 5m \
    --reason bench >"$dir/attach.log" 2>&1
  attach=$BG_PID
  poll 120 grep -q 'is Active on pod' "$dir/attach.log" || { cat "$dir/attach.log" >&2; exit 1; }
  record attach_active_ms "$(ms_since "$t0")"
  poll 120 dlv_replies "$port" || { cat "$dir/attach.log" >&2; exit 1; }
  record attach_reply_ms "$(ms_since "$t0")"
  kill -INT "$attach" 2>/dev/null || true
  stop_bg "$attach"
  poll 60 sh -c "[ -z \"\$(kubectl -n bench-gray get debugsessions -o name)\" ]" || true

  # The peer: a fresh plain pod each run (an ephemeral container cannot be removed, and a second dlv
  # cannot attach beside the first).
  k -n bench-plain delete deploy order-v2-alpha --wait=false >/dev/null 2>&1 || true
  poll 180 gone bench-plain app=order
  manifest bench-plain plain | k apply -f - >/dev/null
  poll 180 pods_ready bench-plain app=order 1
  pod=$(newest_pod bench-plain app=order)
  dport=$(free_port) lport=$(free_port)
  t0=$(now_ms)
  k -n bench-plain debug "pod/$pod" --profile=general --target=order --image="$GRAYDEBUG_IMAGE" \
    --image-pull-policy=Never --custom="$dir/root.json" --container=dlv -- \
    dlv attach 1 --headless --listen="127.0.0.1:$dport" --accept-multiclient --api-version=2 \
    --only-same-user=false >"$dir/debug.log" 2>&1 || { cat "$dir/debug.log" >&2; exit 1; }
  poll 120 sh -c "[ -n \"\$(kubectl -n bench-plain get pod $pod -o jsonpath='{.status.ephemeralContainerStatuses[?(@.name==\"dlv\")].state.running}')\" ]" ||
    { k -n bench-plain describe pod "$pod" | tail -n 20 >&2; exit 1; }
  record debug_running_ms "$(ms_since "$t0")"
  start_bg kubectl -n bench-plain port-forward "pod/$pod" "$lport:$dport" >"$dir/pf.log" 2>&1
  pf=$BG_PID
  poll 120 dlv_replies "$lport" || { cat "$dir/pf.log" >&2; k -n bench-plain logs "$pod" -c dlv >&2 || true; exit 1; }
  record debug_reply_ms "$(ms_since "$t0")"
  stop_bg "$pf"
done

out=$(mktemp)
python3 - "$dir/results" "$RUNS" "$(machine)" "$begin" "$load" >"$out" <<'PY'
import collections, statistics, sys
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    k, v = line.split()
    rows[k].append(int(v) / 1000)
runs, machine, begin, load = sys.argv[2:6]
def cell(k):
    v = rows[k]
    return f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
def med(k):
    return statistics.median(rows[k])
print("### The real node: install, pod start, attach (bench/node.bench.sh)\n")
print(f"{begin} UTC, {machine}, load average before {load}; median of {runs} runs (min–max), seconds, "
      "measured from the command to the state, polled every 50 ms with kubectl (each poll costs about as "
      "much for both columns). The node: hack/node (kubelet, containerd, runc, CNI, CoreDNS in a network "
      "namespace), images from make images, the chart in-cluster with 2 webhook and 2 controller replicas.\n")
print("| what a user waits for | graydebug | peer (without graydebug) | ratio |")
print("|---|---|---|---|")
print(f"| `helm install --wait` → every pod Ready | {cell('helm_install_ms')} | | |")
print(f"| gray Deployment applied → pod Ready (peer: the same Deployment, not selected) | {cell('pod_ready_gray_ms')} | "
      f"{cell('pod_ready_plain_ms')} | {med('pod_ready_gray_ms') / med('pod_ready_plain_ms'):.2f} |")
print(f"| `kubectl graydebug attach deploy/…` → session Active (peer: `kubectl debug` → dlv container running) | "
      f"{cell('attach_active_ms')} | {cell('debug_running_ms')} | {med('attach_active_ms') / med('debug_running_ms'):.2f} |")
print(f"| … → first dlv reply through the port-forward (peer: `kubectl debug`, `kubectl port-forward`) | "
      f"{cell('attach_reply_ms')} | {cell('debug_reply_ms')} | {med('attach_reply_ms') / med('debug_reply_ms'):.2f} |")
print("\nThe peer is what users do without graydebug: `kubectl debug --profile=general --target=order "
      "--custom` (root, so dlv may ptrace the app) with an ephemeral container from the same image running "
      "`dlv attach 1 --headless --accept-multiclient`, then `kubectl port-forward` to its loopback port. It "
      "needs a fresh pod per run (an ephemeral container stays in the pod for good, and a second dlv cannot "
      "attach beside the first); graydebug's dlv is already attached when the pod starts, so its attach is a "
      "DebugSession plus a probe. A pod with graydebug starts three containers instead of one: that is the "
      "pod-start cost above.")
PY
write_section node "$out"
cat "$out"
