#!/usr/bin/env bash
# The README's demo: a sandboxed `ktl build` of a bundled example on a ktl-managed engine, then
# what the sandbox is made of, with the real CLI.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ktl() { "$root/bin/ktl" "$@"; }
step() { printf '\n== %s\n' "$*"; }

step "ktl --version"
ktl --version
# The engine is ktl's own: `ktl builder start` runs Docker's rootless mode on a private socket
# (as root: as the system user ktl-builder), and `ktl build` finds it with no variable set.
unset DOCKER_HOST BUILDKIT_HOST
step "ktl builder start  (a ktl-managed rootless engine; ktl build finds it by default)"
ktl builder start
ktl builder status
# A rootless engine cannot reach the host's 127.0.0.1, where the rig's registry serves the
# offline base image: the image is built FROM scratch and loaded into the engine instead.
address=$(ktl builder status --json | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
step "load the offline base image into it (scripts/rig-rootless.sh load)"
bash "$root/scripts/rig-rootless.sh" load "$address"
step "which builder ktl build uses, and what it lets a build do"
ktl builder ls
out=$(mktemp -d)
step "ktl build testdata/build/hello -o type=local,dest=$out  (inside the sandbox)"
ktl build "$root/testdata/build/hello" -o "type=local,dest=$out"
echo "--- $out/built.txt:"
cat "$out/built.txt"
rm -rf "$out"
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
echo "demo: done (the engine keeps running for more builds; stop it with: ktl builder stop)"
