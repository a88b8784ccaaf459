#!/usr/bin/env bash
# One entry point for a fresh Debian/Ubuntu machine (root or sudo):
#
#   scripts/setup.sh deps    install system packages, Node >= 20, pnpm, node_modules; build
#   scripts/setup.sh demo    deps + the BuildKit rig, then the sandboxed demo (scripts/demo.sh)
#   scripts/setup.sh test    deps + the BuildKit rig (rootful, compatibility, rootless and
#                            TLS engines), then every check and test (pnpm run ci)
#
# Idempotent: a second run only re-checks. The README's two commands are `demo` and `test`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
readonly PNPM_VERSION=10.34.9
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "this step needs root: run as root or install sudo ($*)"; fi
}

apt_packages() {
  # rootlesskit, slirp4netns and uidmap: the rootless engine `ktl builder start` runs.
  # zsh: the completion script is tested in bash and zsh.
  local want=(bubblewrap protobuf-compiler curl ca-certificates git rootlesskit slirp4netns uidmap zsh)
  local missing=()
  for p in "${want[@]}"; do
    dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
  done
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v bwrap >/dev/null || die "bubblewrap did not install (apt-get install bubblewrap)"
}

# slirp4netns (the rootless engine's network) opens /dev/net/tun as the engine's user; some
# VMs ship it 0600 (root only). 0666 is its usual mode: opening it creates nothing by itself,
# and making an interface still needs CAP_NET_ADMIN in the caller's own network namespace.
ensure_tun() {
  if [[ ! -c /dev/net/tun ]]; then
    log "/dev/net/tun missing; loading the tun module"
    as_root modprobe tun 2>/dev/null || true
    if [[ ! -c /dev/net/tun ]]; then
      as_root mkdir -p /dev/net
      if ! as_root mknod -m 666 /dev/net/tun c 10 200 2>/dev/null; then
        log "cannot create /dev/net/tun: the rootless engine cannot start here (its tests will be skipped)"
        return 0
      fi
    fi
  fi
  if [[ $(stat -c %a /dev/net/tun) != 666 ]]; then
    log "/dev/net/tun is mode $(stat -c %a /dev/net/tun); making it usable for the rootless engine (chmod 666)"
    as_root chmod 666 /dev/net/tun || log "cannot chmod /dev/net/tun: the rootless engine cannot start here"
  fi
}

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

ensure_node() {
  if (($(node_major) >= 20)); then return; fi
  # Bookworm ships Node 18; trixie's nodejs (20.x) installs on bookworm from the same mirror.
  log "Node >= 20 missing (have $(node --version 2>/dev/null || echo none)); installing nodejs from Debian trixie"
  as_root bash "$here/rig.sh" trixie-source
  as_root apt-get install -y -qq -t trixie nodejs npm >/dev/null
  (($(node_major) >= 20)) || die "could not install Node >= 20; install it and re-run"
}

ensure_pnpm() {
  if [[ $(pnpm --version 2>/dev/null) == "$PNPM_VERSION" ]]; then return; fi
  log "installing pnpm $PNPM_VERSION"
  as_root npm install -g --silent "pnpm@$PNPM_VERSION" >/dev/null
}

deps() {
  apt_packages
  ensure_tun
  ensure_node
  ensure_pnpm
  cd "$root"
  log "pnpm install"
  pnpm install --frozen-lockfile --reporter=silent
  log "pnpm build"
  pnpm run build >/dev/null
}

rig() {
  log "starting the BuildKit rig (scripts/rig.sh up)"
  as_root bash "$here/rig.sh" up >/dev/null
}

compat() {
  # The old-engine target (Docker 20.10 from bookworm); its tests skip, with the reason, when
  # this machine's apt sources do not have it.
  log "starting the Docker 20.10 compatibility engine (scripts/rig-compat.sh up)"
  as_root bash "$here/rig-compat.sh" up >/dev/null || log "compatibility engine unavailable; its tests will be skipped"
}

rootless() {
  # The rootless engine `ktl builder start` gives (as root: run as the system user
  # ktl-builder), with the base image loaded; its tests are skipped, with the reason, without it.
  log "starting the rootless engine (scripts/rig-rootless.sh up)"
  as_root bash "$here/rig-rootless.sh" up >/dev/null || log "rootless engine unavailable (above); its tests will be skipped"
}

tls_engine() {
  # A second engine reachable only over TCP with mutual TLS on 127.0.0.1 (certificates made by
  # the script); its tests are skipped, with the reason, without it.
  log "starting the TLS engine (scripts/rig-tls.sh up)"
  as_root bash "$here/rig-tls.sh" up >/dev/null || log "TLS engine unavailable (above); its tests will be skipped"
}

case ${1:-} in
  deps) deps ;;
  demo) deps; rig; exec bash "$here/demo.sh" ;;
  test) deps; rig; compat; rootless; tls_engine; cd "$root"; exec pnpm run ci ;;
  *) echo "usage: $0 deps|demo|test" >&2; exit 2 ;;
esac
