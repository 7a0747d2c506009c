#!/usr/bin/env bash
# The libraries keep to the pure/adapter line (docs/architecture.md, "Libraries"): the pure core
# references no Beast, Asio, yaml-cpp or prometheus-cpp symbol (nor cpprest's, which graydebug no longer
# uses at all), and each binary needs only the shared libraries it uses (the agent no yaml-cpp;
# kubectl-graydebug no prometheus; none cpprest). Debian's
# GCC adds --as-needed except under -fsanitize: in a sanitizer build NEEDED is the link graph itself.
# Usage: link_deps_test.sh BUILD_DIR
set -uo pipefail
build=$1
fails=0
ok() { echo "ok   - $1"; }
fail() { echo "FAIL - $1"; fails=$((fails + 1)); }

core=$build/lib/libgraydebug_core.a
if [ ! -f "$core" ]; then fail "no $core"; exit 1; fi
# Undefined symbols of the core's objects, demangled: what it needs from elsewhere.
bad=$(nm -C -u "$core" | grep -E 'web::|pplx::|concurrency::streams|boost::beast|boost::asio|YAML::|prometheus::' | sort -u | head -5)
if [ -z "$bad" ]; then ok "graydebug_core needs no cpprest, Beast, Asio, yaml-cpp or prometheus-cpp symbol"; else fail "graydebug_core needs: $bad"; fi

needed() { readelf -d "$build/bin/$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' '; }
# binary, shared libraries it must not need
while read -r bin forbidden; do
  [ -n "$bin" ] || continue
  n=$(needed "$bin")
  [ -n "$n" ] || { fail "$bin: no NEEDED entries read"; continue; }
  hit=""
  for lib in $forbidden; do case " $n" in *" $lib"*) hit="$hit $lib" ;; esac; done
  if [ -z "$hit" ]; then ok "$bin needs none of: $forbidden"; else fail "$bin needs$hit (NEEDED: $n)"; fi
done <<'LIST'
graydebug-agent libcpprest libyaml-cpp libboost
graydebug-webhook libcpprest libboost
graydebug-controller libcpprest libboost
kubectl-graydebug libcpprest libprometheus-cpp libboost
LIST
# graydebug-webhook allocates with mimalloc (docs/decisions.md), linked outside --as-needed; only it,
# and not under a sanitizer, which brings its own allocator.
if grep -q '^GRAYDEBUG_SANITIZE:STRING=.\+' "$build/CMakeCache.txt" 2>/dev/null; then
  case " $(needed graydebug-webhook)" in
    *" libmimalloc"*) fail "graydebug-webhook needs libmimalloc in a sanitizer build" ;;
    *) ok "graydebug-webhook keeps the sanitizer's allocator" ;;
  esac
else
  case " $(needed graydebug-webhook)" in
    *" libmimalloc"*) ok "graydebug-webhook needs libmimalloc" ;;
    *) fail "graydebug-webhook does not need libmimalloc (NEEDED: $(needed graydebug-webhook))" ;;
  esac
fi
for bin in graydebug-agent graydebug-controller kubectl-graydebug; do
  case " $(needed "$bin")" in
    *" libmimalloc"*) fail "$bin needs libmimalloc" ;;
    *) ok "$bin keeps glibc's allocator" ;;
  esac
done
[ "$fails" -eq 0 ]
