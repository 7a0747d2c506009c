#!/usr/bin/env bash
# Security on the real node (issue #16 item 6): dlv's port is unreachable from another pod at the
# pod IP (while the app's port is reachable, so the path is proven); the injected containers run
# with the documented securityContext; namespaces enforcing Pod Security restricted or baseline get
# gray pods admitted without sidecars (skip reason pod-security), never broken pods; and a
# `kubectl auth can-i` table proves the ServiceAccounts' least privilege.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/security
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"
trap 'for n in sec sec-client sec-restricted sec-baseline; do kubectl delete namespace $n --wait=false >/dev/null 2>&1; done' EXIT

fresh_ns sec
sed "s/^  namespace: shop$/  namespace: sec/" "$REPO/manifests/examples/gray-deployment.yaml" | k apply -f - >/dev/null
check "an injected gray pod is Ready" wait_until 120 pods_ready sec app=order 1
pod=$(newest_pod sec app=order)
ip=$(k -n sec get pod "$pod" -o jsonpath='{.status.podIP}')

# A client pod in another namespace, from the graydebug image (bash's /dev/tcp is the client).
fresh_ns sec-client
k -n sec-client run probe --image="docker.io/$IMAGE_REPO:$IMAGE_TAG" --image-pull-policy=Never --restart=Never \
  --overrides='{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":65532,"seccompProfile":{"type":"RuntimeDefault"}}}}' \
  --command -- sleep 600 >/dev/null
check "the client pod runs" wait_until 60 sh -c "[ \"\$(kubectl -n sec-client get pod probe -o jsonpath='{.status.phase}')\" = Running ]"
tcp() { k -n sec-client exec probe -- bash -c "exec 3<>/dev/tcp/$ip/$1" 2>&1; }
check "another pod reaches the app at $ip:8080 (the network path works)" tcp 8080
dlv_port=$(k -n sec get pod "$pod" -o jsonpath='{.metadata.annotations.graydebug\.io/dlv-port}')
dlv_port=${dlv_port:-2345}
check "another pod cannot reach dlv at $ip:$dlv_port (loopback only)" sh -c "! kubectl -n sec-client exec probe -- bash -c 'exec 3<>/dev/tcp/$ip/$dlv_port' 2>/dev/null"
check "the host cannot reach dlv at $ip:$dlv_port either" sh -c "! timeout 5 bash -c 'exec 3<>/dev/tcp/$ip/$dlv_port' 2>/dev/null"
check "dlv listens on the pod's loopback only" sh -c \
  "kubectl -n sec exec $pod -c graydebug-agent -- cat /proc/net/tcp | awk 'NR>1 && \$4==\"0A\" {print \$2}' | grep -qi ':$(printf %04X "$dlv_port")\$' &&
   kubectl -n sec exec $pod -c graydebug-agent -- cat /proc/net/tcp | awk 'NR>1 && \$4==\"0A\" {print \$2}' | grep -i ':$(printf %04X "$dlv_port")\$' | grep -qx '0100007F:$(printf %04X "$dlv_port")'"

# The injected securityContexts, as docs/webhook.md documents them.
k -n sec get pod "$pod" -o json > "$WORK/pod.json"
check "graydebug-agent: non-root 65532:65532, read-only root, no privilege escalation, drop ALL, RuntimeDefault seccomp" python3 - "$WORK/pod.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
cs = {c["name"]: c for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}
sc = cs["graydebug-agent"].get("securityContext", {})
want = {"runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532, "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False}
bad = {k: sc.get(k) for k, v in want.items() if sc.get(k) != v}
if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("capabilities", {}).get("add"):
    bad["capabilities"] = sc.get("capabilities")
if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault" and p["spec"].get("securityContext", {}).get("seccompProfile", {}).get("type") != "RuntimeDefault":
    bad["seccompProfile"] = sc.get("seccompProfile")
if bad:
    sys.exit("graydebug-agent securityContext differs: %s" % bad)
PY
check "dlv-server: only SYS_PTRACE added, drop ALL, no privilege escalation, RuntimeDefault seccomp, not privileged" python3 - "$WORK/pod.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
cs = {c["name"]: c for c in p["spec"]["containers"] + p["spec"].get("initContainers", [])}
sc = cs["dlv-server"].get("securityContext", {})
caps = sc.get("capabilities", {})
bad = []
if caps.get("add") != ["SYS_PTRACE"]: bad.append("add=%s" % caps.get("add"))
if caps.get("drop") != ["ALL"]: bad.append("drop=%s" % caps.get("drop"))
if sc.get("allowPrivilegeEscalation") is not False: bad.append("allowPrivilegeEscalation")
if sc.get("seccompProfile", {}).get("type") != "RuntimeDefault": bad.append("seccompProfile=%s" % sc.get("seccompProfile"))
if sc.get("privileged"): bad.append("privileged")
if bad:
    sys.exit("dlv-server securityContext differs: %s" % bad)
PY
check "both sidecars have requests and limits" python3 - "$WORK/pod.json" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))
for c in p["spec"]["containers"] + p["spec"].get("initContainers", []):
    if c["name"] in ("dlv-server", "graydebug-agent"):
        r = c.get("resources", {})
        if not r.get("requests", {}).get("cpu") or not r.get("requests", {}).get("memory") or not r.get("limits", {}).get("memory"):
            sys.exit("%s resources: %s" % (c["name"], r))
PY

# Pod Security: the app made restricted-compliant, so only the sidecars could be refused.
restricted='{"spec":{"replicas":1,"template":{"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1000,"runAsGroup":1000,"seccompProfile":{"type":"RuntimeDefault"}},"containers":[{"name":"order","securityContext":{"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}}}}'
for level in restricted baseline; do
  ns=sec-$level
  fresh_ns "$ns"
  k label namespace "$ns" "pod-security.kubernetes.io/enforce=$level" >/dev/null
  # Created with no replicas and made compliant before any pod: the example's own app is not
  # restricted-compliant, and its refusal would be Pod Security's verdict on the app, not on graydebug.
  sed "s/^  namespace: shop$/  namespace: $ns/; s/^  replicas: 1$/  replicas: 0/" "$REPO/manifests/examples/gray-deployment.yaml" |
    k apply -f - >/dev/null
  k -n "$ns" patch deploy order-v2-alpha --type strategic -p "$restricted" >/dev/null
  check "pod-security $level: the gray pod is admitted and Ready" wait_until 120 pods_ready "$ns" app=order 1
  p=$(newest_pod "$ns" app=order)
  check "pod-security $level: without sidecars" sh -c \
    "[ \"\$(kubectl -n $ns get pod $p -o jsonpath='{.spec.containers[*].name}{.spec.initContainers[*].name}')\" = order ]"
  check "pod-security $level: no ReplicaSet event says a pod was forbidden" sh -c \
    "! kubectl -n $ns get events -o jsonpath='{range .items[*]}{.message}{\"\\n\"}{end}' | grep -qi forbidden"
done

# Least privilege, as the ServiceAccounts see it.
ctl_sa=$(k -n "$RELEASE_NS" get deploy -l app.kubernetes.io/component=controller -o jsonpath='{.items[0].spec.template.spec.serviceAccountName}')
wh_sa=$(k -n "$RELEASE_NS" get deploy -l app.kubernetes.io/component=webhook -o jsonpath='{.items[0].spec.template.spec.serviceAccountName}')
can() {  # sa expect(yes|no) verb resource [namespace]
  local got
  got=$(k auth can-i --as="system:serviceaccount:$RELEASE_NS:$1" "$3" "$4" ${5:+-n "$5"} 2>/dev/null || true)
  [ "$got" = "$2" ] || { echo "$1 can-i $3 $4 ${5:-(cluster)}: $got, want $2"; return 1; }
}
echo "RBAC (kubectl auth can-i):"
while read -r sa want verb res ns; do
  [ -n "$sa" ] || continue
  case $sa in ctl) sa_name=$ctl_sa ;; wh) sa_name=$wh_sa ;; esac
  check "  $sa $verb $res ${ns:-cluster-wide}: $want" can "$sa_name" "$want" "$verb" "$res" "$ns"
done <<TABLE
ctl yes list pods
ctl yes watch debugsessions.graydebug.io
ctl yes update debugsessions.graydebug.io/status
ctl yes create events
ctl yes update configmaps/graydebug-circuits $RELEASE_NS
ctl no update configmaps/other $RELEASE_NS
ctl no get secrets
ctl no list secrets $RELEASE_NS
ctl no create pods
ctl no delete pods
ctl no create pods/exec
ctl no create pods/portforward
ctl no update pods
ctl no update nodes
ctl no create clusterrolebindings
ctl no update deployments.apps default
wh yes watch namespaces
wh yes get configmaps/graydebug-circuits $RELEASE_NS
wh no update configmaps/graydebug-circuits $RELEASE_NS
wh no list pods
wh no get secrets
wh no list secrets $RELEASE_NS
wh no create debugsessions.graydebug.io
wh no update mutatingwebhookconfigurations.admissionregistration.k8s.io
TABLE
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
