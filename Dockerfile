# syntax=docker/dockerfile:1
# The graydebug image: graydebug-webhook, graydebug-controller, graydebug-agent, kubectl-graydebug,
# dlv and the demo leaky-app. Multi-stage on Debian bookworm, for `docker build`. The development
# machines have no Docker engine: there `make images` (hack/images.sh, docs/images.md) builds the same
# runtime stage without one, reading its apt packages, COPY destinations, USER and ENTRYPOINT from
# this file, and tests/images/image_test.sh checks the result against it; tests/unit/binaries_test.cpp
# checks that every path the build stages copy exists in the build output and the repository.

# --- C++ binaries -----------------------------------------------------------------------------
FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake ninja-build git ca-certificates \
      libssl-dev libboost-dev libyaml-cpp-dev nlohmann-json3-dev prometheus-cpp-dev libsimdjson-dev libmimalloc-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY include ./include
COPY lib ./lib
COPY webhook ./webhook
COPY controller ./controller
COPY agent ./agent
COPY cli ./cli
RUN cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DGRAYDEBUG_TESTS=OFF -DGRAYDEBUG_BENCH=OFF -DGRAYDEBUG_DEMO=OFF \
    && cmake --build build --target graydebug-webhook graydebug-controller graydebug-agent kubectl-graydebug

# --- dlv (pinned like hack/tools/versions.env) and the demo app ---------------------------------
FROM golang:1.26-bookworm AS go
ARG DLV_VERSION=v1.27.2
RUN CGO_ENABLED=0 go install github.com/go-delve/delve/cmd/dlv@${DLV_VERSION}
COPY demo/leaky-app /src/demo/leaky-app
RUN cd /src/demo/leaky-app && CGO_ENABLED=0 go build -gcflags='all=-N -l' -o /go/bin/leaky-app .

# --- runtime ----------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      libyaml-cpp0.7 libprometheus-cpp-core1.0 libsimdjson14 libmimalloc2.0 libssl3 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/bin/graydebug-webhook /src/build/bin/graydebug-controller \
     /src/build/bin/graydebug-agent /src/build/bin/kubectl-graydebug /usr/local/bin/
COPY --from=go /go/bin/dlv /go/bin/leaky-app /usr/local/bin/
# Non-root by default (the webhook, controller and agent need nothing more). The injected dlv-server
# container runs as the app's user with CAP_SYS_PTRACE added by the webhook's securityContext.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/graydebug-agent"]
