#!/usr/bin/env bash
# The chart in-cluster on the real node (issue #16 item 3), unchanged but for the image's
# repository, tag and pull policy.
#   chart_test.sh install     CTest fixture e2e_chart (setup): helm install, everything Ready,
#                             `helm test`, `helm upgrade` keeps the certificate and injection works
#   chart_test.sh uninstall   CTest fixture e2e_chart (cleanup): `helm uninstall` leaves what
#                             docs/helm.md says it leaves (the CRD and the sessions), nothing else
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
WORK=${WORK:-$REPO/build/e2e-work}/chart
. "$REPO/tests/e2e/lib.sh"
mkdir -p "$WORK"

webhook_sel=app.kubernetes.io/component=webhook
controller_sel=app.kubernetes.io/component=controller

install() {
  local t0=$SECONDS
  check "helm install (image repository/tag/pullPolicy only) --wait" helm_install
  echo "       helm install -> Ready: $((SECONDS - t0)) s"
  check "2 webhook replicas Ready" pods_ready "$RELEASE_NS" "$webhook_sel" 2
  check "2 controller replicas Ready" pods_ready "$RELEASE_NS" "$controller_sel" 2
  check "the webhook Service has 2 ready endpoints" sh -c \
    "[ \$(kubectl -n $RELEASE_NS get endpointslices -l kubernetes.io/service-name=\$(kubectl -n $RELEASE_NS get svc -l $webhook_sel -o jsonpath='{.items[0].metadata.name}') -o jsonpath='{range .items[*].endpoints[?(@.conditions.ready==true)]}x{end}' | wc -c) -eq 2 ]"
  check "a PodDisruptionBudget guards the webhook" sh -c "kubectl -n $RELEASE_NS get pdb -o jsonpath='{.items[*].spec.minAvailable}' | grep -q 1"
  check "one controller leads (its Lease names a controller pod)" wait_until 60 sh -c \
    "h=\$(kubectl -n $RELEASE_NS get lease -o jsonpath='{.items[*].spec.holderIdentity}'); [ -n \"\$h\" ] &&
     kubectl -n $RELEASE_NS get pods -l $controller_sel -o name | sed 's|pod/||' | while read -r p; do case \$h in \$p-*) echo \$p;; esac; done | grep -q ."
  check "the webhook configuration's caBundle is the Helm-generated CA" sh -c "
    ca=\$(kubectl get mutatingwebhookconfiguration -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].webhooks[0].clientConfig.caBundle}')
    sec=\$(kubectl -n $RELEASE_NS get secret -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].data.ca\\.crt}')
    [ -n \"\$ca\" ] && [ \"\$ca\" = \"\$sec\" ]"
  check "helm test passes (the graydebug image, no other image)" "$HELM" test "$RELEASE" -n "$RELEASE_NS" --timeout 120s
  check "no pod of the release uses an image other than graydebug's" sh -c \
    "! kubectl -n $RELEASE_NS get pods -o jsonpath='{range .items[*]}{.spec.containers[*].image}{\"\\n\"}{end}' | grep -v 'graydebug/graydebug:$IMAGE_TAG' | grep -q ."
  local crt_before
  crt_before=$(k -n "$RELEASE_NS" get secret -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].data.tls\.crt}')
  check "helm upgrade (a changed value) rolls out and stays Ready" helm_install --reuse-values --set logLevel=debug
  check "helm upgrade keeps the serving certificate" sh -c \
    "[ \"\$(kubectl -n $RELEASE_NS get secret -l app.kubernetes.io/instance=$RELEASE -o jsonpath='{.items[0].data.tls\\.crt}')\" = '$crt_before' ]"
  check "after the upgrade: 2 webhook and 2 controller replicas Ready" sh -c \
    "$(declare -f ready_pods pods_ready k); pods_ready $RELEASE_NS $webhook_sel 2 && pods_ready $RELEASE_NS $controller_sel 2"
  helm_install --reuse-values --set logLevel=info >/dev/null 2>&1 || true
}

uninstall() {
  k create namespace chart-left >/dev/null 2>&1 || true
  k -n chart-left apply -f - >/dev/null <<'YAML'
apiVersion: graydebug.io/v1alpha1
kind: DebugSession
metadata: {name: left-behind}
spec: {target: {pod: nowhere}, ttl: 5m}
YAML
  check "helm uninstall" "$HELM" uninstall "$RELEASE" -n "$RELEASE_NS" --wait --timeout 120s
  # The ReplicaSets' pods go by garbage collection after helm returns: given a minute.
  check "no graydebug pod, Service, webhook configuration or RBAC object is left" wait_until 90 sh -c "
    [ -z \"\$(kubectl -n $RELEASE_NS get pods,svc,deploy,pdb,configmap,secret,sa,role,rolebinding -l app.kubernetes.io/instance=$RELEASE -o name)\" ] &&
    [ -z \"\$(kubectl get mutatingwebhookconfiguration,clusterrole,clusterrolebinding -l app.kubernetes.io/instance=$RELEASE -o name)\" ]"
  check "the CRD stays (crds.keep: true), and with it the sessions (docs/helm.md)" sh -c \
    "kubectl get crd debugsessions.graydebug.io >/dev/null && kubectl -n chart-left get debugsession left-behind >/dev/null"
  check "a pod created after the uninstall is admitted without sidecars" sh -c "
    sed 's/^  namespace: shop\$/  namespace: chart-left/' '$REPO/manifests/examples/gray-deployment.yaml' | kubectl apply -f - >/dev/null &&
    kubectl -n chart-left rollout status deploy/order-v2-alpha --timeout=90s >/dev/null &&
    [ \"\$(kubectl -n chart-left get pods -l app=order -o jsonpath='{.items[0].spec.containers[*].name}')\" = order ]"
  k delete namespace chart-left --wait=false >/dev/null 2>&1 || true
}

case "${1:-}" in
  install) install ;;
  uninstall) uninstall ;;
  *) echo "usage: chart_test.sh install|uninstall" >&2; exit 2 ;;
esac
echo "passed $passed, failed $failed"
[ "$failed" -eq 0 ]
