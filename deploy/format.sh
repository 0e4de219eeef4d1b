#!/usr/bin/env bash
# Checks that every C++ file of the tree is clang-format clean (`.clang-format` at the
# root); `deploy/format.sh --fix` rewrites them instead. Generated tables are left out.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mapfile -t files < <(git ls-files '*.cc' '*.h' | grep -v '^model/unicode_tables.cc$')
if [ "${1:-}" = "--fix" ]; then
  clang-format -i "${files[@]}"
else
  clang-format --dry-run --Werror "${files[@]}"
  echo "format: ${#files[@]} files clean"
fi
