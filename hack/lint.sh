#!/usr/bin/env bash
# `make lint`: clang-format (check, or --fix to rewrite) and clang-tidy over every C++ file.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
if [ "${1:-}" = "--fix" ]; then fix=1; shift; fi
build=${1:-build}
mapfile -t files < <(git ls-files '*.cpp' '*.h' '*.cpp.in')
if [ $fix -eq 1 ]; then
  clang-format -i "${files[@]}"
  echo "lint: formatted ${#files[@]} files"
  exit 0
fi
clang-format --dry-run --Werror "${files[@]}"
echo "lint: clang-format ok (${#files[@]} files)"
mapfile -t sources < <(git ls-files '*.cpp')
# clang-tidy runs on each source with the flags from compile_commands.json.
printf '%s\n' "${sources[@]}" | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet 2>/dev/null
echo "lint: clang-tidy ok (${#sources[@]} files)"
