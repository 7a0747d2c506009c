#!/usr/bin/env bash
# The Helm chart charts/graydebug and the plain manifests/install (issue #8), checked offline and
# against a real kube-apiserver that this script starts (hack/cluster) and stops.
#
#   tests/chart/chart_test.sh          (CTest: `ctest -R chart`)
#
# One line per check ("ok", "FAIL" with the reason below it, or "skip" with why), then
# "chart: N passed, N failed, N skipped"; exits non-zero when any check failed. Leaves no process
# or cluster behind. GRAYDEBUG_BIN (default build/bin) holds the binaries for the checks that run
# graydebug-webhook and graydebug-controller with the chart's flags, config and RBAC; without
# them those checks are skipped. Needs python3 with PyYAML.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$REPO/hack/tools/common.sh"
. "$REPO/tests/support/checks.sh"
CHART=$REPO/charts/graydebug
CHECKS=$REPO/tests/chart/checks.py
BIN=${GRAYDEBUG_BIN:-$REPO/build/bin}
HELM="$(tool_bindir helm)/helm"
KUBECTL="$(tool_bindir kubernetes)/kubectl"
KUBE_VERSION=${KUBERNETES_VERSION#v}
NS=graydebug-system
RELEASE=graydebug
WORK=$(mktemp -d "${TMPDIR:-/tmp}/graydebug-chart-test.XXXXXX")
CLUSTER_DIR=$WORK/cluster
# helm must not read or write the caller's configuration, repositories or plugins.
export HELM_CONFIG_HOME="$WORK/helm/config" HELM_CACHE_HOME="$WORK/helm/cache" HELM_DATA_HOME="$WORK/helm/data"
unset KUBECONFIG

CHECKS_NAME=chart
trap checks_cleanup EXIT
trap 'exit 130' INT TERM

for tool in "$HELM" "$KUBECTL"; do
  [ -x "$tool" ] || { echo "FAIL - $tool is not built; run: make deps"; exit 1; }
done
python3 -c 'import yaml' 2>/dev/null || { echo "FAIL - python3 with PyYAML is required"; exit 1; }

template() { # VARIANT NAMESPACE [helm args...]: renders into $WORK/VARIANT.yaml
  local variant=$1 ns=$2
  shift 2
  "$HELM" template "$RELEASE" "$CHART" --namespace "$ns" --kube-version "$KUBE_VERSION" "$@" > "$WORK/$variant.yaml"
}

# Values files of the variants. all-on switches on every optional part.
cat > "$WORK/all-on.values.yaml" <<'YAML'
crds: {enabled: true, keep: false}
webhook:
  failurePolicy: Ignore
  excludeNamespaces: [monitoring]
  podAnnotations: {example.com/team: platform}
  tolerations: [{key: dedicated, operator: Equal, value: infra, effect: NoSchedule}]
controller:
  replicas: 2
  pauseRollout: true
  watchNamespace: shop
injection:
  nativeSidecars: true
  dlv: {image: registry.example.com/graydebug/dlv:1.27}
imagePullSecrets: [{name: regcred}]
certManager: {enabled: true}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
  prometheusRule: {enabled: true}
  dashboard: {enabled: true}
YAML
cat > "$WORK/issuer.values.yaml" <<'YAML'
certManager:
  enabled: true
  issuerRef: {name: company-ca, kind: ClusterIssuer, group: cert-manager.io}
YAML
# long: the longest fullnameOverride the schema allows; the API server checks every name's length.
# url: the webhook outside the cluster (no webhook Deployment or Services).
VARIANTS=(default all-on issuer no-crds pause long url)
variant_args() {
  case "$1" in
    default) ;;
    all-on) echo "--values $WORK/all-on.values.yaml" ;;
    issuer) echo "--values $WORK/issuer.values.yaml" ;;
    no-crds) echo "--set crds.enabled=false" ;;
    pause) echo "--set controller.pauseRollout=true" ;;
    long) echo "--set fullnameOverride=$(printf 'g%.0s' $(seq 44))" ;;
    url) echo "--set webhook.url=https://127.0.0.1:8443" ;;
  esac
}

echo "chart: $CHART (helm $("$HELM" version --template '{{.Version}}'), kubectl $KUBERNETES_VERSION); work dir $WORK"

# --- offline ------------------------------------------------------------------------------------
check "helm lint (default values)" "$HELM" lint --strict "$CHART" --kube-version "$KUBE_VERSION"
check "helm lint (every optional switch on)" "$HELM" lint --strict "$CHART" --kube-version "$KUBE_VERSION" \
  --values "$WORK/all-on.values.yaml"
check "helm lint (cert-manager with an existing issuer)" "$HELM" lint --strict "$CHART" --kube-version "$KUBE_VERSION" \
  --values "$WORK/issuer.values.yaml"
for v in "${VARIANTS[@]}"; do
  # shellcheck disable=SC2046
  check "helm template renders ($v)" template "$v" "$NS" $(variant_args "$v")
done
test_pod_is_a_hook() {
  grep -q 'helm.sh/hook: test' "$WORK/default.yaml" &&
    ! "$HELM" template "$RELEASE" "$CHART" -n "$NS" --kube-version "$KUBE_VERSION" --skip-tests | grep -q 'helm.sh/hook: test'
}
check "helm template renders the test pod as a test hook (absent with --skip-tests)" test_pod_is_a_hook

schema_out=$(python3 "$CHECKS" schema "$CHART/values.schema.json" "$CHART/values.yaml" 2>&1) && schema_rc=0 || schema_rc=$?
if [ "$schema_rc" -eq 0 ] && [ "${schema_out#SKIP: }" != "$schema_out" ]; then
  skip "values.schema.json is a valid JSON Schema (meta-schema)" "${schema_out#SKIP: }"
else
  schema_ok() { printf '%s\n' "$schema_out"; return "$schema_rc"; }
  check "values.schema.json is a valid JSON Schema and accepts values.yaml" schema_ok
fi
names_value() { # PATTERN: helm's refusal of bad.values.yaml names the value
  local out
  out=$("$HELM" template "$RELEASE" "$CHART" -n "$NS" --kube-version "$KUBE_VERSION" --values "$WORK/bad.values.yaml" 2>&1) || true
  grep -F -- "$1" <<< "$out" || { echo "$out"; return 1; }
}
reject() { # NAME VALUES-YAML PATTERN: the schema must refuse it, with PATTERN in the message
  printf '%s\n' "$2" > "$WORK/bad.values.yaml"
  check "values.schema.json rejects $1" fails "$HELM" template "$RELEASE" "$CHART" -n "$NS" \
    --kube-version "$KUBE_VERSION" --values "$WORK/bad.values.yaml"
  check "  ... with a message naming the value ($1)" names_value "$3"
}
reject "webhook.replicas: -1" "webhook: {replicas: -1}" "/webhook/replicas"
reject 'controller.pauseRollout: "yes"' 'controller: {pauseRollout: "yes"}' "/controller/pauseRollout"
reject "webhook.failurePolicy: Maybe (enum)" "webhook: {failurePolicy: Maybe}" "/webhook/failurePolicy"
reject "injection.dlv.port: 70000" "injection: {dlv: {port: 70000}}" "/injection/dlv/port"
reject "controller.breaker.failureRatio: 1.5" "controller: {breaker: {failureRatio: 1.5}}" "/controller/breaker/failureRatio"
reject "a misspelt key (webhook.replica)" "webhook: {replica: 3}" "additional properties 'replica' not allowed"
reject "logLevel: verbose" "logLevel: verbose" "/logLevel"
# One line that says what is wrong with the duration (not a oneOf with a "want integer" branch).
reject "webhook.shutdownDelay: 1h" "webhook: {shutdownDelay: 1h}" "'1h' does not match pattern"
reject "webhook.shutdownDelay: 7 (a number, not 0)" "webhook: {shutdownDelay: 7}" "/webhook/shutdownDelay"
check "an objectSelector that cannot match injection.selector is refused" fails "$HELM" template "$RELEASE" "$CHART" \
  -n "$NS" --kube-version "$KUBE_VERSION" --set-string 'webhook.objectSelector.matchLabels.graydebug\.io/inject=yes'

only_graydebug_images() {
  # Air-gapped clusters: every image the chart renders (the helm test pod's too) is image.repository.
  local others
  others=$(grep -hE '^\s+image: ' "$WORK/default.yaml" | grep -v 'graydebug/graydebug:' || true)
  [ -z "$others" ] || { echo "images from elsewhere: $others"; return 1; }
}
check "with default values every rendered image, the helm test pod's included, is the graydebug image" only_graydebug_images
check "every value in values.yaml has a comment starting with its name" python3 "$CHECKS" comments "$CHART/values.yaml"
check "every value in values.yaml is in docs/helm.md's table" python3 "$CHECKS" documented "$CHART/values.yaml" "$REPO/docs/helm.md"

check "the chart's CRD file is byte-identical to manifests/crds" \
  cmp "$CHART/files/crds/graydebug.io_debugsessions.yaml" "$REPO/manifests/crds/graydebug.io_debugsessions.yaml"
check "the rendered CRD is manifests/crds' CRD + labels + keep policy (crds.keep default true)" \
  python3 "$CHECKS" crd "$WORK/default.yaml" "$REPO/manifests/crds/graydebug.io_debugsessions.yaml" yes
check "crds.keep=false renders the CRD without the keep policy" \
  python3 "$CHECKS" crd "$WORK/all-on.yaml" "$REPO/manifests/crds/graydebug.io_debugsessions.yaml" no
check "crds.enabled=false renders no CRD" \
  python3 "$CHECKS" crd "$WORK/no-crds.yaml" "$REPO/manifests/crds/graydebug.io_debugsessions.yaml" absent

check "RBAC is least privilege; no deployments access by default" python3 "$CHECKS" rbac "$WORK/default.yaml" no
check "RBAC: get/patch deployments appears with controller.pauseRollout=true" python3 "$CHECKS" rbac "$WORK/pause.yaml" yes
check "RBAC: ... and with every switch on (pauseRollout=true)" python3 "$CHECKS" rbac "$WORK/all-on.yaml" yes
pause_in_config() {
  python3 "$CHECKS" config "$WORK/pause.yaml" controller "$WORK/pause-ctl.yaml" &&
    grep -q 'pauseRollout: true' "$WORK/pause-ctl.yaml" &&
    python3 "$CHECKS" config "$WORK/default.yaml" controller "$WORK/default-ctl.yaml" &&
    grep -q 'pauseRollout: false' "$WORK/default-ctl.yaml"
}
check "pauseRollout reaches the controller's config (breaker.pauseRollout)" pause_in_config

mkdir -p "$WORK/tls"
tls_ok() {
  python3 "$CHECKS" tls "$WORK/default.yaml" "$WORK/tls" &&
    openssl verify -CAfile "$WORK/tls/ca.crt" "$WORK/tls/tls.crt" &&
    openssl x509 -in "$WORK/tls/tls.crt" -noout -ext subjectAltName > "$WORK/tls/san.txt" &&
    grep -q "DNS:graydebug-webhook.$NS.svc," "$WORK/tls/san.txt" &&
    grep -q "DNS:graydebug-webhook.$NS.svc.cluster.local" "$WORK/tls/san.txt" &&
    cmp <(openssl pkey -in "$WORK/tls/tls.key" -pubout) <(openssl x509 -in "$WORK/tls/tls.crt" -noout -pubkey)
}
check "Helm-generated TLS: Secret ca.crt = caBundle of both webhooks, cert verifies, SANs <svc>.<ns>.svc(.cluster.local), key matches" tls_ok
check "cert-manager: self-signed CA chain, Certificate -> mounted Secret, inject-ca-from, no caBundle" \
  python3 "$CHECKS" certmanager "$WORK/all-on.yaml" "$NS" chain
check "cert-manager with issuerRef: the Certificate uses it and no Issuer is rendered" \
  python3 "$CHECKS" certmanager "$WORK/issuer.yaml" "$NS" company-ca
check "ServiceMonitors select the metrics Services; PrometheusRule has both alerts" \
  python3 "$CHECKS" monitoring "$WORK/all-on.yaml"
check "the Grafana dashboard JSON parses, has the panels, and the ConfigMap carries it" \
  python3 "$CHECKS" dashboard "$CHART/files/grafana-dashboard.json" "$WORK/all-on.yaml"
check "optional objects are off by default (no ServiceMonitor, PrometheusRule, dashboard, cert-manager)" \
  fails grep -Eq '^kind: (ServiceMonitor|PrometheusRule|Issuer|Certificate)$|grafana_dashboard' "$WORK/default.yaml"
manifests_current() {
  "$REPO/hack/render-manifests.sh" "$WORK/manifests" 2>/dev/null && diff -ru "$REPO/manifests/install" "$WORK/manifests"
}
check "manifests/install is what hack/render-manifests.sh writes" manifests_current

# --- against a real kube-apiserver ---------------------------------------------------------------
if ! KUBECONFIG=$("$REPO/hack/cluster" up --dir "$CLUSTER_DIR" --owner-pid $$ 2>"$WORK/cluster-up.log"); then
  echo "FAIL - local cluster did not start:"; sed 's/^/       /' "$WORK/cluster-up.log"; exit 1
fi
export KUBECONFIG
k() { "$KUBECTL" "$@"; }
echo "chart: local kube-apiserver $(k version -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["serverVersion"]["gitVersion"])')"
k create namespace "$NS" >/dev/null
k api-versions > "$WORK/api-versions.txt"

# dry_run VARIANT: every document of the cluster's API groups through server-side validation
# (strict: unknown or duplicate fields fail); the others are named.
dry_run() {
  local v=$1 unserved
  unserved=$(python3 "$CHECKS" split "$WORK/$v.yaml" "$WORK/api-versions.txt" "$WORK/$v.served.yaml" "$WORK/$v.unserved.yaml")
  k apply --dry-run=server --validate=strict -f "$WORK/$v.served.yaml" > "$WORK/$v.dry-run.log" 2>&1 || {
    cat "$WORK/$v.dry-run.log"; return 1; }
  if grep -qi '^warning' "$WORK/$v.dry-run.log"; then grep -i '^warning' "$WORK/$v.dry-run.log"; return 1; fi
  echo "$unserved" > "$WORK/$v.unserved.txt"
}
for v in "${VARIANTS[@]}"; do
  check "kubectl apply --dry-run=server --validate=strict: every built-in document ($v)" dry_run "$v"
  if [ -s "$WORK/$v.unserved.txt" ] && [ -n "$(cat "$WORK/$v.unserved.txt")" ]; then
    skip "  server dry-run of $(cat "$WORK/$v.unserved.txt") ($v)" \
      "their CRDs (Prometheus Operator, cert-manager) are not in the local cluster; checked offline above"
  fi
done
plain_dry_run() {
  python3 "$CHECKS" split "$REPO/manifests/install/graydebug.yaml" "$WORK/api-versions.txt" \
    "$WORK/plain.served.yaml" "$WORK/plain.unserved.yaml" >/dev/null &&
    k apply --dry-run=server --validate=strict -f "$WORK/plain.served.yaml"
}
check "kubectl apply --dry-run=server --validate=strict: manifests/install (except cert-manager kinds)" plain_dry_run

psa() {
  k create namespace graydebug-psa >/dev/null
  k label namespace graydebug-psa pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted >/dev/null
  template psa graydebug-psa
  python3 "$CHECKS" split "$WORK/psa.yaml" "$WORK/api-versions.txt" "$WORK/psa.served.yaml" /dev/null >/dev/null
  k apply --dry-run=server -f "$WORK/psa.served.yaml" > "$WORK/psa.log" 2>&1 || { cat "$WORK/psa.log"; return 1; }
  if grep -qi 'warning' "$WORK/psa.log"; then grep -i warning "$WORK/psa.log"; return 1; fi
}
check "Pod Security 'restricted': Deployments draw no warning, the helm test pod is admitted" psa

helm_install() {
  "$HELM" install "$RELEASE" "$CHART" -n "$NS" --timeout 2m --set metrics.dashboard.enabled=true > "$WORK/install.txt" &&
    grep -q 'graydebug.io/inject: "true"' "$WORK/install.txt" && grep -q 'kubectl graydebug attach' "$WORK/install.txt" &&
    grep -q 'kind: DebugSession' "$WORK/install.txt" || { cat "$WORK/install.txt"; return 1; }
}
check "helm install into the local cluster (NOTES: the inject label, kubectl graydebug attach, a DebugSession)" helm_install
k wait --for=condition=Established crd/debugsessions.graydebug.io --timeout=60s >/dev/null 2>&1 || true
secret_data() { k get secret -n "$NS" graydebug-webhook-tls -o jsonpath='{.data}'; }
ca_bundles() { k get mutatingwebhookconfiguration graydebug -o jsonpath='{.webhooks[*].clientConfig.caBundle}'; }
secret_before=$(secret_data 2>/dev/null || true)
bundles_before=$(ca_bundles 2>/dev/null || true)
bundles_are_ca() {
  [ -n "$secret_before" ] &&
    [ "$(k get secret -n "$NS" graydebug-webhook-tls -o jsonpath='{.data.ca\.crt}')" = "$(tr ' ' '\n' <<< "$bundles_before" | sort -u)" ]
}
check "installed: both caBundles are the TLS Secret's ca.crt" bundles_are_ca
values_clean() { ! "$HELM" get values "$RELEASE" -n "$NS" --all -o json | grep -q graydebugWebhookTLS; }
check "installed: the release's stored values do not hold the generated certificate" values_clean

# RBAC as the ServiceAccounts themselves (impersonation), for the rules that matter most.
as() { local sa=$1; shift; k --as="system:serviceaccount:$NS:graydebug-$sa" "$@"; }
rbac_live() {
  as webhook get namespaces >/dev/null &&
    as webhook get configmaps -n "$NS" --field-selector metadata.name=graydebug-circuits >/dev/null &&
    fails as webhook get configmaps -n "$NS" &&
    fails as webhook get configmaps -n default --field-selector metadata.name=graydebug-circuits &&
    fails as webhook get pods -A &&
    as controller get pods -A >/dev/null && as controller get debugsessions -A >/dev/null &&
    [ "$(as controller auth can-i patch debugsessions/status -n shop)" = yes ] &&
    [ "$(as controller auth can-i create events.events.k8s.io -n shop)" = yes ] &&
    [ "$(as controller auth can-i get replicasets.apps -n shop)" = yes ] &&
    [ "$(as controller auth can-i create leases.coordination.k8s.io -n "$NS")" = yes ] &&
    [ "$(as controller auth can-i update configmaps/graydebug-circuits -n "$NS")" = yes ] &&
    [ "$(as controller auth can-i update configmaps/other -n "$NS" || true)" = no ] &&
    [ "$(as controller auth can-i get secrets -n "$NS" || true)" = no ] &&
    [ "$(as controller auth can-i patch deployments.apps -n shop || true)" = no ]
}
check "installed RBAC: webhook reads namespaces and only ConfigMap graydebug-circuits (by field selector); controller as listed, no deployments" rbac_live

sa_kc() { sa_kubeconfig "$KUBECTL" "$NS" "graydebug-$1" "$2"; } # SA FILE: a token kubeconfig of graydebug-SA
# The real binaries with the chart's flags, config files, certificate and ServiceAccount tokens; the
# webhook runs here, so the release is switched to the out-of-cluster mode (webhook.url) first, and
# a gray pod made from the example Deployment is injected through the chart's own webhook
# configuration and attached with kubectl graydebug.
NEEDED=(graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug leaky-app)
DLV="$(tool_bindir dlv)/dlv"
missing=""
for b in "${NEEDED[@]}"; do [ -x "$BIN/$b" ] || missing+=" $b"; done
[ -x "$DLV" ] || missing+=" dlv"
if [ -z "$missing" ]; then
  mkdir -p "$WORK/bin" "$WORK/run"
  for b in "${NEEDED[@]}"; do cp "$BIN/$b" "$WORK/bin/"; done
  cp "$DLV" "$WORK/bin/dlv"
  # The Deployments' args, from the install above (webhook.url removes the webhook's Deployment).
  "$HELM" get manifest "$RELEASE" -n "$NS" > "$WORK/installed.yaml"
  WH_PORT=$(free_port); WH_METRICS=$(free_port); CTL_METRICS=$(free_port); CTL_HEALTH=$(free_port)
  DLV_PORT=$(free_port); AGENT_PORT=$(free_port); APP_PORT=$(free_port)
  URL="https://127.0.0.1:$WH_PORT"

  url_mode() {
    # The injected sidecars get this machine's free ports: the "node" here is shared.
    "$HELM" upgrade "$RELEASE" "$CHART" -n "$NS" --reuse-values --timeout 2m --set "webhook.url=$URL" \
      --set "injection.dlv.port=$DLV_PORT" --set "injection.agent.port=$AGENT_PORT" > /dev/null || return 1
    "$HELM" get manifest "$RELEASE" -n "$NS" > "$WORK/url.yaml"
    local left
    left=$(k get deployments,services,poddisruptionbudgets -n "$NS" -l app.kubernetes.io/component=webhook -o name)
    [ -z "$left" ] || { echo "still installed with webhook.url: $left"; return 1; }
    k get deployment -n "$NS" graydebug-controller -o name >/dev/null || return 1
    local urls
    urls=$(k get mutatingwebhookconfiguration graydebug -o jsonpath='{.webhooks[*].clientConfig.url}')
    [ "$urls" = "$URL/mutate/pods $URL/mutate/debugsessions" ] || { echo "webhook urls: $urls"; return 1; }
    k get secret -n "$NS" graydebug-webhook-tls -o jsonpath='{.data.tls\.crt}' | base64 -d > "$WORK/run/tls.crt"
    k get secret -n "$NS" graydebug-webhook-tls -o jsonpath='{.data.tls\.key}' | base64 -d > "$WORK/run/tls.key"
    k get secret -n "$NS" graydebug-webhook-tls -o jsonpath='{.data.ca\.crt}' | base64 -d > "$WORK/run/ca.crt"
    [ "$(secret_data)" != "$secret_before" ] || { echo "the certificate made for the Service names was kept"; return 1; }
    [ "$(tr ' ' '\n' <<< "$(ca_bundles)" | sort -u)" = "$(base64 -w0 < "$WORK/run/ca.crt")" ] ||
      { echo "the caBundles are not the new ca.crt"; return 1; }
    openssl verify -CAfile "$WORK/run/ca.crt" "$WORK/run/tls.crt" >/dev/null &&
      openssl x509 -in "$WORK/run/tls.crt" -noout -ext subjectAltName | grep -q 'IP Address:127.0.0.1' ||
      { openssl x509 -in "$WORK/run/tls.crt" -noout -ext subjectAltName; return 1; }
  }
  check "helm upgrade --set webhook.url=$URL: no webhook Deployment/Services/PDB; both webhooks call the URL; a new certificate with IP SAN 127.0.0.1 signed by the caBundle" url_mode
  secret_before=$(secret_data); bundles_before=$(ca_bundles)
  python3 "$CHECKS" config "$WORK/url.yaml" webhook "$WORK/run/webhook.yaml"
  python3 "$CHECKS" config "$WORK/url.yaml" controller "$WORK/run/controller.yaml"
  sa_kc webhook "$WORK/run/webhook.kubeconfig"
  sa_kc controller "$WORK/run/controller.kubeconfig"
  # The Deployments' args, with the in-pod paths and ports mapped to local ones.
  local_args() { # COMPONENT
    python3 "$CHECKS" args "$WORK/installed.yaml" "$1" | sed \
      -e "s|^--listen=:8443$|--listen=127.0.0.1:$WH_PORT|" \
      -e "s|^--metrics-addr=:9090$|--metrics-addr=127.0.0.1:$([ "$1" = webhook ] && echo "$WH_METRICS" || echo "$CTL_METRICS")|" \
      -e "s|^--health-addr=:8081$|--health-addr=127.0.0.1:$CTL_HEALTH|" \
      -e "s|=/etc/graydebug/tls/|=$WORK/run/|" \
      -e "s|^--config=/etc/graydebug/config/config.yaml$|--config=$WORK/run/$1.yaml|"
  }
  mapfile -t wh_args < <(local_args webhook)
  mapfile -t ctl_args < <(local_args controller)
  POD_NAMESPACE=$NS "$WORK/bin/graydebug-webhook" "${wh_args[@]}" --kubeconfig="$WORK/run/webhook.kubeconfig" \
    2> "$WORK/run/webhook.log" &
  pids+=($!)
  POD_NAMESPACE=$NS HOSTNAME=chart-test "$WORK/bin/graydebug-controller" "${ctl_args[@]}" \
    --kubeconfig="$WORK/run/controller.kubeconfig" 2> "$WORK/run/controller.log" &
  pids+=($!)
  webhook_ready() {
    wait_until 30 curl -sf --cacert "$WORK/run/ca.crt" "$URL/readyz" || { tail -n 5 "$WORK/run/webhook.log"; return 1; }
    # Both informers listed through the chart's RBAC: namespaces (ClusterRole) and the one
    # ConfigMap by field selector (Role with resourceNames).
    wait_until 10 grep -q '"informer synced","informer":"circuits"' "$WORK/run/webhook.log" &&
      wait_until 10 grep -q '"informer synced","informer":"namespaces"' "$WORK/run/webhook.log" ||
      { echo "informers did not sync:"; cat "$WORK/run/webhook.log"; return 1; }
    if grep -Eiq 'forbidden|"level":"error"' "$WORK/run/webhook.log"; then grep -Ei 'forbidden|error' "$WORK/run/webhook.log"; return 1; fi
  }
  check "graydebug-webhook runs with the chart's args, config, certificate and ServiceAccount (/readyz over TLS, no RBAC error)" webhook_ready
  # The helm test pod of the release, its command run here (no kubelet runs pods): the graydebug
  # image's own graydebug-webhook check-ready, no public test image.
  helm_test_check() {
    "$HELM" get hooks "$RELEASE" -n "$NS" > "$WORK/hooks.yaml"
    local args
    mapfile -t args < <(python3 - "$WORK/hooks.yaml" <<'PY'
import sys, yaml
pod = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] == "Pod"][0]
c = pod["spec"]["containers"][0]
print("\n".join(c["command"][1:] + c["args"]))
PY
)
    [ "${args[0]}" = check-ready ] || { echo "the test pod runs ${args[*]}, not graydebug-webhook check-ready"; return 1; }
    printf '%s\n' "${args[@]}" | grep -qx -- "--url=$URL" || { echo "the test pod calls ${args[*]}, not $URL"; return 1; }
    "$WORK/bin/graydebug-webhook" "${args[@]/\/etc\/graydebug\/ca\/ca.crt/$WORK/run/ca.crt}"
  }
  check "helm test's graydebug-webhook check-ready (CA from the Secret, webhook.url) passes against it" helm_test_check
  controller_ready() {
    wait_until 30 curl -sf "http://127.0.0.1:$CTL_HEALTH/readyz" || { tail -n 5 "$WORK/run/controller.log"; return 1; }
    wait_until 30 k get lease -n "$NS" graydebug-controller || { tail -n 5 "$WORK/run/controller.log"; return 1; }
    curl -sf "http://127.0.0.1:$CTL_HEALTH/readyz" | grep -q leader
    grep -q '"informer synced","informer":"debugsessions"' "$WORK/run/controller.log" &&
      grep -q '"informer synced","informer":"injected-pods"' "$WORK/run/controller.log" ||
      { echo "informers did not sync:"; cat "$WORK/run/controller.log"; return 1; }
    if grep -Eiq 'forbidden|"level":"error"' "$WORK/run/controller.log"; then grep -Ei 'forbidden|error' "$WORK/run/controller.log"; return 1; fi
  }
  check "graydebug-controller runs with the chart's args, config and ServiceAccount (ready, leads through its Lease, no RBAC error)" controller_ready

  # A pod of manifests/examples/gray-deployment.yaml, as its ReplicaSet would create it.
  k create namespace shop >/dev/null
  POD=order-v2-alpha-chart
  python3 - "$REPO/manifests/examples/gray-deployment.yaml" "$POD" > "$WORK/gray-pod.json" <<'PY'
import json, sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
t = d["spec"]["template"]
print(json.dumps({"apiVersion": "v1", "kind": "Pod",
                  "metadata": dict(t["metadata"], name=sys.argv[2], namespace=d["metadata"]["namespace"]),
                  "spec": t["spec"]}))
PY
  injected_dry_run() { k create --dry-run=server -f "$WORK/gray-pod.json" -o jsonpath='{.spec.containers[*].name}' | grep -q dlv-server; }
  gray_pod_injected() {
    # The API server picks up a changed webhook configuration within a second or so.
    wait_until 30 injected_dry_run || { echo "not injected:"; k create --dry-run=server -f "$WORK/gray-pod.json" -o yaml; return 1; }
    k create -f "$WORK/gray-pod.json" -o json > "$WORK/gray-pod.created.json" || return 1
    python3 - "$WORK/gray-pod.created.json" "$DLV_PORT" "$AGENT_PORT" <<'PY'
import json, sys
pod, dlv_port, agent_port = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
names = [c["name"] for c in pod["spec"]["containers"]]
assert names == ["order", "dlv-server", "graydebug-agent"], names
c = {c["name"]: c for c in pod["spec"]["containers"]}
assert f"--listen=127.0.0.1:{dlv_port}" in c["dlv-server"]["args"], c["dlv-server"]["args"]
assert any(p["containerPort"] == int(agent_port) for p in c["graydebug-agent"]["ports"])
assert pod["spec"]["shareProcessNamespace"] is True
assert pod["metadata"]["labels"]["graydebug.io/injected"] == "true"
status = json.loads(pod["metadata"]["annotations"]["graydebug.io/status"])
assert status["target"] == "order" and status["dlvPort"] == int(dlv_port), status
PY
  }
  check "a pod of manifests/examples/gray-deployment.yaml, created through the chart's webhook configuration, gets dlv-server and graydebug-agent" gray_pod_injected

  # The pod "runs" here: the demo app as its process, and its two sidecars' own commands (from the
  # injected pod) with the target's pid, dlv's path and loopback in place of the pod's namespace.
  "$WORK/bin/leaky-app" --listen "127.0.0.1:$APP_PORT" 2> "$WORK/run/leaky-app.log" &
  APP=$!; pids+=($APP)
  sidecar_args() { # CONTAINER: its args from the created pod, one per line
    python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print("\n".join(next(c["args"] for c in p["spec"]["containers"] if c["name"] == sys.argv[2])))' \
      "$WORK/gray-pod.created.json" "$1" | sed -e "s|^--listen=:|--listen=127.0.0.1:|"
  }
  mapfile -t dlv_args < <(sidecar_args dlv-server)
  mapfile -t agent_args < <(sidecar_args graydebug-agent)
  "$WORK/bin/graydebug-agent" "${dlv_args[@]}" --dlv-path="$WORK/bin/dlv" --target-pid="$APP" > "$WORK/run/dlv.log" 2>&1 &
  pids+=($!)
  "$WORK/bin/graydebug-agent" "${agent_args[@]}" --target-pid="$APP" --expvar-url="http://127.0.0.1:$APP_PORT/debug/vars" \
    2> "$WORK/run/agent.log" &
  pids+=($!)
  attach() {
    wait_until 60 curl -sf "http://127.0.0.1:$AGENT_PORT/probe/dlv" ||
      { echo "the agent's dlv probe never answered:"; tail -n 5 "$WORK/run/dlv.log" "$WORK/run/agent.log"; return 1; }
    k patch pod -n shop "$POD" --subresource=status --type=merge \
      -p '{"status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}]}}' >/dev/null || return 1
    KUBECTL="$KUBECTL" timeout 90 "$WORK/bin/kubectl-graydebug" attach "$POD" -n shop --ttl 10m --reason "chart test" \
      --no-port-forward > "$WORK/run/attach.out" 2> "$WORK/run/attach.err" ||
      { cat "$WORK/run/attach.out" "$WORK/run/attach.err"; tail -n 5 "$WORK/run/controller.log"; return 1; }
    cat "$WORK/run/attach.out" "$WORK/run/attach.err"
    grep -q "dlv connect 127.0.0.1:$DLV_PORT" "$WORK/run/attach.out" &&
      grep -q "No port-forward (--no-port-forward)" "$WORK/run/attach.err" || return 1
    local phase
    phase=$(k get debugsessions -n shop -o jsonpath='{.items[0].status.phase}')
    [ "$phase" = Active ] || { echo "phase $phase"; return 1; }
    touch "$WORK/run/attached" # check runs this in a subshell: a file, not a variable
  }
  check "kubectl graydebug attach $POD --no-port-forward: Active against the real agent, dlv and demo app (no kubelet here, so no port-forward; dlv's port is this machine's)" attach
  echo "       $(grep -m1 'dlv connect' "$WORK/run/attach.out" 2>/dev/null || true)"

  # Every metric that a dashboard query or an alert names is one that the binaries export.
  exported_metrics() {
    for port in "$WH_METRICS" "$CTL_METRICS"; do curl -sf "http://127.0.0.1:$port/metrics" || return 1; done > "$WORK/run/metrics.txt"
    python3 "$CHECKS" metrics "$WORK/run/metrics.txt" "$CHART/files/grafana-dashboard.json" "$WORK/all-on.yaml" ||
      { [ -e "$WORK/run/attached" ] || echo "(the session series appear with a session: the attach check above failed)"; return 1; }
  }
  check "every metric in the dashboard's queries and the PrometheusRule's expressions is exported by the webhook or controller" exported_metrics

  # Not inside check: `wait` needs this shell, the processes' parent.
  stop_result=""
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 150); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { kill -KILL "$p"; stop_result+="pid $p still ran 15 s after SIGTERM; "; }
    rc=0; wait "$p" || rc=$?
    [ "$rc" -eq 0 ] || [ "$p" = "$APP" ] || stop_result+="pid $p exited $rc; "
  done
  pids=()
  stopped_cleanly() { [ -z "$stop_result" ] || { echo "$stop_result"; return 1; }; }
  check "webhook, controller, launch-dlv and agent stop cleanly on SIGTERM (exit 0)" stopped_cleanly
else
  skip "the binaries with the chart's args, config, certificate and RBAC; a gray pod injected and attached" \
    "missing:$missing (build first, or set GRAYDEBUG_BIN; make deps builds dlv)"
fi
skip "helm test in the cluster" "the local control plane has no kubelet, so the test pod never runs (with the binaries, its graydebug-webhook check-ready command runs against the real webhook above)"

check "helm upgrade (same values)" "$HELM" upgrade "$RELEASE" "$CHART" -n "$NS" --reuse-values --timeout 2m
same_certificate() {
  [ "$(secret_data)" = "$secret_before" ] && [ "$(ca_bundles)" = "$bundles_before" ] ||
    { echo "the TLS Secret or the caBundles changed"; return 1; }
}
check "helm upgrade keeps the TLS Secret (lookup) and the caBundles" same_certificate
check "helm upgrade --set controller.pauseRollout=true" "$HELM" upgrade "$RELEASE" "$CHART" -n "$NS" --reuse-values \
  --set controller.pauseRollout=true --timeout 2m
may_patch_deployments() {
  [ "$(as controller auth can-i patch deployments.apps -n shop)" = yes ] && same_certificate
}
check "  ... the controller may now get and patch deployments; the Secret and caBundles are unchanged" may_patch_deployments

uninstall_check() {
  "$HELM" get manifest "$RELEASE" -n "$NS" > "$WORK/final.yaml"
  "$HELM" uninstall "$RELEASE" -n "$NS" --timeout 2m
  local left
  left=$(k get -f "$WORK/final.yaml" --ignore-not-found -o name 2>&1)
  [ "$left" = "customresourcedefinition.apiextensions.k8s.io/debugsessions.graydebug.io" ] ||
    { echo "left after uninstall: $left"; return 1; }
  left=$(k get all,configmaps,secrets,serviceaccounts,roles,rolebindings,poddisruptionbudgets -n "$NS" \
    -l "app.kubernetes.io/instance=$RELEASE" -o name 2>&1)
  left+=$(k get clusterroles,clusterrolebindings,mutatingwebhookconfigurations -l "app.kubernetes.io/instance=$RELEASE" -o name 2>&1)
  [ -z "$left" ] || { echo "labelled objects left: $left"; return 1; }
}
check "helm uninstall removes every object but the kept CRD" uninstall_check

echo "chart: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
