#!/usr/bin/env bash
# ktl test rig, rootless part: the engine a user gets from `ktl builder start` (rootless by
# default; run as root, it runs as the system user ktl-builder), under a state directory of
# the rig's, with the rig's busybox base image loaded into it. A rootless engine cannot pull
# from the rig's registry on 127.0.0.1:5000 (host loopback is disabled: that is the point), so
# the image is built FROM scratch and loaded (--load) under the same name.
#
#   scripts/rig-rootless.sh up             start it, load the base image, write $RIG/env-rootless
#   scripts/rig-rootless.sh down           stop it (ktl builder stop; its data is kept)
#   scripts/rig-rootless.sh status         exit 0 when it runs and holds the base image, 3 otherwise
#   scripts/rig-rootless.sh load ADDRESS   build the base image and --load it into the engine at
#                                          ADDRESS (docker://unix:///...), e.g. your own managed one
#
# up/down/status need root; all need bin/ktl built (pnpm build) and the rootless parts
# installed (scripts/setup.sh deps: rootlesskit, slirp4netns, uidmap, a usable /dev/net/tun);
# RIG as in scripts/rig.sh.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
RIG=${KTL_RIG_DIR:-/var/lib/ktl-rig}
RIG=${RIG%/}
STATE=$RIG/rootless
ENV_FILE=$RIG/env-rootless
BASE_IMAGE=127.0.0.1:5000/ktl/busybox:latest

log() { printf 'rig-rootless: %s\n' "$*" >&2; }
die() { printf 'rig-rootless: ERROR: %s\n' "$*" >&2; exit 1; }

ktl() { "$root/bin/ktl" "$@"; }

# A static busybox: busybox-static's, or the copy scripts/rig.sh extracts when the dynamic
# busybox package holds /bin/busybox.
busybox_binary() {
  local c
  for c in /bin/busybox "$RIG/cache/busybox-static/bin/busybox"; do
    [[ -x $c ]] && ! LC_ALL=C ldd "$c" >/dev/null 2>&1 && { printf '%s\n' "$c"; return 0; }
  done
  die "no static busybox (install busybox-static, or run scripts/rig.sh up)"
}

# The base image as scripts/rig.sh makes it (busybox and its applets at their usual paths,
# root and nobody, PATH, CMD), built FROM scratch by ktl and loaded into the engine.
cmd_load() {
  local address=${1:?usage: $0 load ADDRESS [NAME]} name=${2:-$BASE_IMAGE} ctx
  ctx=$(mktemp -d)
  install -m 755 "$(busybox_binary)" "$ctx/busybox"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$ctx/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$ctx/group"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
COPY busybox /bin/busybox
COPY passwd group /etc/
RUN ["/bin/busybox", "sh", "-c", "busybox mkdir -p /sbin /usr/bin /usr/sbin /root /tmp /dev /proc /sys && busybox chmod 1777 /tmp && busybox chmod 700 /root && busybox --install -s"]
ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
EOF
  log "loading $name into $address"
  if ! ktl build "$ctx" --builder "$address" --platform linux/amd64 --load -t "$name" --progress quiet >/dev/null; then
    rm -rf "$ctx"
    die "ktl build --load of the base image into $address failed"
  fi
  rm -rf "$ctx"
}

engine_address() { sed -n 's/^KTL_RIG_ROOTLESS_ADDRESS=//p' "$ENV_FILE" 2>/dev/null; }

has_base_image() { # address
  local sock=${1#docker://unix://}
  curl -fs -m 5 --unix-socket "$sock" -o /dev/null "http://docker/images/$BASE_IMAGE/json"
}

cmd_up() {
  [[ -f $root/packages/cli/dist/ktl.cjs ]] \
    || die "bin/ktl is not built; run pnpm build (scripts/setup.sh deps)"
  mkdir -p "$STATE"
  local out address
  # `ktl builder start` checks the host itself and says what is missing (exit 4).
  out=$(KTL_STATE_DIR=$STATE ktl builder start) || die "ktl builder start failed (above)"
  log "$out"
  address=$(KTL_STATE_DIR=$STATE ktl builder status --json | sed -n 's/.*"address":"\([^"]*\)".*/\1/p')
  [[ -n $address ]] || die "ktl builder status --json names no address"
  has_base_image "$address" || cmd_load "$address"
  has_base_image "$address" || die "the engine at $address does not hold $BASE_IMAGE after loading it"
  cat >"$ENV_FILE.tmp" <<EOF
KTL_RIG_ROOTLESS_STATE_DIR=$STATE
KTL_RIG_ROOTLESS_ADDRESS=$address
KTL_RIG_ROOTLESS_DOCKER_HOST=${address#docker://}
KTL_RIG_ROOTLESS_BASE_IMAGE=$BASE_IMAGE
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  log "env: wrote $ENV_FILE"
  cat "$ENV_FILE"
}

cmd_down() {
  KTL_STATE_DIR=$STATE ktl builder stop
}

cmd_status() {
  local address
  if ! KTL_STATE_DIR=$STATE ktl builder status; then log "not running; run $0 up"; return 3; fi
  address=$(engine_address)
  if [[ -z $address ]] || ! has_base_image "$address"; then
    log "$BASE_IMAGE not loaded; run $0 up"; return 3
  fi
  log "status: up, $BASE_IMAGE loaded"
}

need_root() { [[ $(id -u) -eq 0 ]] || die "must run as root (it runs the engine as ktl-builder, as ktl does for root)"; }
case ${1:-} in
  up) need_root; cmd_up ;;
  down) need_root; cmd_down ;;
  status) need_root; cmd_status ;;
  load) shift; cmd_load "$@" ;;
  *) sed -n '2,13p' "$0" >&2; exit 2 ;;
esac
