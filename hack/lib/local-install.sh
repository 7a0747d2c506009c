# Sourced by hack/demo.sh and the shell tests: running graydebug's binaries here, outside the
# cluster, with what the Helm chart installed (webhook.url mode, docs/helm.md).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# sa_kubeconfig KUBECTL NAMESPACE SERVICEACCOUNT FILE [DURATION]: a kubeconfig authenticating as the
# ServiceAccount with a TokenRequest token (default 10m), against the current context's server.
sa_kubeconfig() {
  local kubectl=$1 ns=$2 sa=$3 file=$4 duration=${5:-10m} token server ca
  token=$("$kubectl" create token "$sa" -n "$ns" --duration="$duration")
  server=$("$kubectl" config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$("$kubectl" config view --minify --raw -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  cat > "$file" <<KC
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$ca"}}]
users: [{name: $sa, user: {token: "$token"}}]
contexts: [{name: $sa, context: {cluster: local, user: $sa, namespace: $ns}}]
current-context: $sa
KC
}

# chart_files KUBECTL NAMESPACE DIR [DURATION]: what the chart's Deployments would mount, for local
# processes: DIR/{tls.crt,tls.key,ca.crt} from Secret graydebug-webhook-tls, DIR/{webhook,controller}.yaml
# from their ConfigMaps, DIR/{webhook,controller}.kubeconfig with their ServiceAccounts' tokens.
chart_files() {
  local kubectl=$1 ns=$2 dir=$3 duration=${4:-10m} key c
  for key in tls.crt tls.key ca.crt; do
    "$kubectl" get secret -n "$ns" graydebug-webhook-tls -o jsonpath="{.data.${key//./\\.}}" | base64 -d > "$dir/$key"
  done
  for c in webhook controller; do
    "$kubectl" get configmap -n "$ns" "graydebug-$c" -o jsonpath='{.data.config\.yaml}' > "$dir/$c.yaml"
    sa_kubeconfig "$kubectl" "$ns" "graydebug-$c" "$dir/$c.kubeconfig" "$duration"
  done
}
