#!/usr/bin/env bash
# Builds the pinned tools (Kubernetes binaries, etcd, helm, dlv, and the node's containerd, runc and
# CoreDNS) from Go modules into the cache outside the repo. Idempotent: a tool whose stamp matches
# its go.mod/go.sum (and main.go, for coredns) is skipped.
# Usage: hack/tools/build.sh [kubernetes|etcd|helm|dlv|containerd|runc|coredns ...]   (default: all)
# Prints nothing but one line per tool when everything is already built.
set -euo pipefail
. "$(dirname "$0")/common.sh"

# containerd as its Makefile builds it, minus the snapshotters the node does not use: btrfs needs
# cgo and libbtrfs, zfs and devmapper are dead weight next to overlayfs. CGO_ENABLED=0 makes all
# three binaries static (the shim must be: it outlives containerd and is exec'd by it). The shim
# gets no_grpc as upstream's does: it speaks ttrpc only.
CONTAINERD_TAGS="urfave_cli_no_docs no_btrfs no_zfs no_devmapper"
CONTAINERD_SHIM_TAGS="$CONTAINERD_TAGS no_grpc"
# runc's Makefile default minus libpathrs (a Rust C library Debian 12 does not ship). seccomp needs
# cgo against Debian's libseccomp-dev; runc's nsenter is C anyway.
RUNC_TAGS="seccomp urfave_cli_no_docs"

fail() { echo "tools: build failed; last lines of $1:" >&2; tail -n 40 "$1" >&2; exit 1; }
# recipe_of TOOL: a line that changes when a tool's build flags change (empty: only the pins count).
recipe_of() {
  case "$1" in
    helm) echo "helm ldflags: kube version stamp" ;;
    containerd) echo "containerd tags: $CONTAINERD_TAGS; shim: $CONTAINERD_SHIM_TAGS" ;;
    runc) echo "runc tags: $RUNC_TAGS; cgo pie" ;;
  esac
}
stamp_of() {
  # coredns's main.go chooses its plugins, so it counts like go.mod (no other tool has a .go file)
  { cat "$TOOLS_SRC/$1/go.mod" "$TOOLS_SRC/$1/go.sum" "$TOOLS_SRC/versions.env"
    find "$TOOLS_SRC/$1" -maxdepth 1 -name '*.go' | sort | xargs -r cat; recipe_of "$1"; } | sha256sum | cut -c1-16
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
    containerd)
      local m=github.com/containerd/containerd/v2 ld
      ld="-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m"
      ld+=" -X $m/version.Revision=graydebug-module-build"
      go build $flags -tags "$CONTAINERD_TAGS" -ldflags "$ld" -o "$bin/" "$m/cmd/containerd" "$m/cmd/ctr" >"$log" 2>&1 || fail "$log"
      go build $flags -tags "$CONTAINERD_SHIM_TAGS" -ldflags "$ld" -o "$bin/" "$m/cmd/containerd-shim-runc-v2" >>"$log" 2>&1 || fail "$log"
      ;;
    runc)
      # The version comes from runc's embedded VERSION file; pie as runc's Makefile builds it.
      CGO_ENABLED=1 go build $flags -buildmode=pie -tags "$RUNC_TAGS" -ldflags "-s -w" -o "$bin/runc" github.com/opencontainers/runc >"$log" 2>&1 || fail "$log"
      ;;
    coredns)
      go build $flags -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=graydebug-module-build" -o "$bin/coredns" . >"$log" 2>&1 || fail "$log"
      ;;
  esac
  echo "$want" > "$bin/.stamp"
  echo "tools: built $tool in $(( $(date +%s) - start ))s"
}

if [ $# -eq 0 ]; then set -- kubernetes etcd helm dlv containerd runc coredns; fi
for t in "$@"; do (build "$t"); done
