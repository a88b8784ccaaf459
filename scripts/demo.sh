#!/usr/bin/env bash
# The README's demo: what ktl can do today, run with the real CLI. It grows with the project:
# `ktl sandbox run` and a sandboxed `ktl build` of testdata/build/ join as they land.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ktl() { "$root/bin/ktl" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "ktl --version"
ktl --version
step "validate the bundled sandbox policies"
ktl sandbox policy validate "$root"/testdata/sandbox/*.cfg
step "what the hermetic policy lets a build client see and do"
ktl sandbox policy explain "$root/testdata/sandbox/hermetic.cfg"
step "a broken policy is refused with FILE:LINE:COL and a hint"
bad=$(mktemp --suffix=.cfg)
trap 'rm -f "$bad"' EXIT
printf 'name: "demo"\nhostnme: "box"\n' >"$bad"
if ktl sandbox policy validate "$bad"; then echo "demo: the broken policy was accepted" >&2; exit 1; fi
echo "demo: done"
