#!/usr/bin/env bash
# buf breaking: proto/ must stay wire- and source-compatible with its last released state.
#
# The released state is the commit named in proto/RELEASED (the main that last landed; bump it
# when a release lands), read from this clone's git history. BUF_BREAKING_AGAINST=<git ref>
# compares with another commit. A clone without that history (a shallow CI checkout) falls back
# to the previous commit and says so; one with no history at all cannot run the check and says so.
set -euo pipefail
cd "$(dirname "$0")/../.."

buf=node_modules/.bin/buf
against="${BUF_BREAKING_AGAINST:-$(tr -d '[:space:]' < proto/RELEASED)}"
if ! git cat-file -e "${against}^{commit}" 2>/dev/null; then
  echo "buf breaking: commit ${against} (proto/RELEASED) is not in this clone's history; using HEAD~1" >&2
  against=HEAD~1
  if ! git cat-file -e "HEAD~1^{commit}" 2>/dev/null; then
    echo "buf breaking: no earlier commit in this clone (shallow?): the check cannot run here" >&2
    exit 0
  fi
fi
echo "buf breaking: proto/ against ${against}"
exec "$buf" breaking proto --against ".git#ref=${against},subdir=proto"
