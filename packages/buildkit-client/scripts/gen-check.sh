#!/usr/bin/env bash
# Fail when src/gen differs from what proto/ + the pinned ts-proto generate now.
set -euo pipefail
pkg_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$pkg_dir/scripts/gen-proto.sh" "$tmp/gen"
if ! diff -r "$pkg_dir/src/gen" "$tmp/gen" >"$tmp/diff"; then
  head -40 "$tmp/diff" >&2
  echo "generated code is stale: run pnpm --filter @ktl/buildkit-client gen" >&2
  exit 1
fi
echo "generated code is up to date"
