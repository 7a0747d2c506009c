#!/usr/bin/env bash
# The informer's protobuf tables (lib/kube/proto_schema_gen.inc) must come from the Go types of the
# API server graydebug is built and tested against: hack/protoschema's k8s.io/api and
# k8s.io/apimachinery must be v0.X.Y for Kubernetes v1.X.Y (hack/tools/versions.env), and the table
# must say so. After a bump: cd hack/protoschema && go get k8s.io/api@v0.X.Y k8s.io/apimachinery@v0.X.Y
# k8s.io/client-go@v0.X.Y && go run . > ../../lib/kube/proto_schema_gen.inc && go run . -corpus
# ../../tests/fixtures/proto
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
. "$repo/hack/tools/versions.env"
want="v0.${KUBERNETES_VERSION#v1.}"
fail=0
for m in k8s.io/api k8s.io/apimachinery; do
  got=$(awk -v m="$m" '$1 == m {print $2}' "$repo/hack/protoschema/go.mod")
  if [ "$got" != "$want" ]; then
    echo "proto_schema: hack/protoschema requires $m ${got:-(none)}, but Kubernetes is $KUBERNETES_VERSION (want $want)"
    fail=1
  fi
done
if ! grep -q "k8s.io/api and k8s.io/apimachinery $want\." "$repo/lib/kube/proto_schema_gen.inc"; then
  echo "proto_schema: lib/kube/proto_schema_gen.inc was not generated from $want (see the top of this script)"
  fail=1
fi
[ $fail = 0 ] && echo "proto_schema: tables from $want for Kubernetes $KUBERNETES_VERSION"
exit $fail
