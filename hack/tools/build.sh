#!/usr/bin/env bash
# Builds the pinned tools (kube-apiserver, kubectl, etcd, helm, dlv) from Go modules into the
# cache outside the repo. Idempotent: a tool whose stamp matches its go.mod/go.sum is skipped.
# Usage: hack/tools/build.sh [kubernetes|etcd|helm|dlv ...]   (default: all)
# Prints nothing but one line per tool when everything is already built.
set -euo pipefail
. "$(dirname "$0")/common.sh"

fail() { echo "tools: build failed; last lines of $1:" >&2; tail -40 "$1" >&2; exit 1; }
# recipe_of TOOL: a line that changes when a tool's build flags change (empty: only the pins count).
recipe_of() { case "$1" in helm) echo "helm ldflags: kube version stamp" ;; esac; }
stamp_of() {
  { cat "$TOOLS_SRC/$1/go.mod" "$TOOLS_SRC/$1/go.sum" "$TOOLS_SRC/versions.env"; recipe_of "$1"; } | sha256sum | cut -c1-16
}

build() {
  local tool=$1 bin want start
  bin=$(tool_bindir "$tool")
  want=$(stamp_of "$tool")
  if [ -f "$bin/.stamp" ] && [ "$(cat "$bin/.stamp")" = "$want" ]; then
    echo "tools: $tool $(tool_version "$tool") up to date in $bin"
    return 0
  fi
  start=$(date +%s)
  echo "tools: building $tool $(tool_version "$tool") into $bin (first time only; see docs/tools.md)"
  mkdir -p "$bin" "$GRAYDEBUG_CACHE/logs"
  local log="$GRAYDEBUG_CACHE/logs/build-$tool.log"
  cd "$TOOLS_SRC/$tool"
  local flags="-trimpath -pgo=off"
  case "$tool" in
    kubernetes)
      local v=$KUBERNETES_VERSION minor
      minor=$(echo "$v" | cut -d. -f2)
      local ld="-s -w"
      ld+=" -X k8s.io/component-base/version.gitVersion=$v -X k8s.io/component-base/version.gitMajor=1"
      ld+=" -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
      ld+=" -X k8s.io/component-base/version.gitCommit=graydebug-module-build"
      ld+=" -X k8s.io/client-go/pkg/version.gitVersion=$v -X k8s.io/client-go/pkg/version.gitMajor=1"
      ld+=" -X k8s.io/client-go/pkg/version.gitMinor=$minor"
      go build $flags -ldflags "$ld" -o "$bin/" $(printf 'k8s.io/kubernetes/cmd/%s ' kube-apiserver kubectl kubelet kube-controller-manager kube-scheduler kube-proxy) >"$log" 2>&1 || fail "$log"
      ;;
    etcd)
      go build $flags -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >"$log" 2>&1 || fail "$log"
      ;;
    helm)
      # As helm's own Makefile does: the Kubernetes version that `helm template` and `helm lint`
      # assume without a cluster (--kube-version); unset, it is v1.20 and the chart's kubeVersion
      # constraint refuses it. Here: the pinned kube-apiserver's.
      local kmajor kminor ld
      kmajor=$(echo "${KUBERNETES_VERSION#v}" | cut -d. -f1); kminor=$(echo "$KUBERNETES_VERSION" | cut -d. -f2)
      ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
        ld+=" -X $pkg.k8sVersionMajor=$kmajor -X $pkg.k8sVersionMinor=$kminor"
      done
      go build $flags -ldflags "$ld" -o "$bin/helm" helm.sh/helm/v3/cmd/helm >"$log" 2>&1 || fail "$log"
      ;;
    dlv)
      go build $flags -o "$bin/dlv" github.com/go-delve/delve/cmd/dlv >"$log" 2>&1 || fail "$log"
      ;;
  esac
  echo "$want" > "$bin/.stamp"
  echo "tools: built $tool in $(( $(date +%s) - start ))s"
}

if [ $# -eq 0 ]; then set -- kubernetes etcd helm dlv; fi
for t in "$@"; do (build "$t"); done
