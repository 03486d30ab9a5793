#!/usr/bin/env bash
# Generate Studio's TypeScript for proto/ into trademesh/gateway/studio/src/gen/ (protoc-gen-es through buf).
#
#   ops/scripts/gen_ts.sh          # regenerate trademesh/gateway/studio/src/gen
#   ops/scripts/gen_ts.sh --check  # exit 1 when trademesh/gateway/studio/src/gen is stale
#
# Needs the repo's node_modules (buf) and trademesh/gateway/studio/node_modules (protoc-gen-es): `./dev`
# installs both. Nothing under src/gen is edited by hand.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
studio="$root/trademesh/gateway/studio"
buf="$root/node_modules/.bin/buf"

for tool in "$buf" "$studio/node_modules/.bin/protoc-gen-es"; do
  if [ ! -x "$tool" ]; then
    echo "gen_ts: $tool is missing; run ./dev test (or npm install in its folder) first" >&2
    exit 2
  fi
done

cd "$studio"
case "${1:-}" in
  "")
    "$buf" generate --template buf.gen.yaml
    echo "gen_ts: wrote trademesh/gateway/studio/src/gen"
    ;;
  --check)
    fresh="$(mktemp -d)"
    trap 'rm -rf "$fresh"' EXIT
    "$buf" generate --template buf.gen.yaml --output "$fresh"
    if ! diff -r "$fresh/src/gen" src/gen >/dev/null 2>&1; then
      diff -rq "$fresh/src/gen" src/gen | sed "s|$fresh/src/gen|fresh|g; s|^|gen_ts: stale: |" >&2 || true
      echo "gen_ts: run ops/scripts/gen_ts.sh and commit trademesh/gateway/studio/src/gen" >&2
      exit 1
    fi
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
