# graydebug — the two commands are `make demo` and `make test`; everything else is a step of them.
# BUILD_TYPE=Debug make build  for a debug build (build-debug/).

SHELL := /bin/bash
BUILD_TYPE ?= Release
BUILD_DIR ?= $(if $(filter Release,$(BUILD_TYPE)),build,build-$(shell echo $(BUILD_TYPE) | tr A-Z a-z))
CTEST_ARGS ?=
JOBS ?= $(shell nproc)


.PHONY: all deps build images test test-unit test-integration test-asan test-tsan demo bench bench-quick lint format reliability cluster-up cluster-down control-plane-up control-plane-down clean golden fuzz manifests

all: build

## deps: Debian packages + pinned kube-apiserver/kubectl/etcd/helm/dlv (cached outside the repo)
deps:
	@hack/deps.sh

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DGRAYDEBUG_WERROR=ON >/dev/null

## build: the four binaries into $(BUILD_DIR)/bin, and the tests
build: $(BUILD_DIR)/build.ninja
	@cmake --build $(BUILD_DIR) -j $(JOBS)

## images: the container images as OCI tarballs without a daemon or registry (graydebug, leaky-app,
## pause, coredns; cached in ~/.cache/graydebug/images; docs/images.md); prints their paths
images: deps build
	@GRAYDEBUG_BIN=$(CURDIR)/$(BUILD_DIR)/bin hack/images.sh build

## test: unit + integration tests (real etcd, kube-apiserver, kubectl) and the real-node suite (label
## e2e: hack/node, make images, the chart in-cluster), then the unit and integration tests again on
## an ASan+UBSan build (build-asan/, built niced beside the release half; ASAN=0 skips that part);
## does deps and build first (hack/test.sh)
ASAN ?= 1
test: deps $(BUILD_DIR)/build.ninja
	@BUILD_DIR=$(BUILD_DIR) JOBS=$(JOBS) ASAN=$(ASAN) hack/test.sh $(CTEST_ARGS)

## test-e2e: only the real-node suite of `make test` (CTest label e2e: hack/node, make images, the
## chart in-cluster; docs/real-node.md)
test-e2e: deps build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L e2e $(CTEST_ARGS)

test-unit: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L unit $(CTEST_ARGS)

test-integration: deps build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L integration $(CTEST_ARGS)

## reliability: fault tests, the controller leader SIGKILLed 10x under session churn, and the soaks of
## the webhook and the controller (SOAK_MINUTES each, default 10; about 30 min in all). docs/reliability.md
reliability: deps build
	@cd $(BUILD_DIR) && ctest --output-on-failure -R '^faults$$' $(CTEST_ARGS)
	@cd $(BUILD_DIR) && SOAK_MINUTES=$${SOAK_MINUTES:-10} bin/reliability_tests

## test-asan / test-tsan: every test of `make test` on an ASan+UBSan / TSan build (build-asan/,
## build-tsan/); any sanitizer report, also from a spawned graydebug binary, fails the run
SAN_CTEST_ARGS ?=
test-asan: deps
	@hack/sanitize.sh address build-asan $(SAN_CTEST_ARGS)

test-tsan: deps
	@hack/sanitize.sh thread build-tsan $(SAN_CTEST_ARGS)

## manifests: re-render manifests/install from the Helm chart (a test checks it is current)
manifests: deps
	@hack/render-manifests.sh

## golden: regenerate tests/fixtures/injector/*.golden.json (review the diff before committing)
golden: build
	@GRAYDEBUG_UPDATE_GOLDEN=1 $(BUILD_DIR)/bin/unit_tests -tc='golden*' >/dev/null
	@git status --short tests/fixtures/injector

## fuzz: libFuzzer targets (ASan+UBSan) for FUZZ_SECONDS each on the committed corpora (not in CI)
fuzz:
	@hack/fuzz.sh

## demo: the main job, end to end on a real node (DEMO_MODE=local: on a bare control plane, no node)
demo: deps build
	@hack/demo.sh

## bench: benchmarks beside their peers (median of 5 runs, < 15 min); numbers go to docs/benchmarks.md
bench: deps build
	@bench/run.sh

## bench-quick: every benchmark once with small counts (< 2 min); to build/bench-quick/benchmarks.md
bench-quick: deps build
	@bench/run.sh --quick

## lint: clang-format check and clang-tidy over every C++ file
lint: $(BUILD_DIR)/build.ninja
	@hack/lint.sh $(BUILD_DIR)

format:
	@hack/lint.sh --fix $(BUILD_DIR)

## cluster-up / cluster-down: a real single node (etcd, kube-apiserver, controller-manager, scheduler,
## containerd + runc, kubelet, kube-proxy, CNI, CoreDNS) in its own network namespace, in build/node
## (docs/real-node.md); cluster-down leaves nothing behind. control-plane-up/-down: only etcd and
## kube-apiserver on loopback (build/cluster), as the integration tests use them.
cluster-up: deps
	@hack/node up --dir build/node >/dev/null && \
	  echo "kubeconfig: $(CURDIR)/build/node/kubeconfig" && \
	  echo "try: $$(hack/tools/bin-dir kubernetes)/kubectl --kubeconfig $(CURDIR)/build/node/kubeconfig get nodes"

cluster-down:
	@hack/node down --dir build/node

control-plane-up: deps
	@kc=$$(hack/cluster up --dir build/cluster) && \
	  echo "kubeconfig: $$kc" && \
	  echo "try: $$(hack/tools/bin-dir kubernetes)/kubectl --kubeconfig $$kc get --raw /readyz"

control-plane-down:
	@hack/cluster down --dir build/cluster

clean: cluster-down control-plane-down
	@rm -rf build build-*
