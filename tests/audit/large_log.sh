#!/usr/bin/env bash
# A log of 1,000,000 events: mmo audit verify and export finish, show
# progress on stderr, and the export verifies. Usage: large_log.sh MMO GENLOG
set -euo pipefail
mmo=$1 genlog=$2
n=${MMO_LARGE_EVENTS:-1000000}
dir=$(mktemp -d "${TMPDIR:-/tmp}/mmo-large-XXXXXX")
trap 'rm -rf "$dir"' EXIT

"$genlog" "$dir/data" "$n"
"$mmo" audit verify --data "$dir/data" >"$dir/verify.out" 2>"$dir/verify.err"
grep -q "^verify: ok, $n events checked, indexes consistent$" "$dir/verify.out"
grep -q "verify: $n/$n events (100%)" "$dir/verify.err"
"$mmo" audit export --data "$dir/data" --out "$dir/export" >"$dir/export.out" 2>"$dir/export.err"
grep -q "^export: ok, $n events" "$dir/export.out"
[ "$(grep -c "events" "$dir/export.err")" -ge 2 ] # progress lines
pub=$(sed -n 's/.*public key \([0-9a-f]*\).*/\1/p' "$dir/export.out")
"$mmo" audit verify-export "$dir/export" --pubkey "$pub" >"$dir/vx.out"
grep -q "^verify-export: ok, $n events" "$dir/vx.out"
echo "large log: $n events verified, exported and re-verified"
