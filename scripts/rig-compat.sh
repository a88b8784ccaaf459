#!/usr/bin/env bash
# The old-engine compatibility target: Debian bookworm's docker.io 20.10 (embedded BuildKit
# v0.8, graphdriver image store), unpacked from its .deb under the rig's directory (never
# installed over the rig's engine) and run on a private socket with a bridge of its own, so
# it sits next to the main rig without touching it. Builds on it use the main rig's registry.
#
#   scripts/rig-compat.sh up      download (once), start, write $RIG/env-compat
#   scripts/rig-compat.sh down    stop it and remove its bridge (data is kept)
#   scripts/rig-compat.sh status
set -euo pipefail
RIG=${KTL_RIG_DIR:-/var/lib/ktl-rig}
C=$RIG/compat
SOCK=$C/docker.sock
PID=$C/dockerd.pid
LOG=$C/dockerd.log
BRIDGE=${KTL_RIG_COMPAT_BRIDGE:-ktlc0}
CIDR=${KTL_RIG_COMPAT_CIDR:-10.215.0.1/24}
ENV_FILE=$RIG/env-compat
log() { printf 'rig-compat: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

answers() { curl -fsS -m 3 --unix-socket "$SOCK" http://engine/_ping >/dev/null 2>&1; }
alive() { [[ -s $PID ]] && kill -0 "$(<"$PID")" 2>/dev/null; }

up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (dockerd runs rootful)"
  mkdir -p "$C"
  if [[ ! -x $C/root/usr/sbin/dockerd ]]; then
    local ver
    ver=$(apt-cache madison docker.io 2>/dev/null | awk '$3 ~ /^20\.10\./ {print $3; exit}')
    [[ -n $ver ]] || die "no docker.io 20.10 in this machine's apt sources (it is Debian bookworm's)"
    log "downloading docker.io $ver (unpacked under $C/root, not installed)"
    (cd "$C" && apt-get download -q "docker.io=$ver" >/dev/null 2>&1 && dpkg -x docker.io_*.deb root && rm -f docker.io_*.deb) \
      || die "could not download or unpack docker.io $ver"
  fi
  if alive && answers; then
    log "already running (pid $(<"$PID")) on unix://$SOCK"
  else
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge && ip addr add "$CIDR" dev "$BRIDGE" && ip link set "$BRIDGE" up \
        || die "cannot create the bridge $BRIDGE"
    fi
    printf '{"bridge":"%s","storage-driver":"overlay2","insecure-registries":["127.0.0.1:5000"]}\n' "$BRIDGE" >"$C/daemon.json"
    rm -f "$SOCK"
    log "starting dockerd 20.10 on unix://$SOCK (log $LOG)"
    PATH=$C/root/usr/sbin:$C/root/usr/bin:$PATH nohup setsid "$C/root/usr/sbin/dockerd" \
      --host "unix://$SOCK" --data-root "$C/data" --exec-root "$C/x" --pidfile "$PID" \
      --config-file "$C/daemon.json" --containerd-namespace ktl-compat \
      --containerd-plugins-namespace ktl-compat-plugins >>"$LOG" 2>&1 </dev/null 9>&- &
    for _ in $(seq 120); do answers && break; sleep 0.25; done
    answers || { tail -20 "$LOG" >&2; die "dockerd 20.10 did not answer within 30 s"; }
  fi
  local v
  v=$(curl -fsS --unix-socket "$SOCK" http://engine/version | sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1 \2/p')
  {
    echo "KTL_RIG_COMPAT_DOCKER_HOST=unix://$SOCK"
    echo "KTL_RIG_COMPAT_DOCKER_CLI=$C/root/usr/bin/docker"
    echo "KTL_RIG_COMPAT_VERSION=${v% *}"
    echo "KTL_RIG_COMPAT_API=${v#* }"
  } >"$ENV_FILE"
  log "up: Docker ${v% *} (API ${v#* }); env in $ENV_FILE"
}

down() {
  if alive; then
    kill "$(<"$PID")"
    for _ in $(seq 120); do alive || break; sleep 0.25; done
  fi
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -f "$ENV_FILE" "$SOCK"
  log "down"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) if alive && answers; then log "running (pid $(<"$PID"))"; else log "not running"; exit 1; fi ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
