#!/bin/sh
# Generate node-ref's TypeScript messages from proto/ into src/gen (protoc-gen-es through buf).
#
#   npm run gen          # regenerate src/gen
#   npm run gen:check    # exit 1 when src/gen is stale (what CI runs)
#
# Needs the repo's node_modules (buf: `./dev` installs it) and this folder's (protoc-gen-es:
# `npm ci`). Nothing under src/gen is edited by hand.
set -eu
here="$(cd "$(dirname "$0")/.." && pwd)"
buf="$here/../../../node_modules/.bin/buf"
for tool in "$buf" "$here/node_modules/.bin/protoc-gen-es"; do
  if [ ! -x "$tool" ]; then
    echo "gen: $tool is missing; run npm install at the repo's root and npm ci in trademesh/venues/node_ref" >&2
    exit 2
  fi
done
cd "$here"
case "${1:-}" in
  "")
    "$buf" generate --template buf.gen.yaml
    echo "gen: wrote trademesh/venues/node_ref/src/gen"
    ;;
  --check)
    fresh="$(mktemp -d)"
    trap 'rm -rf "$fresh"' EXIT
    "$buf" generate --template buf.gen.yaml --output "$fresh"
    if ! diff -r "$fresh/src/gen" src/gen >/dev/null 2>&1; then
      diff -rq "$fresh/src/gen" src/gen | sed "s|$fresh/src/gen|fresh|g; s|^|gen: stale: |" >&2 || true
      echo "gen: run npm run gen in trademesh/venues/node_ref and commit src/gen" >&2
      exit 1
    fi
    echo "gen: src/gen is fresh"
    ;;
  *)
    sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
    ;;
esac
