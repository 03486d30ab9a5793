#!/usr/bin/env bash
# The duplicates figure of issue 61 on production code: the `duplicates` tool (the tool library's) on
# every hand-written Python and TypeScript file under trademesh/ (generated protobuf code, Studio's and
# node-ref's src/gen, node_modules and tests left out), copied to a scratch folder as git tracks them.
#   ops/scripts/duplicates.sh [--most N]    # the pairs, then "pairs per file"
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cd "$root"
git ls-files -co --exclude-standard trademesh \
  | grep -E '\.(py|ts|tsx)$' \
  | grep -v -E '^trademesh/[a-z_]+/v1/|/src/gen/|/node_modules/|^trademesh/__init__\.py$' \
  | while read -r f; do
      [ -f "$f" ] || continue
      mkdir -p "$scratch/$(dirname "$f")" && cp "$f" "$scratch/$f"
    done
cd "$scratch"
out="$(duplicates --seconds 300 "$@")"
echo "$out"
echo "$out" | head -1 | sed -E 's/^([0-9]+) pairs of places \(([0-9]+) files read\).*/\1 \2/' \
  | awk '{ if ($2 > 0) printf "pairs per file: %.3f (%d pairs, %d files)\n", $1 / $2, $1, $2 }'
