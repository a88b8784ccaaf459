#!/usr/bin/env bash
# The README's demo: what ktl can do today, run with the real CLI. It grows with the project:
# a sandboxed `ktl build` of testdata/build/ joins when it lands.
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
step "what this machine can sandbox with"
ktl sandbox doctor
step "a command in the sandbox: a host file is simply not there, a bound one is, read-only"
marker=$(mktemp -d)
trap 'rm -rf "$marker"' EXIT
echo "host-only secret" >"$marker/secret"
ktl sandbox run -- /bin/sh -c "cat $marker/secret 2>&1; echo hostname: \$(hostname)" || true
ktl sandbox run --bind "$marker:/data:ro" -- /bin/sh -c 'cat /data/secret; touch /data/x 2>&1 || true'
step "a broken policy is refused with FILE:LINE:COL and a hint"
bad="$marker/bad.cfg"
printf 'name: "demo"\nhostnme: "box"\n' >"$bad"
if ktl sandbox policy validate "$bad"; then echo "demo: the broken policy was accepted" >&2; exit 1; fi
echo "demo: done"
