#!/usr/bin/env bash
# The remote-engine target: a second Docker 26.1 engine (the rig's dockerd binary, its own
# containerd, data and bridge) reachable only over TCP with mutual TLS on 127.0.0.1, as a
# remote engine started with `dockerd --tlsverify` is. Certificates are made here with openssl:
# a CA, a server certificate for 127.0.0.1, localhost and a name only an override reaches, a
# client certificate in Docker's DOCKER_CERT_PATH layout, and a second CA with a client
# certificate of its own (for the refusals: a CA that did not sign the server, a client the
# engine does not trust). Builds on it use the main rig's registry and base image. The server
# certificate and key are in the env file too, for tests that serve TLS of their own under
# the same CA (a buildkitd-style tcp:// endpoint).
#
#   scripts/rig-tls.sh up       make the certificates (once), start, write $RIG/env-tls
#   scripts/rig-tls.sh down     stop it and remove its bridge (data and certificates are kept)
#   scripts/rig-tls.sh status   exit 0 when it answers over TLS, 3 otherwise
#
# Needs root and the rig's packages (scripts/rig.sh up); RIG as in scripts/rig.sh.
set -euo pipefail
RIG=${KTL_RIG_DIR:-/var/lib/ktl-rig}
RIG=${RIG%/}
T=$RIG/tls
PORT=${KTL_RIG_TLS_PORT:-2376}
ADDR=127.0.0.1:$PORT
# A name in the server certificate that does not resolve: reached only with a server name
# override (--tlsservername), the way a remote engine behind a forwarded port is.
SERVER_NAME=tls.ktl.test
PID=$T/dockerd.pid
LOG=$T/dockerd.log
# Not docker0 and not the compatibility engine's ktlc0: `--bridge none` or the default bridge
# would make this dockerd delete or take over the host's docker0.
BRIDGE=${KTL_RIG_TLS_BRIDGE:-ktlt0}
CIDR=${KTL_RIG_TLS_CIDR:-10.216.0.1/24}
ENV_FILE=$RIG/env-tls
PKI=$T/pki
CLIENT=$T/client
OTHER=$T/other
log() { printf 'rig-tls: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# The engine's own check, over the client certificate: nothing else reaches it.
answers() {
  curl -fsS -m 3 --cacert "$CLIENT/ca.pem" --cert "$CLIENT/cert.pem" --key "$CLIENT/key.pem" \
    "https://$ADDR/_ping" >/dev/null 2>&1
}
alive() { [[ -s $PID ]] && kill -0 "$(<"$PID")" 2>/dev/null && [[ $(cat "/proc/$(<"$PID")/comm" 2>/dev/null) == dockerd ]]; }

ssl() { openssl "$@" >>"$T/openssl.log" 2>&1 || die "openssl $1 failed (log $T/openssl.log)"; }

# A P-256 key and a certificate for it signed by the CA in $1 (key $1/ca-key.pem).
issue() { # ca-dir out-cert out-key subject extensions
  local ca=$1 cert=$2 key=$3 subj=$4 ext=$5
  ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key"
  ssl req -new -key "$key" -subj "$subj" -out "$cert.csr"
  printf '%s\n' "$ext" >"$cert.ext"
  ssl x509 -req -in "$cert.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca-key.pem" -CAcreateserial \
    -days 825 -sha256 -extfile "$cert.ext" -out "$cert"
  rm -f "$cert.csr" "$cert.ext"
  chmod 600 "$key"
}

make_ca() { # dir subject
  ssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1/ca-key.pem"
  ssl req -x509 -new -key "$1/ca-key.pem" -subj "$2" -days 3650 -sha256 \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
    -out "$1/ca.pem"
  chmod 600 "$1/ca-key.pem"
}

# Valid for at least another day, and made for this name set.
certs_ok() {
  local f
  for f in "$PKI/ca.pem" "$PKI/server-cert.pem" "$PKI/server-key.pem" "$CLIENT/ca.pem" \
    "$CLIENT/cert.pem" "$CLIENT/key.pem" "$OTHER/ca.pem" "$OTHER/cert.pem" "$OTHER/key.pem"; do
    [[ -s $f ]] || return 1
  done
  openssl x509 -checkend 86400 -noout -in "$PKI/server-cert.pem" >/dev/null 2>&1 &&
    openssl x509 -checkend 86400 -noout -in "$CLIENT/cert.pem" >/dev/null 2>&1 &&
    openssl x509 -noout -ext subjectAltName -in "$PKI/server-cert.pem" 2>/dev/null | grep -q "DNS:$SERVER_NAME"
}

make_certs() {
  rm -rf "$PKI" "$CLIENT" "$OTHER"
  mkdir -p "$PKI" "$CLIENT" "$OTHER/ca"
  chmod 700 "$PKI" "$CLIENT" "$OTHER"
  : >"$T/openssl.log"
  log "certificates: CA, server ($ADDR, localhost, $SERVER_NAME), client; a second CA and its client"
  make_ca "$PKI" "/CN=ktl rig TLS CA"
  issue "$PKI" "$PKI/server-cert.pem" "$PKI/server-key.pem" "/CN=ktl rig TLS engine" \
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$SERVER_NAME
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature"
  issue "$PKI" "$CLIENT/cert.pem" "$CLIENT/key.pem" "/CN=ktl rig TLS client" \
    "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
  cp "$PKI/ca.pem" "$CLIENT/ca.pem"
  # The other CA signed neither the server nor the engine's trusted clients.
  make_ca "$OTHER/ca" "/CN=ktl rig TLS other CA"
  issue "$OTHER/ca" "$OTHER/cert.pem" "$OTHER/key.pem" "/CN=ktl rig TLS stranger" \
    "extendedKeyUsage=clientAuth
keyUsage=critical,digitalSignature"
  cp "$OTHER/ca/ca.pem" "$OTHER/ca.pem"
  rm -f "$PKI"/*.srl "$OTHER"/ca/*.srl
}

up() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (dockerd runs rootful)"
  command -v dockerd >/dev/null || die "no dockerd; run scripts/rig.sh up first"
  command -v openssl >/dev/null || die "no openssl (apt-get install openssl)"
  mkdir -p "$T"
  certs_ok || make_certs
  if alive && answers; then
    log "already running (pid $(<"$PID")) on tcp://$ADDR"
  else
    if alive; then
      log "dockerd (pid $(<"$PID")) does not answer; restarting it"
      stop
    fi
    if command -v ss >/dev/null && [[ -n $(ss -Htln "sport = :$PORT" 2>/dev/null) ]]; then
      die "port $PORT is taken by something else (ss -tlnp 'sport = :$PORT'); set KTL_RIG_TLS_PORT"
    fi
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
      ip link add "$BRIDGE" type bridge && ip addr add "$CIDR" dev "$BRIDGE" && ip link set "$BRIDGE" up \
        || die "cannot create the bridge $BRIDGE"
    fi
    printf '{"bridge":"%s","features":{"containerd-snapshotter":true},"insecure-registries":["127.0.0.1:5000"]}\n' \
      "$BRIDGE" >"$T/daemon.json"
    log "starting dockerd on tcp://$ADDR with --tlsverify (log $LOG)"
    printf '\n==== %s rig-tls up\n' "$(date -Is)" >>"$LOG"
    # Its own containerd (started by dockerd under the exec root): nothing shared with the rig's.
    nohup setsid dockerd --host "tcp://$ADDR" --tlsverify --tlscacert "$PKI/ca.pem" \
      --tlscert "$PKI/server-cert.pem" --tlskey "$PKI/server-key.pem" \
      --data-root "$T/data" --exec-root "$T/x" --pidfile "$PID" --config-file "$T/daemon.json" \
      --containerd-namespace ktl-tls --containerd-plugins-namespace ktl-tls-plugins \
      >>"$LOG" 2>&1 </dev/null 9>&- &
    for _ in $(seq 240); do answers && break; sleep 0.25; done
    answers || { tail -20 "$LOG" >&2; die "dockerd did not answer on https://$ADDR within 60 s"; }
  fi
  local v
  v=$(curl -fsS -m 5 --cacert "$CLIENT/ca.pem" --cert "$CLIENT/cert.pem" --key "$CLIENT/key.pem" \
    "https://$ADDR/version" | sed -n 's/.*"Version":"\([^"]*\)".*"ApiVersion":"\([^"]*\)".*/\1 \2/p')
  cat >"$ENV_FILE.tmp" <<EOF
KTL_RIG_TLS_HOST=tcp://$ADDR
KTL_RIG_TLS_CERT_DIR=$CLIENT
KTL_RIG_TLS_CA=$CLIENT/ca.pem
KTL_RIG_TLS_CERT=$CLIENT/cert.pem
KTL_RIG_TLS_KEY=$CLIENT/key.pem
KTL_RIG_TLS_SERVER_NAME=$SERVER_NAME
KTL_RIG_TLS_OTHER_CERT_DIR=$OTHER
KTL_RIG_TLS_SERVER_CERT=$PKI/server-cert.pem
KTL_RIG_TLS_SERVER_KEY=$PKI/server-key.pem
KTL_RIG_TLS_VERSION=${v% *}
KTL_RIG_TLS_API=${v#* }
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  log "up: Docker ${v% *} (API ${v#* }) on tcp://$ADDR; env in $ENV_FILE"
}

stop() {
  local pid i
  alive || return 0
  pid=$(<"$PID")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 120; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.25; done
  log "dockerd (pid $pid) ignored SIGTERM for 30 s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

down() {
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  stop
  ip link del "$BRIDGE" 2>/dev/null || true
  rm -f "$ENV_FILE" "$PID"
  log "down (data and certificates kept in $T)"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) if alive && answers; then log "running (pid $(<"$PID")) on tcp://$ADDR"; else log "not running; run $0 up"; exit 3; fi ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
