#!/usr/bin/env bash
# Proves what the sandbox around `ktl build` does, on the real engine (the rig) and the real
# runtime: each check prints PASS, FAIL or SKIP (with the reason); exit 1 on any FAIL.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ktl() { "$root/bin/ktl" "$@"; }
if [[ -z ${DOCKER_HOST:-} && -f /var/lib/ktl-rig/env ]]; then
  DOCKER_HOST=$(sed -n 's/^KTL_RIG_DOCKER_HOST=//p' /var/lib/ktl-rig/env)
  export DOCKER_HOST
fi
unset KTL_SANDBOX_DISABLE KTL_SANDBOX_CONFIG
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
hello="$root/testdata/build/hello"
fails=0
pass() { printf 'PASS  %s\n' "$1"; }
fail() { printf 'FAIL  %s\n      %s\n' "$1" "$2"; fails=$((fails + 1)); }
skip() { printf 'SKIP  %s (%s)\n' "$1" "$2"; }
check() { # name, output file, grep pattern (extended), expectation: present|absent
  if grep -Eq -- "$3" "$2"; then [[ $4 == present ]] && pass "$1" || fail "$1" "unexpected: $(grep -E -m1 -- "$3" "$2")"
  else [[ $4 == absent ]] && pass "$1" || fail "$1" "missing /$3/ in output: $(tail -3 "$2" | tr '\n' ' ')"; fi
}

if ! ktl sandbox doctor >/dev/null 2>&1; then skip "everything" "ktl sandbox doctor finds no working runtime"; exit 0; fi

ktl build "$hello" -o "type=local,dest=$work/out" --sandbox-logs >"$work/default.log" 2>&1
check "banner by default" "$work/default.log" '^Running ktl build inside the sandbox \(policy: embedded default, runtime: (bubblewrap|nsjail)\)' present
check "the context is visible (COPY from it worked)" "$work/out/built.txt" 'hello from the ktl sandbox demo' present
check "the engine socket is absent from the jail" "$work/default.log" 'inside: .*docker.sock: PRESENT' absent
check "the engine socket was checked" "$work/default.log" "inside: ${DOCKER_HOST#unix://}: absent" present

KTL_SANDBOX_DISABLE=1 ktl build "$hello" -o "type=local,dest=$work/out2" >"$work/disabled.log" 2>&1
check "KTL_SANDBOX_DISABLE=1: no banner" "$work/disabled.log" 'Running ktl build inside the sandbox' absent
check "KTL_SANDBOX_DISABLE=1: a loud warning naming the risk" "$work/disabled.log" 'WARNING: KTL_SANDBOX_DISABLE=1: the build client runs on the host, unsandboxed' present

mkdir -p "$work/shared" && echo data >"$work/shared/file"
ktl build "$hello" -o "type=local,dest=$work/out3" --sandbox-logs --sandbox-bind "$work/shared:/shared:ro" >"$work/bind.log" 2>&1
check "--sandbox-bind makes a host dir visible" "$work/bind.log" 'inside: bound /shared: present' present

# The threat scenario: an untrusted repository whose build line names a context that is a
# symlink out of the tree (assets -> a host-only directory). testdata/build/threat reads it.
hostonly=$(mktemp -d /tmp/ktl-host-only.XXXXXX)
trap 'rm -rf "$work" "$hostonly"' EXIT
marker="host-marker-$RANDOM$RANDOM"
echo "$marker" >"$hostonly/secret.txt"
repo="$work/untrusted-repo"
mkdir -p "$repo"
cp -r "$root/testdata/build/threat/." "$repo/"
mkdir -p "$repo/assets"
echo "in-tree asset" >"$repo/assets/asset.txt"
ln -s "$hostonly" "$repo/hostfiles"
(cd "$repo" && KTL_SANDBOX_DISABLE=1 ktl build . --build-context hostfiles=./hostfiles -o "type=local,dest=$work/loot-host") >"$work/threat-host.log" 2>&1
check "unsandboxed: a host-only file named with --build-context is read" "$work/loot-host/loot.txt" "$marker" present
(cd "$repo" && ktl build . --build-context hostfiles=./hostfiles -o "type=local,dest=$work/loot-jail") >"$work/threat-jail.log" 2>&1
cat "$work/loot-jail/loot.txt" >"$work/loot-jail.txt" 2>/dev/null || echo "(no loot.txt written)" >"$work/loot-jail.txt"
check "sandboxed: the same host-only file is not read" "$work/loot-jail.txt" "$marker" absent
check "sandboxed: the link out of the tree is refused, naming the way to share it" "$work/threat-jail.log" "^hint: .*--sandbox-bind $hostonly:GUEST" present
# The same build line run from elsewhere: absolute paths from /, relative ones from the parent.
(cd / && ktl build "$repo" --build-context "hostfiles=$repo/hostfiles" -o "type=local,dest=$work/loot-abs") >"$work/threat-abs.log" 2>&1
cat "$work/loot-abs/loot.txt" >"$work/loot-abs.txt" 2>/dev/null || echo "(no loot.txt written)" >"$work/loot-abs.txt"
check "sandboxed, from / with absolute paths: the host-only file is not read" "$work/loot-abs.txt" "$marker" absent
check "sandboxed, from / with absolute paths: the link is refused" "$work/threat-abs.log" "the symlink $repo/hostfiles -> $hostonly leads out of" present
(cd "$work" && ktl build untrusted-repo --build-context hostfiles=untrusted-repo/hostfiles -o "type=local,dest=$work/loot-parent") >"$work/threat-parent.log" 2>&1
cat "$work/loot-parent/loot.txt" >"$work/loot-parent.txt" 2>/dev/null || echo "(no loot.txt written)" >"$work/loot-parent.txt"
check "sandboxed, from the repository's parent: the host-only file is not read" "$work/loot-parent.txt" "$marker" absent
check "sandboxed, from the repository's parent: the link is refused" "$work/threat-parent.log" "the symlink $repo/hostfiles -> $hostonly leads out of" present
(cd "$repo" && ktl build . --build-context hostfiles=./assets -o "type=local,dest=$work/loot-assets") >"$work/threat-assets.log" 2>&1
check "sandboxed: a named context inside the tree is visible" "$work/loot-assets/loot.txt" "in-tree asset" present
# Host-marker contrast through a permissive builder: the sandbox confines the client, not the
# daemon. A rootful builder that grants network.host lets a RUN step reach the host's loopback
# (here a one-shot server handing out a marker); without the entitlement the same step cannot.
port_file="$work/marker.port"
node -e '
  const s = require("net").createServer((c) => c.end(process.argv[1] + "\n"));
  s.listen(0, "127.0.0.1", () => require("fs").writeFileSync(process.argv[2], String(s.address().port)));
  setTimeout(() => process.exit(0), 60000).unref();
' "$marker-loopback" "$port_file" &
server=$!
for _ in $(seq 50); do [[ -s $port_file ]] && break; sleep 0.1; done
mkdir -p "$work/permissive"
printf 'FROM %s\nARG PORT\nRUN (nc -w 3 127.0.0.1 "$PORT" </dev/null || echo unreachable) > /loot.txt 2>&1\n' \
  "$(sed -n 's/^ARG BASE=//p' "$root/testdata/build/threat/Dockerfile")" >"$work/permissive/Dockerfile"
ktl build "$work/permissive" --network host --no-cache --build-arg "PORT=$(cat "$port_file")" -o "type=local,dest=$work/perm-host" >"$work/perm-host.log" 2>&1
if grep -q 'is not allowed by build daemon configuration\|entitlement' "$work/perm-host.log"; then
  skip "host-marker contrast through a permissive builder" "the builder is not permissive: $(grep -m1 -o 'granting entitlement.*' "$work/perm-host.log")"
else
  check "permissive builder: a RUN step with network.host reads a host-loopback marker, though the client is sandboxed" "$work/perm-host/loot.txt" "$marker-loopback" present
  ktl build "$work/permissive" --no-cache --build-arg "PORT=$(cat "$port_file")" -o "type=local,dest=$work/perm-bridge" >"$work/perm-bridge.log" 2>&1
  check "the same step without the entitlement cannot reach it" "$work/perm-bridge/loot.txt" "^unreachable$" present
fi
# The same step through the rootless managed builder (`ktl builder start`: Docker's rootless
# mode, host loopback disabled): network.host is the engine's own network namespace there, and
# the host's 127.0.0.1 is out of its reach. Yours when it runs rootless, else the rig's.
rl_state= rl_which=
if env -u DOCKER_HOST -u BUILDKIT_HOST "$root/bin/ktl" builder status --json 2>/dev/null | grep -q '"rootless":true'; then
  rl_state=${KTL_STATE_DIR:-}
  rl_which="your managed builder"
  rl_address=$(env -u DOCKER_HOST -u BUILDKIT_HOST "$root/bin/ktl" builder status --json | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
  # It pulls nothing from the loopback registry: the base image is loaded into it.
  if ! curl -fs -m 5 --unix-socket "${rl_address#docker://unix://}" -o /dev/null "http://docker/images/$(sed -n 's/^ARG BASE=//p' "$root/testdata/build/threat/Dockerfile")/json"; then
    bash "$root/scripts/rig-rootless.sh" load "$rl_address" >"$work/rl-load.log" 2>&1 || rl_which=
  fi
fi
if [[ -z $rl_which && -f /var/lib/ktl-rig/env-rootless ]]; then
  rl_state=$(sed -n 's/^KTL_RIG_ROOTLESS_STATE_DIR=//p' /var/lib/ktl-rig/env-rootless)
  rl_which="the rig's rootless managed builder"
fi
if [[ -z $rl_which ]]; then
  skip "rootless managed builder: network.host blocked from the host's loopback" "no rootless managed builder runs: start one with ktl builder start"
else
  env -u DOCKER_HOST -u BUILDKIT_HOST ${rl_state:+KTL_STATE_DIR="$rl_state"} "$root/bin/ktl" build "$work/permissive" --network host --no-cache \
    --build-arg "PORT=$(cat "$port_file")" -o "type=local,dest=$work/perm-rootless" >"$work/perm-rootless.log" 2>&1
  if grep -q "$marker-loopback" "$work/perm-rootless/loot.txt" 2>/dev/null; then
    fail "rootless managed builder ($rl_which): network.host blocked from the host's loopback" "the RUN step read the host-loopback marker: $(cat "$work/perm-rootless/loot.txt")"
  elif grep -qx unreachable "$work/perm-rootless/loot.txt" 2>/dev/null; then
    pass "rootless managed builder ($rl_which): the same network.host step is blocked from the host's loopback (it read: unreachable)"
  else
    fail "rootless managed builder ($rl_which): network.host blocked from the host's loopback" "the build did not run the step: $(tail -3 "$work/perm-rootless.log" | tr '\n' ' ')"
  fi
fi
kill "$server" 2>/dev/null || true

ktl build "$hello" --sandbox-config "$work/missing.cfg" >"$work/missing.log" 2>&1
check "a missing policy fails with a clear message" "$work/missing.log" "missing.cfg: Couldn't read config file" present
printf 'name: "x"\nmount { dst: "/tmp" fstype: "tmpfs" rw: yes }\n' >"$work/bad.cfg"
ktl build "$hello" --sandbox-config "$work/bad.cfg" >"$work/bad.log" 2>&1
check "a malformed policy fails with FILE:LINE:COL" "$work/bad.log" "bad.cfg:2:41: Invalid value for boolean field" present
printf 'name: "broken"\nmount { src: "%s/no-such-dir" dst: "/x" is_bind: true }\n' "$work" >"$work/broken.cfg"
ktl build "$hello" --sandbox-config "$work/broken.cfg" >"$work/broken.log" 2>&1
check "a runtime failure prints the runtime's [sandbox] lines unasked" "$work/broken.log" '\[sandbox\]' present

ktl build "$hello" --hermetic --sandbox-logs -o "type=local,dest=$work/out4" >"$work/hermetic.log" 2>&1
check "--hermetic: the client has no network but loopback" "$work/hermetic.log" 'inside: network interfaces: lo$' present
check "--hermetic: the build still works" "$work/out4/built.txt" 'hello from the ktl sandbox demo' present

echo
if ((fails > 0)); then echo "sandbox-demo: $fails check(s) FAILED"; exit 1; fi
echo "sandbox-demo: all checks passed"
