#!/usr/bin/env bash
# ktl test rig: a private BuildKit engine (dockerd 26.1 from Debian trixie, containerd
# image store), a loopback registry on 127.0.0.1:5000 and an offline busybox base image.
#
#   scripts/rig.sh up       install what is missing, start everything, write $RIG/env
#   scripts/rig.sh down     stop registry, dockerd and containerd (data is kept)
#   scripts/rig.sh status   show what runs; exit 0 if all is up, 3 otherwise
#   scripts/rig.sh env      print $RIG/env
#   scripts/rig.sh smoke    build a tiny Dockerfile with the reference client (buildx)
#   scripts/rig.sh trixie-source   only add the pinned trixie apt source
#
# RIG defaults to /var/lib/ktl-rig (override with KTL_RIG_DIR). Needs root (uses sudo if
# available). Targets Debian 12 (bookworm) reaching only the Debian archive.
#
# Reference build with buildx (what `smoke` runs; verified against engine 26.1.5):
#   . /var/lib/ktl-rig/env
#   printf 'FROM 127.0.0.1:5000/ktl/busybox:latest\nRUN echo hi > /x\n' > "$CTX/Dockerfile"
#   DOCKER_HOST="$KTL_RIG_DOCKER_HOST" DOCKER_CONFIG="$KTL_RIG_DOCKER_CONFIG" \
#     "$KTL_RIG_BUILDX" build --progress=plain --output type=local,dest=/tmp/out "$CTX"
#   # -> /tmp/out/x contains "hi" (plus the busybox rootfs)
# `docker buildx build ...` with DOCKER_HOST set works too: the plugin sits in
# /usr/libexec/docker/cli-plugins, a default plugin dir of every docker CLI.
set -euo pipefail

readonly RIG_DEFAULT=/var/lib/ktl-rig
readonly REGISTRY_ADDR=127.0.0.1:5000
readonly BASE_IMAGE="$REGISTRY_ADDR/ktl/busybox:latest"
readonly ENGINE_WANT=26.1   # trixie docker.io / docker-cli
readonly BUILDX_WANT=0.13   # trixie docker-buildx
readonly BUILDX_PLUGIN=/usr/libexec/docker/cli-plugins/docker-buildx
readonly TRIXIE_SOURCES=/etc/apt/sources.list.d/ktl-rig-trixie.sources
readonly TRIXIE_PIN=/etc/apt/preferences.d/ktl-rig-trixie
export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o DPkg::Lock::Timeout=600 -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)

log() { printf 'rig: %s\n' "$*" >&2; }
die() { printf 'rig: ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- privileges & paths

ensure_root() {
  [[ $(id -u) -eq 0 ]] && return 0
  if command -v sudo >/dev/null 2>&1; then
    log "not root; re-running under sudo"
    exec sudo --preserve-env=KTL_RIG_DIR bash "$0" "$@"
  fi
  die "must run as root (no sudo found): run 'su -c \"$0 $*\"' or install sudo"
}

init_paths() {
  RIG=${KTL_RIG_DIR:-$RIG_DEFAULT}
  [[ $RIG == /* ]] || die "KTL_RIG_DIR must be an absolute path (got '$RIG')"
  RIG=${RIG%/}
  DOCKER_SOCK=$RIG/docker.sock
  DOCKER_HOST_URI=unix://$DOCKER_SOCK
  DATA_ROOT=$RIG/data
  DOCKERD_PID=$RIG/dockerd.pid
  DOCKERD_LOG=$RIG/dockerd.log
  CTD_ROOT=$RIG/containerd
  CTD_PID=$RIG/containerd.pid
  CTD_LOG=$RIG/containerd.log
  REG_PID=$RIG/registry.pid
  REG_LOG=$RIG/registry.log
  REG_CONF=$RIG/registry.yml
  ENV_FILE=$RIG/env
  DOCKER_CONFIG_DIR=$RIG/docker-config
  # Unix socket paths are limited to 108 bytes and containerd/dockerd nest sockets below
  # exec-root: keep it short, falling back to /run when KTL_RIG_DIR is long.
  EXEC_ROOT=$RIG/exec
  if (( ${#EXEC_ROOT} > 40 )); then
    EXEC_ROOT=/run/ktl-rig-$(printf '%s' "$RIG" | sha256sum | cut -c1-8)
  fi
  CTD_SOCK=$EXEC_ROOT/ctd.sock
  (( ${#DOCKER_SOCK} < 100 )) || die "socket path $DOCKER_SOCK is too long; use a shorter KTL_RIG_DIR"
}

docker_cli() {
  # trixie's docker-cli (26.1) matches the engine; any newer client works as well.
  local c
  for c in /usr/bin/docker "$(command -v docker 2>/dev/null || true)"; do
    [[ -n $c && -x $c ]] && { printf '%s\n' "$c"; return 0; }
  done
  return 1
}

dk() {
  local cli
  cli=$(docker_cli) || die "no docker CLI found; run 'scripts/rig.sh up' to install docker-cli"
  DOCKER_CONFIG=$DOCKER_CONFIG_DIR "$cli" -H "$DOCKER_HOST_URI" "$@"
}

pid_alive() { # pidfile [expected-comm]
  local pid
  [[ -s $1 ]] || return 1
  pid=$(<"$1")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ -z ${2:-} ]] || [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$2" ]]
}

# ---------------------------------------------------------------- 1. packages

pkg_version() { dpkg-query -W -f='${db:Status-Abbrev} ${Version}' "$1" 2>/dev/null | awk '$1=="ii"{print $2}'; }

pkg_ok() { # name [version-prefix]
  local v
  v=$(pkg_version "$1")
  [[ -n $v ]] || return 1
  [[ -z ${2:-} ]] && return 0
  v=${v#*:}
  [[ $v == "$2"* ]]
}

# The archive URI of the machine's bookworm source (deb822 or one-line format).
debian_uri() {
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    uri=$(awk 'BEGIN{RS=""; FS="\n"}
      { u=""; s=""
        for (i=1;i<=NF;i++) { l=$i; if (l ~ /^[ \t]*#/) continue
          if (l ~ /^URIs:/) { sub(/^URIs:[ \t]*/,"",l); split(l,a,/[ \t]+/); u=a[1] }
          if (l ~ /^Suites:/) { s=" " l " " } }
        if (u != "" && s ~ /[ \t]bookworm[ \t]/) { print u; exit } }' /etc/apt/sources.list.d/debian.sources)
  fi
  if [[ -z $uri ]]; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1=="deb"{ for (i=2;i<=NF;i++) { if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; continue }
             if ($(i+1)=="bookworm") { print $i; exit } else break } }')
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

write_if_changed() { # path content -> returns 0 if it changed
  local path=$1 content=$2
  if [[ -f $path ]] && [[ "$(cat "$path")" == "$content" ]]; then return 1; fi
  printf '%s\n' "$content" >"$path"
}

apt_update() {
  local i
  for i in 1 2 3; do
    apt-get update -q -o DPkg::Lock::Timeout=600 >"$RIG/apt.log" 2>&1 && return 0
    log "apt-get update failed (attempt $i), retrying in 5 s"; sleep 5
  done
  tail -20 "$RIG/apt.log" >&2
  die "apt-get update failed (log: $RIG/apt.log); check the machine reaches the Debian archive"
}

apt_install() {
  apt-get install "${APT_OPTS[@]}" --no-install-recommends "$@" >>"$RIG/apt.log" 2>&1 && return 0
  tail -30 "$RIG/apt.log" >&2
  die "apt-get install $* failed (log: $RIG/apt.log)"
}

# Keep package postinst scripts from starting distro services (docker, registry, containerd).
POLICY_RC_CREATED=0
block_services() {
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\n# ktl rig: temporary, blocks service starts during apt\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
}
unblock_services() {
  if (( POLICY_RC_CREATED )); then rm -f /usr/sbin/policy-rc.d; POLICY_RC_CREATED=0; fi
}

# If a distro service got started anyway, stop it: the rig runs its own, privately.
stop_distro_services() {
  local pid
  if [[ -s /var/run/docker.pid ]] && pid=$(</var/run/docker.pid) && kill -0 "$pid" 2>/dev/null \
     && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dockerd ]]; then
    log "stopping the distro dockerd (pid $pid) started by the docker.io package"
    if [[ -x /etc/init.d/docker ]]; then /etc/init.d/docker stop >/dev/null 2>&1 || true; fi
    kill "$pid" 2>/dev/null || true
  fi
  for pid in $(pgrep -x docker-registry 2>/dev/null || true); do
    if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/etc/docker/registry/'; then
      log "stopping the distro docker-registry (pid $pid) started by its package"
      kill "$pid" 2>/dev/null || true
    fi
  done
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now docker.service docker.socket docker-registry.service >/dev/null 2>&1 || true
  fi
}

ensure_trixie_source() {
  local uri changed=1
  uri=$(debian_uri)
  write_if_changed "$TRIXIE_SOURCES" "# ktl rig: trixie, only for docker.io/docker-cli/docker-buildx (pinned low)
Types: deb
URIs: $uri
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" && changed=0
  write_if_changed "$TRIXIE_PIN" "# ktl rig: never upgrade anything to trixie unless asked for explicitly
Package: *
Pin: release n=trixie
Pin-Priority: 100" && changed=0
  if (( changed == 0 )) || ! apt-cache policy docker-buildx 2>/dev/null | grep -q ' trixie/'; then
    log "apt: trixie source $uri (pin 100); apt-get update"
    apt_update
  fi
}

install_engine() {
  local trixie_pkgs=(docker.io/trixie docker-cli/trixie docker-buildx/trixie) extra
  # The engine must run on bookworm's containerd and runc: name them without a release so
  # apt takes bookworm's, and check nothing else would come from trixie.
  extra=$(apt-get -s install --no-install-recommends containerd runc "${trixie_pkgs[@]}" 2>/dev/null |
    awk '/^Inst / && /Debian:13|trixie/ && $2 !~ /^(docker\.io|docker-cli|docker-buildx)$/ {print $2}' | xargs)
  if [[ -z $extra ]]; then
    log "apt: installing trixie docker.io docker-cli docker-buildx on bookworm containerd/runc"
    apt_install containerd runc "${trixie_pkgs[@]}"
  else
    log "apt: resolver would pull from trixie: $extra; using apt-get download + dpkg -i instead"
    apt_install containerd runc iptables tini adduser sysvinit-utils libsystemd0
    local dl; dl=$(mktemp -d)
    (cd "$dl" && chown _apt "$dl" 2>/dev/null; apt-get download -q "${trixie_pkgs[@]}" >>"$RIG/apt.log" 2>&1) \
      || die "apt-get download of trixie docker packages failed (log: $RIG/apt.log)"
    dpkg -i --force-confold "$dl"/*.deb >>"$RIG/apt.log" 2>&1 \
      || { tail -30 "$RIG/apt.log" >&2; rm -rf "$dl"; die "dpkg -i of trixie docker packages failed"; }
    rm -rf "$dl"
  fi
}

ensure_packages() {
  local base=(bubblewrap docker-registry curl containerd runc) missing=() p need_engine=0
  for p in "${base[@]}"; do pkg_ok "$p" || missing+=("$p"); done
  # busybox-static conflicts with the dynamic 'busybox'; if that is installed, leave it
  # and extract busybox-static's binary instead (see busybox_binary).
  if ! pkg_ok busybox && ! pkg_ok busybox-static; then missing+=(busybox-static); fi
  pkg_ok docker.io "$ENGINE_WANT" && pkg_ok docker-cli "$ENGINE_WANT" && pkg_ok docker-buildx "$BUILDX_WANT" \
    || need_engine=1
  if (( ${#missing[@]} == 0 && need_engine == 0 )); then
    log "apt: packages present (docker.io $(pkg_version docker.io), docker-buildx $(pkg_version docker-buildx), containerd $(pkg_version containerd)); skipping apt"
    return 0
  fi
  block_services
  trap unblock_services EXIT
  if (( ${#missing[@]} )); then
    # update only when the archive index does not know a package we need
    for p in "${missing[@]}"; do
      apt-cache show "$p" >/dev/null 2>&1 || { log "apt: apt-get update (no index for $p)"; apt_update; break; }
    done
    log "apt: installing ${missing[*]}"
    apt_install "${missing[@]}"
  fi
  if (( need_engine )); then
    ensure_trixie_source
    install_engine
  fi
  unblock_services
  stop_distro_services
  pkg_ok docker.io "$ENGINE_WANT" || die "docker.io $ENGINE_WANT.x not installed (have '$(pkg_version docker.io)'); see $RIG/apt.log"
  pkg_ok docker-buildx "$BUILDX_WANT" || die "docker-buildx $BUILDX_WANT.x not installed; see $RIG/apt.log"
  log "apt: docker.io $(pkg_version docker.io), docker-cli $(pkg_version docker-cli), docker-buildx $(pkg_version docker-buildx), containerd $(pkg_version containerd), runc $(pkg_version runc)"
}

# ---------------------------------------------------------------- 2. containerd + dockerd

start_detached() { # pidfile logfile cmd...
  local pidfile=$1 logfile=$2; shift 2
  # 9>&-: the daemons must not inherit the rig lock
  nohup setsid "$@" >>"$logfile" 2>&1 </dev/null 9>&- &
  printf '%s\n' "$!" >"$pidfile"
}

wait_for() { # seconds description logfile cmd...
  local secs=$1 what=$2 logf=$3 i; shift 3
  for ((i = 0; i < secs * 4; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  log "$what did not come up within ${secs}s; last lines of $logf:"
  tail -25 "$logf" >&2 || true
  return 1
}

start_containerd() {
  # Our own containerd (bookworm 1.6) on a private socket, so a system containerd at
  # /run/containerd is never shared or disturbed. dockerd is pointed at it.
  if pid_alive "$CTD_PID" containerd && [[ -S $CTD_SOCK ]]; then
    log "containerd: already running (pid $(<"$CTD_PID"))"; return 0
  fi
  command -v containerd >/dev/null || die "containerd not installed; run 'scripts/rig.sh up' as root"
  mkdir -p "$CTD_ROOT" "$EXEC_ROOT"
  rm -f "$CTD_SOCK"
  cat >"$RIG/containerd.toml" <<EOF
# generated by scripts/rig.sh
version = 2
root = "$CTD_ROOT/root"
state = "$EXEC_ROOT/ctd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTD_SOCK"
[ttrpc]
  address = "$CTD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
EOF
  log "containerd: starting on $CTD_SOCK (log $CTD_LOG)"
  start_detached "$CTD_PID" "$CTD_LOG" containerd --config "$RIG/containerd.toml"
  wait_for 30 containerd "$CTD_LOG" test -S "$CTD_SOCK" \
    || die "containerd failed to start; see $CTD_LOG"
}

start_dockerd() {
  if pid_alive "$DOCKERD_PID" dockerd && dk version >/dev/null 2>&1; then
    log "dockerd: already running (pid $(<"$DOCKERD_PID")) on $DOCKER_HOST_URI"; return 0
  fi
  if pid_alive "$DOCKERD_PID" dockerd; then
    log "dockerd: pid $(<"$DOCKERD_PID") exists but does not answer; restarting it"
    stop_pidfile "$DOCKERD_PID" dockerd 30
  fi
  mkdir -p "$DATA_ROOT" "$EXEC_ROOT" "$DOCKER_CONFIG_DIR"
  cat >"$RIG/daemon.json" <<EOF
{"features":{"containerd-snapshotter":true},"insecure-registries":["$REGISTRY_ADDR"]}
EOF
  [[ -f $DOCKER_CONFIG_DIR/config.json ]] ||
    printf '{"cliPluginsExtraDirs":["%s"]}\n' "${BUILDX_PLUGIN%/*}" >"$DOCKER_CONFIG_DIR/config.json"
  rm -f "$DOCKER_SOCK"
  log "dockerd: starting on $DOCKER_HOST_URI (data $DATA_ROOT, exec $EXEC_ROOT, log $DOCKERD_LOG)"
  printf '\n==== %s rig up\n' "$(date -Is)" >>"$DOCKERD_LOG"
  # dockerd writes its own pidfile; the placeholder is overwritten once it is up.
  start_detached "$DOCKERD_PID.launch" "$DOCKERD_LOG" dockerd \
    --host "$DOCKER_HOST_URI" --data-root "$DATA_ROOT" --exec-root "$EXEC_ROOT" \
    --pidfile "$DOCKERD_PID" --config-file "$RIG/daemon.json" --containerd "$CTD_SOCK"
  wait_for 60 dockerd "$DOCKERD_LOG" dk version \
    || die "dockerd did not answer on $DOCKER_HOST_URI within 60 s (log above, full log $DOCKERD_LOG)"
  rm -f "$DOCKERD_PID.launch"
  log "dockerd: up, engine $(dk version --format '{{.Server.Version}}')"
}

# ---------------------------------------------------------------- 3. registry

registry_answers() { curl -fsS -m 3 "http://$REGISTRY_ADDR/v2/" >/dev/null 2>&1; }

port_owner() {
  command -v ss >/dev/null 2>&1 || return 0
  ss -Htlnp "sport = :${REGISTRY_ADDR##*:}" 2>/dev/null | grep -o 'users:(.*)' | head -1 || true
}

start_registry() {
  if pid_alive "$REG_PID" docker-registry && registry_answers; then
    log "registry: already running (pid $(<"$REG_PID")) on $REGISTRY_ADDR"; return 0
  fi
  local owner
  owner=$(port_owner)
  if [[ -n $owner ]] || registry_answers; then
    die "port ${REGISTRY_ADDR##*:} is taken by something that is not the rig's registry (${owner:-unknown}); stop it (e.g. the distro docker-registry service) and re-run"
  fi
  command -v docker-registry >/dev/null || die "docker-registry not installed; run 'scripts/rig.sh up' as root"
  mkdir -p "$RIG/registry"
  cat >"$REG_CONF" <<EOF
# generated by scripts/rig.sh
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $RIG/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
  log "registry: starting on $REGISTRY_ADDR (storage $RIG/registry, log $REG_LOG)"
  start_detached "$REG_PID" "$REG_LOG" docker-registry serve "$REG_CONF"
  wait_for 30 registry "$REG_LOG" registry_answers \
    || die "registry did not answer on http://$REGISTRY_ADDR/v2/ (log above)"
}

# ---------------------------------------------------------------- 4. base image

base_in_registry() {
  curl -fsS -m 5 -o /dev/null -I \
    -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json' \
    "http://$REGISTRY_ADDR/v2/ktl/busybox/manifests/latest" 2>/dev/null
}

busybox_binary() {
  if pkg_ok busybox-static; then printf '/bin/busybox\n'; return 0; fi
  # dynamic busybox is installed: use busybox-static's binary without replacing it
  local dir=$RIG/cache/busybox-static
  if [[ ! -x $dir/bin/busybox ]]; then
    mkdir -p "$RIG/cache"
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && chown _apt "$tmp" 2>/dev/null; apt-get download -q busybox-static >/dev/null 2>&1) \
      || die "apt-get download busybox-static failed"
    rm -rf "$dir"; dpkg-deb -x "$tmp"/busybox-static_*.deb "$dir"; rm -rf "$tmp"
  fi
  printf '%s\n' "$dir/bin/busybox"
}

ensure_base_image() {
  if base_in_registry; then log "base image: $BASE_IMAGE already in the registry"; return 0; fi
  local bb root
  bb=$(busybox_binary)
  file_is_static "$bb" || die "$bb is not a static binary; install busybox-static"
  root=$(mktemp -d)
  mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,dev,proc,sys}
  chmod 1777 "$root/tmp"; chmod 700 "$root/root"
  install -m 755 "$bb" "$root/bin/busybox"
  # same as `busybox --install -s`: every applet links to /bin/busybox at its usual path
  local p
  while read -r p; do
    [[ -n $p && $p != bin/busybox ]] || continue
    [[ -e $root/$p ]] || ln -s /bin/busybox "$root/$p"
  done < <("$bb" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  log "base image: importing busybox $("$bb" | head -1 | awk '{print $2}') rootfs as $BASE_IMAGE and pushing"
  tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf - . |
    dk import --platform linux/amd64 \
      --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' --change 'CMD ["/bin/sh"]' \
      - "$BASE_IMAGE" >/dev/null || { rm -rf "$root"; die "docker import of the busybox rootfs failed"; }
  rm -rf "$root"
  dk push -q "$BASE_IMAGE" >/dev/null || die "docker push $BASE_IMAGE failed; see $DOCKERD_LOG and $REG_LOG"
  base_in_registry || die "pushed $BASE_IMAGE but the registry does not serve it"
}

file_is_static() { ! LC_ALL=C ldd "$1" >/dev/null 2>&1; }

# ---------------------------------------------------------------- 5. env

write_env() {
  local engine buildkit
  engine=$(dk version --format '{{.Server.Version}}')
  buildkit=$(DOCKER_HOST=$DOCKER_HOST_URI DOCKER_CONFIG=$DOCKER_CONFIG_DIR "$BUILDX_PLUGIN" inspect 2>/dev/null |
    awk -F': *' '/^BuildKit version/{print $2; exit}' || true)
  cat >"$ENV_FILE.tmp" <<EOF
KTL_RIG_DIR=$RIG
KTL_RIG_DOCKER_HOST=$DOCKER_HOST_URI
KTL_RIG_DOCKER_CONFIG=$DOCKER_CONFIG_DIR
KTL_RIG_DOCKER_CLI=$(docker_cli)
KTL_RIG_REGISTRY=$REGISTRY_ADDR
KTL_RIG_BASE_IMAGE=$BASE_IMAGE
KTL_RIG_BUILDX=$BUILDX_PLUGIN
KTL_RIG_ENGINE_VERSION=$engine
KTL_RIG_BUILDKIT_VERSION=${buildkit:-unknown}
EOF
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  log "env: wrote $ENV_FILE"
  cat "$ENV_FILE"
}

# ---------------------------------------------------------------- commands

with_lock() {
  mkdir -p "$RIG"
  exec 9>"$RIG/rig.lock"
  flock -w 900 9 || die "another 'rig.sh' holds $RIG/rig.lock for more than 15 min"
}

cmd_up() {
  with_lock
  local t0=$SECONDS
  log "up: rig dir $RIG"
  ensure_packages
  [[ -x $BUILDX_PLUGIN ]] || die "buildx plugin missing at $BUILDX_PLUGIN; reinstall docker-buildx"
  start_containerd
  start_dockerd
  start_registry
  ensure_base_image
  write_env
  log "up: done in $((SECONDS - t0)) s"
}

stop_pidfile() { # pidfile comm timeout
  local pidfile=$1 comm=$2 secs=$3 pid i
  if ! pid_alive "$pidfile" "$comm"; then rm -f "$pidfile"; return 1; fi
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 4; i++)); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; return 0; }
    sleep 0.25
  done
  log "$comm (pid $pid) ignored SIGTERM for ${secs}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

cmd_down() {
  with_lock
  stop_pidfile "$REG_PID" docker-registry 10 && log "registry: stopped" || log "registry: not running"
  stop_pidfile "$DOCKERD_PID" dockerd 30 && log "dockerd: stopped" || log "dockerd: not running"
  rm -f "$DOCKERD_PID.launch"
  stop_pidfile "$CTD_PID" containerd 20 && log "containerd: stopped" || log "containerd: not running"
  log "down: data kept in $RIG"
}

cmd_status() {
  local ok=0
  exec 2>&1 # status is the command's output: print it on stdout
  if pid_alive "$CTD_PID" containerd; then log "containerd: running (pid $(<"$CTD_PID"), $CTD_SOCK)"
  else log "containerd: NOT running"; ok=3; fi
  if pid_alive "$DOCKERD_PID" dockerd && dk version >/dev/null 2>&1; then
    log "dockerd: running (pid $(<"$DOCKERD_PID"), $DOCKER_HOST_URI, engine $(dk version --format '{{.Server.Version}}'))"
  else log "dockerd: NOT running/answering on $DOCKER_HOST_URI"; ok=3; fi
  if pid_alive "$REG_PID" docker-registry && registry_answers; then
    log "registry: running (pid $(<"$REG_PID"), http://$REGISTRY_ADDR)"
  else log "registry: NOT running/answering on $REGISTRY_ADDR"; ok=3; fi
  if base_in_registry; then log "base image: $BASE_IMAGE present"
  else log "base image: $BASE_IMAGE NOT in registry"; ok=3; fi
  [[ -f $ENV_FILE ]] || { log "env: $ENV_FILE missing"; ok=3; }
  (( ok == 0 )) && log "status: all up" || log "status: not (fully) up; run 'scripts/rig.sh up'"
  return "$ok"
}

cmd_env() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE does not exist; run 'scripts/rig.sh up' first"
  cat "$ENV_FILE"
}

cmd_smoke() {
  [[ -f $ENV_FILE ]] || die "$ENV_FILE does not exist; run 'scripts/rig.sh up' first"
  local ctx out
  ctx=$(mktemp -d); out=${1:-/tmp/out}
  printf 'FROM %s\nRUN echo hi > /x\n' "$BASE_IMAGE" >"$ctx/Dockerfile"
  rm -rf "$out"
  log "smoke: buildx build --output type=local,dest=$out"
  DOCKER_HOST=$DOCKER_HOST_URI DOCKER_CONFIG=$DOCKER_CONFIG_DIR \
    "$BUILDX_PLUGIN" build --progress=plain --output "type=local,dest=$out" "$ctx" \
    || { rm -rf "$ctx"; die "buildx build failed; see $DOCKERD_LOG"; }
  rm -rf "$ctx"
  [[ $(cat "$out/x") == hi ]] || die "smoke: $out/x does not contain 'hi'"
  log "smoke: ok ($out/x = hi)"
}

# Used by scripts/setup.sh when the machine's Node is older than 20 (bookworm ships 18).
cmd_trixie_source() { ensure_trixie_source; }

main() {
  local cmd=${1:-}
  case $cmd in
    up | down | status | env | smoke) ;;
    trixie-source) cmd=trixie_source ;;
    -h | --help | help) sed -n '2,13p' "$0"; exit 0 ;;
    *) printf 'usage: %s up|down|status|env|smoke\n' "$0" >&2; exit 2 ;;
  esac
  ensure_root "$@"
  init_paths
  shift
  "cmd_$cmd" "$@"
}

main "$@"
