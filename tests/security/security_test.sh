#!/usr/bin/env bash
# Security checks of issue #11 against the real parts: graydebug installed with its Helm chart
# (webhook.url mode) on a local kube-apiserver, the webhook and controller running with their
# ServiceAccounts' tokens at debug log level, and a gray pod's sidecars running here against the
# demo app with a real dlv.
#
#   tests/security/security_test.sh          (CTest: `ctest -R security`)
#
# Checks: the webhook's TLS (sslscan: TLS 1.2+ only, ECDHE + AEAD ciphers only); what the injected
# sidecars may do (no host port, no host network, dlv on loopback whatever the pod asks); that the
# agent's dlv probe cannot be pointed anywhere else; that spec.requestedBy cannot be forged on
# create or update; the request body limit on every endpoint of every server; and that no token,
# private key or Authorization header reaches any log. One line per check, then
# "security: N passed, N failed, N skipped"; exits non-zero when any failed.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/tools/common.sh"
. "$REPO/tests/support/checks.sh"
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
PEAK_LIMIT_KIB=131072                                   # 128 MiB
[ -n "${GRAYDEBUG_SANITIZE:-}" ] && PEAK_LIMIT_KIB=1048576  # 1 GiB under ASan/TSan
HELM="$(tool_bindir helm)/helm"
KUBECTL="$(tool_bindir kubernetes)/kubectl"
NS=graydebug-system
WORK=$(mktemp -d "${TMPDIR:-/tmp}/graydebug-security-test.XXXXXX")
CLUSTER_DIR=$WORK/cluster
CHECKS_NAME=security
export HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data"
unset KUBECONFIG
trap checks_cleanup EXIT
trap 'exit 130' INT TERM

for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug leaky-app; do
  [ -x "$BIN/$b" ] || { echo "FAIL - $BIN/$b is not built (make build, or set GRAYDEBUG_BIN)"; exit 1; }
done
for t in "$HELM" "$KUBECTL" "$(tool_bindir dlv)/dlv"; do
  [ -x "$t" ] || { echo "FAIL - $t is not built; run: make deps"; exit 1; }
done
command -v sslscan >/dev/null || { echo "FAIL - sslscan is missing (make deps installs it)"; exit 1; }
mkdir -p "$WORK/bin" "$WORK/run"
for b in graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug leaky-app; do cp "$BIN/$b" "$WORK/bin/"; done
cp "$(tool_bindir dlv)/dlv" "$WORK/bin/dlv"
R=$WORK/run

if ! KUBECONFIG=$("$REPO/hack/cluster" up --dir "$CLUSTER_DIR" --owner-pid $$ 2>"$WORK/cluster-up.log"); then
  echo "FAIL - local cluster did not start:"; sed 's/^/       /' "$WORK/cluster-up.log"; exit 1
fi
export KUBECONFIG
k() { "$KUBECTL" "$@"; }
WH_PORT=$(free_port); WH_METRICS=$(free_port); CTL_METRICS=$(free_port); CTL_HEALTH=$(free_port)
DLV_PORT=$(free_port); AGENT_PORT=$(free_port); APP_PORT=$(free_port)
URL="https://127.0.0.1:$WH_PORT"
k create namespace shop >/dev/null
"$HELM" install graydebug "$REPO/charts/graydebug" -n "$NS" --create-namespace --set "webhook.url=$URL" \
  --set "injection.dlv.port=$DLV_PORT" --set "injection.agent.port=$AGENT_PORT" > "$WORK/helm-install.txt"
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s >/dev/null
chart_files "$KUBECTL" "$NS" "$R"

# Everything at debug level: the most a log can say.
POD_NAMESPACE=$NS "$WORK/bin/graydebug-webhook" --listen="127.0.0.1:$WH_PORT" --metrics-addr="127.0.0.1:$WH_METRICS" \
  --tls-cert-file="$R/tls.crt" --tls-key-file="$R/tls.key" --config="$R/webhook.yaml" \
  --kubeconfig="$R/webhook.kubeconfig" --circuits-namespace="$NS" --log-level=debug 2> "$R/webhook.log" &
pids+=($!)
POD_NAMESPACE=$NS "$WORK/bin/graydebug-controller" --kubeconfig="$R/controller.kubeconfig" \
  --metrics-addr="127.0.0.1:$CTL_METRICS" --health-addr="127.0.0.1:$CTL_HEALTH" --config="$R/controller.yaml" \
  --lease-namespace="$NS" --log-level=debug 2> "$R/controller.log" &
pids+=($!)
wait_until 30 curl -sf --cacert "$R/ca.crt" "$URL/readyz" || { echo "FAIL - webhook not ready"; tail "$R/webhook.log"; exit 1; }
wait_until 30 curl -sf "http://127.0.0.1:$CTL_HEALTH/readyz" || { echo "FAIL - controller not ready"; tail "$R/controller.log"; exit 1; }

gray_pod() { # NAME [extra JSON merged into the pod]: a gray pod's JSON
  python3 - "$1" "${2:-{\}}" <<'PY'
import json, sys
pod = {"apiVersion": "v1", "kind": "Pod",
       "metadata": {"name": sys.argv[1], "namespace": "shop",
                    "labels": {"app": "order", "version": "v2-alpha", "graydebug.io/inject": "true"}},
       "spec": {"containers": [{"name": "order", "image": "shop/order:v2"}]}}
def merge(a, b):
    for k, v in b.items():
        a[k] = merge(a.get(k, {}), v) if isinstance(v, dict) and isinstance(a.get(k), dict) else v
    return a
print(json.dumps(merge(pod, json.loads(sys.argv[2]))))
PY
}
injected() { gray_pod probe | k create --dry-run=server -f - -o jsonpath='{.spec.containers[*].name}' | grep -q dlv-server; }
wait_until 30 injected || { echo "FAIL - the API server never called the webhook"; exit 1; }

# --- TLS ------------------------------------------------------------------------------------------
tls_scan() {
  sslscan --no-colour --xml="$R/sslscan.xml" "127.0.0.1:$WH_PORT" > "$R/sslscan.txt" 2>&1 || { cat "$R/sslscan.txt"; return 1; }
  python3 - "$R/sslscan.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
t = root.find("ssltest")
assert t is not None, "sslscan found no TLS service"
problems = []
protocols = {f'{p.get("type")}v{p.get("version")}': p.get("enabled") == "1" for p in t.iter("protocol")}
for name, on in protocols.items():
    want = name in ("tlsv1.2", "tlsv1.3")
    if on != want:
        problems.append(f"{name} {'enabled' if on else 'disabled'}")
ciphers = [(c.get("sslversion"), c.get("cipher")) for c in t.iter("cipher") if c.get("status") in ("accepted", "preferred")]
if not ciphers:
    problems.append("no cipher accepted")
for version, name in ciphers:
    aead = any(x in name for x in ("GCM", "CHACHA20", "CCM"))
    forward_secret = version == "TLSv1.3" or "ECDHE" in name
    if not (aead and forward_secret):
        problems.append(f"{version} {name} is not ECDHE with AEAD")
for c in t.iter("compression"):
    if c.get("supported") == "1":
        problems.append("TLS compression supported")
for r in t.iter("renegotiation"):
    if r.get("supported") == "1" and r.get("secure") != "1":
        problems.append("insecure renegotiation")
for h in t.iter("heartbleed"):
    if h.get("vulnerable") == "1":
        problems.append(f"heartbleed {h.get('sslversion')}")
if problems:
    sys.exit("; ".join(problems))
print(f"protocols {sorted(p for p, on in protocols.items() if on)}; {len(ciphers)} ciphers: "
      + ", ".join(sorted({n for _, n in ciphers})))
PY
}
check "webhook TLS (sslscan): only TLS 1.2 and 1.3; every accepted cipher ECDHE (or TLS 1.3) with AEAD; no compression, no insecure renegotiation" tls_scan
tls_refusals() {
  fails openssl s_client -connect "127.0.0.1:$WH_PORT" -tls1_1 -CAfile "$R/ca.crt" </dev/null &&
    fails openssl s_client -connect "127.0.0.1:$WH_PORT" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA -CAfile "$R/ca.crt" </dev/null &&
    openssl s_client -connect "127.0.0.1:$WH_PORT" -tls1_2 -CAfile "$R/ca.crt" -verify_return_error </dev/null >/dev/null 2>&1
}
check "openssl s_client: TLS 1.1 refused, a TLS 1.2 CBC cipher refused, TLS 1.2 with the chart's CA verified" tls_refusals

# --- what injected sidecars may do ---------------------------------------------------------------
injection_safe() {
  local name extra out=$R/injected
  mkdir -p "$out"
  while IFS='|' read -r name extra; do
    gray_pod "$name" "$extra" | k create --dry-run=server -f - -o json > "$out/$name.json" 2> "$out/$name.err" ||
      { echo "$name: $(cat "$out/$name.err")"; return 1; }
  done <<CASES
plain|{}
app-host-port|{"spec": {"containers": [{"name": "order", "image": "shop/order:v2", "ports": [{"containerPort": 8080, "hostPort": 8080}]}]}}
host-network|{"spec": {"hostNetwork": true}}
dlv-port-all-interfaces|{"metadata": {"annotations": {"graydebug.io/dlv-port": "0.0.0.0:2345"}}}
dlv-port-flag-smuggling|{"metadata": {"annotations": {"graydebug.io/dlv-port": "2345 --listen=0.0.0.0:2345"}}}
dlv-port-custom|{"metadata": {"annotations": {"graydebug.io/dlv-port": "40123"}}}
CASES
  python3 - "$out" "$DLV_PORT" <<'PY'
import json, os, sys
out, dlv_port = sys.argv[1], sys.argv[2]
problems = []
pods = {f[:-5]: json.load(open(os.path.join(out, f))) for f in os.listdir(out) if f.endswith(".json")}
for name, pod in sorted(pods.items()):
    spec = pod["spec"]
    added = [c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] in ("dlv-server", "graydebug-agent")]
    if name == "host-network":
        if added:
            problems.append("host-network: injected (dlv would listen on the node's loopback)")
        continue
    if not added and name.startswith("dlv-port-") and name != "dlv-port-custom":
        continue  # an address where a port belongs: refused (not injected) is as safe as loopback
    if not added:
        problems.append(f"{name}: not injected")
        continue
    for c in added:
        for p in c.get("ports", []):
            if p.get("hostPort") or p.get("hostIP"):
                problems.append(f"{name}: {c['name']} opens host port {p}")
        sc = c.get("securityContext", {})
        if sc.get("privileged") or sc.get("allowPrivilegeEscalation", True):
            problems.append(f"{name}: {c['name']} may be privileged or escalate")
        caps = sc.get("capabilities", {})
        if "ALL" not in caps.get("drop", []) or set(caps.get("add", [])) - ({"SYS_PTRACE"} if c["name"] == "dlv-server" else set()):
            problems.append(f"{name}: {c['name']} capabilities {caps}")
    dlv = next(c for c in added if c["name"] == "dlv-server")
    listens = [a for a in dlv.get("args", []) + dlv.get("command", []) if "listen" in a or "0.0.0.0" in a or "--" in a and "=" in a and ":" in a]
    if not listens or any(not a.startswith("--listen=127.0.0.1:") for a in listens if "listen" in a) or any("0.0.0.0" in a for a in listens):
        problems.append(f"{name}: dlv args {dlv.get('args')}")
    if name == "dlv-port-custom" and "--listen=127.0.0.1:40123" not in dlv["args"]:
        problems.append(f"{name}: the annotation's port was not used: {dlv['args']}")
    if spec.get("hostNetwork") or spec.get("hostPID"):
        problems.append(f"{name}: host namespaces in the injected pod")
if problems:
    sys.exit("\n".join(problems))
print(f"{len(pods)} pods: no host port, dlv on 127.0.0.1 only, no privilege beyond SYS_PTRACE for dlv")
PY
}
check "injected sidecars: no host port, no host network, only SYS_PTRACE (dlv), dlv on 127.0.0.1 whatever graydebug.io/dlv-port says" injection_safe

# --- the agent's probe reaches the pod's dlv and nothing else ------------------------------------
"$WORK/bin/leaky-app" --listen "127.0.0.1:$APP_PORT" 2> "$R/leaky-app.log" &
APP=$!; pids+=($APP)
"$WORK/bin/graydebug-agent" launch-dlv --listen="127.0.0.1:$DLV_PORT" --dlv-path="$WORK/bin/dlv" --target-pid="$APP" \
  --log-level=debug > "$R/dlv.log" 2>&1 &
pids+=($!)
"$WORK/bin/graydebug-agent" --listen="127.0.0.1:$AGENT_PORT" --dlv-addr="127.0.0.1:$DLV_PORT" --target-pid="$APP" \
  --expvar-url="http://127.0.0.1:$APP_PORT/debug/vars" --log-level=debug 2> "$R/agent.log" &
pids+=($!)
wait_until 60 curl -sf "http://127.0.0.1:$AGENT_PORT/probe/dlv" || { echo "FAIL - the agent's probe never answered"; tail "$R/dlv.log" "$R/agent.log"; exit 1; }
probe_pinned() {
  local trap_port hits
  trap_port=$(free_port)
  # A listener that counts connections: the place an attacker would point the probe.
  python3 - "$trap_port" "$R/trap.count" <<'PY' &
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(16); s.settimeout(20)
n = 0
open(sys.argv[2], "w").write("0")
try:
    while True:
        c, _ = s.accept(); n += 1; open(sys.argv[2], "w").write(str(n)); c.close()
except socket.timeout:
    pass
PY
  local trap_pid=$!
  wait_until 5 test -s "$R/trap.count"
  local a="127.0.0.1:$trap_port" path code
  for path in "/probe/dlv?addr=$a" "/probe/dlv?dlv-addr=$a&target=$a" "/probe/dlv/$a" "/probe/dlv;addr=$a" \
    "/probe/dlv?addr=http://$a/" "/probe/dlv%3Faddr=$a" "/probe/../probe/dlv?host=$a"; do
    code=$(curl -s -o "$R/probe.out" -w '%{http_code}' -H "Host: $a" -H "X-Forwarded-Host: $a" \
      "http://127.0.0.1:$AGENT_PORT$path")
    if [ "$code" = 200 ] && ! grep -q '"dlvVersion":"Version: ' "$R/probe.out"; then
      echo "$path: 200 without the real dlv's version: $(cat "$R/probe.out")"; kill "$trap_pid"; return 1
    fi
  done
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data "{\"addr\":\"$a\"}" "http://127.0.0.1:$AGENT_PORT/probe/dlv")
  [ "$code" != 200 ] || { echo "POST /probe/dlv answered 200"; kill "$trap_pid"; return 1; }
  hits=$(cat "$R/trap.count"); kill "$trap_pid" 2>/dev/null; wait "$trap_pid" 2>/dev/null || true
  [ "$hits" = 0 ] || { echo "the probe connected to $a $hits times"; return 1; }
  curl -sf "http://127.0.0.1:$AGENT_PORT/probe/dlv" | grep -q '"ok":true'
}
check "the agent's /probe/dlv ignores query, path, Host and body: it never connects anywhere but --dlv-addr" probe_pinned

# --- spec.requestedBy cannot be forged ------------------------------------------------------------
k create role session-editor -n shop --verb=get,list,create,update,patch --resource=debugsessions.graydebug.io >/dev/null
k create rolebinding session-editor -n shop --role=session-editor --user=alice --user=mallory >/dev/null
by() { k get debugsession -n shop "$1" -o jsonpath='{.spec.requestedBy.username}'; }
requested_by() {
  k create -n shop --as=alice -f - >/dev/null <<'YAML' || return 1
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: forged}
spec:
  target: {pod: order-x}
  requestedBy: {username: system:admin, groups: [system:masters]}
YAML
  [ "$(by forged)" = alice ] || { echo "create: requestedBy $(by forged), not alice"; return 1; }
  k get debugsession -n shop forged -o jsonpath='{.spec.requestedBy.groups}' | grep -q system:masters &&
    { echo "create: the forged group system:masters was kept"; return 1; }
  # mallory may update sessions, but not who asked for them: by merge patch, JSON patch, replace.
  k patch debugsession -n shop forged --as=mallory --type=merge -p '{"spec":{"requestedBy":{"username":"mallory"}}}' >/dev/null 2>&1 || true
  [ "$(by forged)" = alice ] || { echo "merge patch: requestedBy $(by forged)"; return 1; }
  k patch debugsession -n shop forged --as=mallory --type=json -p '[{"op":"remove","path":"/spec/requestedBy"}]' >/dev/null 2>&1 || true
  [ "$(by forged)" = alice ] || { echo "JSON patch remove: requestedBy '$(by forged)'"; return 1; }
  k get debugsession -n shop forged -o json | python3 -c '
import json, sys
d = json.load(sys.stdin); d["spec"]["requestedBy"] = {"username": "mallory"}; print(json.dumps(d))' > "$R/replace.json"
  k replace --as=mallory -f "$R/replace.json" >/dev/null 2>&1 || true
  [ "$(by forged)" = alice ] || { echo "replace: requestedBy $(by forged)"; return 1; }
  # A server-side dry run is stamped the same way (nothing stored).
  [ "$(k create -n shop --as=mallory --dry-run=server -o jsonpath='{.spec.requestedBy.username}' -f - <<'YAML'
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: dry}
spec: {target: {pod: order-x}, requestedBy: {username: alice}}
YAML
)" = mallory ] || { echo "dry run not stamped"; return 1; }
}
check "spec.requestedBy is the requester's name on create (forged user and groups replaced) and cannot be changed or removed by update, patch or replace" requested_by

# --- request body limits on every endpoint --------------------------------------------------------
body_limits() {
  python3 - "$R/ca.crt" "$URL/mutate/pods" "$URL/mutate/debugsessions" "$URL/readyz" "$URL/healthz" \
    "http://127.0.0.1:$WH_METRICS/metrics" "http://127.0.0.1:$CTL_METRICS/metrics" \
    "http://127.0.0.1:$CTL_HEALTH/healthz" "http://127.0.0.1:$CTL_HEALTH/readyz" \
    "http://127.0.0.1:$AGENT_PORT/metrics" "http://127.0.0.1:$AGENT_PORT/probe/dlv" "http://127.0.0.1:$AGENT_PORT/healthz" <<'PY'
import socket, ssl, sys, time, urllib.parse
ca, urls = sys.argv[1], sys.argv[2:]
MiB = 1 << 20
def connect(u):
    s = socket.create_connection((u.hostname, u.port), 10)
    if u.scheme == "https":
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname=u.hostname)
    s.settimeout(20)
    return s
def status_of(s):
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionError, socket.timeout, ssl.SSLError):
        pass
    line = data.split(b"\r\n", 1)[0].decode(errors="replace")
    return int(line.split()[1]) if line.startswith("HTTP/1.") else None
problems = []
for url in urls:
    u = urllib.parse.urlparse(url)
    for mode in ("declared", "chunked"):
        s = connect(u)
        if mode == "declared":
            head = f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: application/json\r\nContent-Length: {1 << 34}\r\n\r\n"
        else:
            head = f"POST {u.path} HTTP/1.1\r\nHost: {u.hostname}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        s.sendall(head.encode())
        sent, cut = 0, False
        chunk = b"[" * MiB
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            while sent < 64 * MiB:
                s.sendall(framed if mode == "chunked" else chunk)
                sent += MiB
        except (ConnectionError, socket.timeout, ssl.SSLError):
            cut = True
        status = status_of(s)
        s.close()
        if status is not None and 200 <= status < 300:
            problems.append(f"{url} ({mode}): {status} after {sent // MiB} MiB")
        elif status is None and not cut:
            problems.append(f"{url} ({mode}): 64 MiB accepted without an answer")
        print(f"{url} {mode}: {status or 'connection closed'} after {sent // MiB} MiB")
if problems:
    sys.exit("\n".join(problems))
PY
}
check "every endpoint (webhook mutate/readyz/healthz/metrics, controller metrics/health, agent metrics/probe/healthz) refuses a 16 GiB declared body and a 64 MiB chunked one" body_limits
still_up() {
  curl -sf --cacert "$R/ca.crt" "$URL/readyz" >/dev/null && curl -sf "http://127.0.0.1:$CTL_HEALTH/readyz" >/dev/null &&
    curl -sf "http://127.0.0.1:$AGENT_PORT/healthz" >/dev/null || return 1
  local p rss
  for p in "${pids[@]}"; do
    rss=$(awk '/VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
    # 64 MiB of body went to each server; none may have kept it. A sanitizer build's shadow memory
    # and quarantine need far more.
    [ "${rss:-0}" -lt "$PEAK_LIMIT_KIB" ] || { echo "pid $p peaked at $((rss / 1024)) MiB"; return 1; }
  done
  injected
}
check "  ... all three still serve afterwards, none peaked above $((PEAK_LIMIT_KIB / 1024)) MiB, and admission still injects" still_up

# --- nothing secret in any log ---------------------------------------------------------------------
# A token the API server refuses: the controller, webhook and plugin must report a 401 without it.
BOGUS="graydebug-bogus-token-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
sed "s|token: \".*\"|token: \"$BOGUS\"|" "$R/controller.kubeconfig" > "$R/bogus.kubeconfig"
bogus_401() {
  # They never sync; SIGTERM (from timeout, after 8 s) must still stop them: 124, not 137 (KILL).
  local rc=0
  timeout -k 10 8 "$WORK/bin/graydebug-controller" --kubeconfig="$R/bogus.kubeconfig" --metrics-addr="127.0.0.1:$(free_port)" \
    --health-addr="127.0.0.1:$(free_port)" --lease-namespace="$NS" --log-level=debug 2> "$R/controller-bogus.log" || rc=$?
  [ "$rc" = 124 ] || { echo "controller with a refused token: exit $rc (124 = stopped by SIGTERM)"; tail -n 3 "$R/controller-bogus.log"; return 1; }
  rc=0
  timeout -k 10 8 "$WORK/bin/graydebug-webhook" --listen="127.0.0.1:$(free_port)" --metrics-addr="127.0.0.1:$(free_port)" \
    --tls-cert-file="$R/tls.crt" --tls-key-file="$R/tls.key" --kubeconfig="$R/bogus.kubeconfig" \
    --circuits-namespace="$NS" --log-level=debug 2> "$R/webhook-bogus.log" || rc=$?
  [ "$rc" = 124 ] || { echo "webhook with a refused token: exit $rc (124 = stopped by SIGTERM)"; tail -n 3 "$R/webhook-bogus.log"; return 1; }
  KUBECTL="$KUBECTL" timeout -k 5 20 "$WORK/bin/kubectl-graydebug" list -n shop --kubeconfig="$R/bogus.kubeconfig" \
    > "$R/plugin-bogus.log" 2>&1 && { echo "the plugin succeeded with a refused token"; return 1; }
  grep -qi 'unauthorized\|401' "$R/controller-bogus.log" && grep -qi 'unauthorized\|401' "$R/webhook-bogus.log" &&
    grep -qi 'unauthorized\|401' "$R/plugin-bogus.log" ||
    { echo "no 401 reported:"; tail -n 3 "$R"/*-bogus.log; return 1; }
}
check "a refused token: controller, webhook and plugin report 401 Unauthorized; controller and webhook still stop on SIGTERM" bogus_401
no_secrets_logged() {
  local f secret problems=""
  local -a secrets=("$BOGUS")
  for f in "$R"/*.kubeconfig; do secrets+=("$(sed -n 's/.*token: "\(.*\)".*/\1/p' "$f")"); done
  secrets+=("$(sed -n '2p' "$R/tls.key")")     # a line of the webhook's private key
  for f in "$R"/*.log "$CLUSTER_DIR"/logs/*.log; do
    [ -f "$f" ] || continue
    for secret in "${secrets[@]}"; do
      [ -n "$secret" ] && grep -qF -- "$secret" "$f" && [[ "$f" != "$CLUSTER_DIR"/* ]] && problems+="$f holds a secret; "
    done
    grep -qiE 'authorization: *bearer|PRIVATE KEY' "$f" && [[ "$f" != "$CLUSTER_DIR"/* ]] && problems+="$f holds an Authorization header or a key; "
  done
  [ -z "$problems" ] || { echo "$problems"; return 1; }
  echo "${#secrets[@]} secrets looked for in $(ls "$R"/*.log | wc -l) logs ($(cat "$R"/*.log | wc -l) lines at debug level)"
}
check "no token (ServiceAccount or refused), private key or Authorization header in any graydebug log, at debug level" no_secrets_logged

stop_all
echo "security: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
