#!/usr/bin/env bash
# Regenerates hack/tools/<tool>/go.mod and go.sum from the pinned version in versions.env.
# For kubernetes the `replace` of every staging module is read from k8s.io/kubernetes' own go.mod,
# so bumping KUBERNETES_VERSION needs no edit here. coredns keeps its hand-written main.go (only the
# plugins the node uses): its go.mod is whatever that main needs at COREDNS_VERSION.
set -euo pipefail
. "$(dirname "$0")/common.sh"

gen() {
  local tool=$1 dir="$TOOLS_SRC/$1"
  mkdir -p "$dir"
  rm -f "$dir/go.mod" "$dir/go.sum"
  cd "$dir"
  go mod init "graydebug.io/hack/tools/$tool" >/dev/null 2>&1
  local goline
  case "$tool" in
    kubernetes)
      local v=$KUBERNETES_VERSION staging=v0.${KUBERNETES_VERSION#v1.}
      local gomod
      gomod=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
      goline=$(awk '$1=="go"{print $2; exit}' "$gomod")
      go mod edit -go="$goline" -require="k8s.io/kubernetes@$v"
      # every "k8s.io/X => ./staging/src/k8s.io/X" becomes "k8s.io/X => k8s.io/X v0.<minor>.<patch>"
      awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1} $1=="replace" && $3=="=>" && $4 ~ /^\.\/staging\// {print $2}' "$gomod" |
        sort -u | while read -r m; do go mod edit -replace="$m=$m@$staging"; done
      go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$v" "k8s.io/kubernetes/cmd/kubectl@$v"
      ;;
    etcd)
      go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
      ;;
    helm)
      go get -tool "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
      ;;
    dlv)
      go get -tool "github.com/go-delve/delve/cmd/dlv@$DLV_VERSION"
      ;;
    containerd)
      local m=github.com/containerd/containerd/v2
      go get -tool "$m/cmd/containerd@$CONTAINERD_VERSION" "$m/cmd/ctr@$CONTAINERD_VERSION" \
        "$m/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
      ;;
    runc)
      # runc is a main package at its module root; its go.mod has no replace lines (checked for
      # v1.5.3), so it is required like any other tool. The check keeps a future one from being
      # silently ignored (a consumer does not see a dependency's replaces).
      local gomod
      gomod=$(go mod download -json "github.com/opencontainers/runc@$RUNC_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
      if grep -Eq '^replace|=>' "$gomod"; then
        echo "gen-gomod: runc $RUNC_VERSION's go.mod has replace lines: copy them here as for kubernetes" >&2
        return 1
      fi
      go get -tool "github.com/opencontainers/runc@$RUNC_VERSION"
      ;;
    coredns)
      # main.go imports coremain and the chosen plugins; tidy adds exactly what they need.
      go get "github.com/coredns/coredns@$COREDNS_VERSION"
      ;;
  esac
  go mod tidy >/dev/null 2>&1 || true
  echo "generated $dir/go.mod ($(grep -c '=>' go.mod || true) replaces)"
}

if [ $# -eq 0 ]; then set -- kubernetes etcd helm dlv containerd runc coredns; fi
for t in "$@"; do gen "$t"; done
